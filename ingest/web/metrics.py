"""Prometheus `/metrics`: every figure is read from Redis at scrape time.

The counters live in Redis (the publish script and the feed store increment them), not in process
memory: workers run as many processes on many machines, and whichever API process Prometheus
scrapes reports the same totals, with no multiprocess directory to share and nothing lost when a
worker restarts. A scrape costs a few pipelined reads plus one HMGET per feed (feeds by health).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import redis
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest import keys
from ingest.heartbeat import workers_alive
from ingest.redisutil import text, text_map
from ingest.web import indexes, system_view
from ingest.web.pages import web_of

router = APIRouter()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FEED_BATCH = 5000


# Counts feeds by health inside Redis: the client sends the record keys of a batch of feeds and gets
# three numbers back, instead of a reply per feed (what made a scrape of 10,000 feeds slow).
_FEED_HEALTH_LUA = """
local ok, failing, never = 0, 0, 0
for _, key in ipairs(KEYS) do
  local r = redis.call('HMGET', key, 'failures', 'last_status')
  if r[1] and tonumber(r[1]) and tonumber(r[1]) > 0 then failing = failing + 1
  elseif r[2] and r[2] ~= '' then ok = ok + 1
  else never = never + 1 end
end
return {ok, failing, never}
"""
_FEED_HEALTH_SHA = hashlib.sha1(_FEED_HEALTH_LUA.encode()).hexdigest()


def feed_health_counts(client: redis.Redis) -> dict[str, int]:
    """Feeds by health: ok, failing, never_polled (one script call per batch of feeds)."""
    counts = {"ok": 0, "failing": 0, "never_polled": 0}
    start = 0
    while True:
        urls = client.zrange(keys.FEEDS_DUE, start, start + FEED_BATCH - 1)
        if not urls:
            return counts
        names = [keys.feed(text(u)) for u in urls]
        try:
            ok, failing, never = client.evalsha(_FEED_HEALTH_SHA, len(names), *names)
        except redis.exceptions.NoScriptError:  # a restarted or different server: load it once
            client.script_load(_FEED_HEALTH_LUA)
            ok, failing, never = client.evalsha(_FEED_HEALTH_SHA, len(names), *names)
        counts["ok"] += int(ok)
        counts["failing"] += int(failing)
        counts["never_polled"] += int(never)
        start += FEED_BATCH


class RedisCollector(Collector):
    """Reads the shared counters and gauges from Redis on each collect."""

    def __init__(self, client: redis.Redis, storylines: list[str]) -> None:
        self.client = client
        self.storylines = storylines

    def collect(self) -> Iterator[Metric]:
        """Every metric, from Redis."""
        c = self.client
        pipe = c.pipeline(transaction=False)
        pipe.hgetall(keys.STATS)
        pipe.hgetall(keys.STATS_STORYLINE)
        for stage in indexes.STAGES:
            pipe.hgetall(keys.web_stage(stage))
        stats, per_storyline, *stages = (text_map(x) for x in pipe.execute())

        articles = CounterMetricFamily("ingest_articles", "URLs processed, by outcome", labels=["outcome"])
        for outcome in ("article", "duplicate", "deadletter", "already_seen"):
            articles.add_metric([outcome], float(stats.get(outcome, 0)))
        yield articles
        dead = CounterMetricFamily("ingest_deadletters", "Dead letters by reason", labels=["reason"])
        for k, v in sorted(stats.items()):
            if k.startswith("reason:"):
                dead.add_metric([k[len("reason:") :]], float(v))
        yield dead
        on = CounterMetricFamily(
            "ingest_storyline_articles", "Accepted articles on each storyline", labels=["storyline"]
        )
        for sid in sorted(set(per_storyline) | set(self.storylines)):
            on.add_metric([sid], float(per_storyline.get(sid, 0)))
        yield on
        polls = CounterMetricFamily("ingest_feed_polls", "Feed polls by outcome", labels=["outcome"])
        seen = {k.split(":", 1)[1] for k in stats if k.startswith("feed_polls:")}
        for outcome in sorted(seen | {"ok", "not_modified", "partial", "error"}):
            polls.add_metric([outcome], float(stats.get(f"feed_polls:{outcome}", 0)))
        yield polls

        latency = HistogramMetricFamily(
            "ingest_stage_duration_seconds", "Time an article spends in each stage", labels=["stage"]
        )
        for stage, raw in zip(indexes.STAGES, stages, strict=True):
            buckets, total, _count = indexes.histogram(raw)
            latency.add_metric([stage], buckets, total)
        yield latency

        feeds = GaugeMetricFamily("ingest_feeds", "Registered feeds by health", labels=["health"])
        for health, n in feed_health_counts(c).items():
            feeds.add_metric([health], n)
        yield feeds
        depth = GaugeMetricFamily("ingest_queue_depth", "Messages waiting or in flight", labels=["queue"])
        for q, n in system_view.queues(c).items():
            depth.add_metric([q], n)
        yield depth

        named = system_view.streams(c, self.storylines)
        lengths = GaugeMetricFamily("ingest_stream_length", "Entries in each stream", labels=["stream"])
        for name, n in system_view.stream_lengths(c, named).items():
            lengths.add_metric([name], n)
        yield lengths
        lag = GaugeMetricFamily(
            "ingest_consumer_group_lag", "Entries not yet delivered to a group", labels=["stream", "group"]
        )
        pending = GaugeMetricFamily(
            "ingest_consumer_group_pending",
            "Entries delivered to a group and not acknowledged",
            labels=["stream", "group"],
        )
        for g in system_view.groups(c, named):
            if g["lag"] is not None:
                lag.add_metric([g["stream"], g["group"]], g["lag"])
            pending.add_metric([g["stream"], g["group"]], g["pending"])
        yield lag
        yield pending

        yield GaugeMetricFamily(
            "ingest_workers", "Worker processes with a fresh heartbeat", value=len(workers_alive(c))
        )
        mem: dict[str, Any] = c.info("memory")
        yield GaugeMetricFamily(
            "ingest_redis_memory_bytes", "Memory Redis uses", value=float(mem.get("used_memory", 0))
        )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    web = web_of(request)
    if not web.auth.can_read(request):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "bearer token required", headers={"WWW-Authenticate": "Bearer"}
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(web.redis, [s.id for s in web.storylines]))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)
