"""The system view: workers alive, queue depths, throughput per minute, streams, consumer groups, Redis memory."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ingest import keys
from ingest.heartbeat import workers_alive
from ingest.redisutil import text, text_map
from ingest.web import charts
from ingest.web.pages import web_of

router = APIRouter()
THROUGHPUT_MINUTES = 180
OUTCOMES = ("article", "duplicate", "deadletter")


def streams(client: redis.Redis, storylines: list[str]) -> dict[str, str]:
    """Public stream names and their keys."""
    named = {"articles": keys.ARTICLES, "duplicates": keys.DUPLICATES, "deadletter": keys.DEADLETTER}
    named.update({f"storyline:{s}": keys.storyline_stream(s) for s in storylines})
    return named


def stream_lengths(client: redis.Redis, named: dict[str, str]) -> dict[str, int]:
    """Entries per stream."""
    pipe = client.pipeline(transaction=False)
    for key in named.values():
        pipe.xlen(key)
    return dict(zip(named, (int(n) for n in pipe.execute()), strict=True))


def groups(client: redis.Redis, named: dict[str, str]) -> list[dict[str, Any]]:
    """Consumer groups of every stream with their consumers, pending entries and lag."""
    out = []
    for name, key in named.items():
        try:
            infos = client.xinfo_groups(key)
        except redis.ResponseError:  # the stream does not exist yet
            continue
        for g in infos:
            lag = g.get("lag")
            if lag is None and "lag" not in g:
                lag = _lag_before_redis7(client, key, text(g.get("last-delivered-id", "0-0")))
            out.append(
                {
                    "stream": name,
                    "group": text(g.get("name")),
                    "consumers": int(g.get("consumers", 0)),
                    "pending": int(g.get("pending", 0)),
                    "lag": int(lag) if lag is not None else None,
                    "last_delivered": text(g.get("last-delivered-id", "")),
                }
            )
    return out


# Counting undelivered entries costs a range read on Redis before 7 (which reports no lag): stop here.
LAG_COUNT_LIMIT = 10_000


def _lag_before_redis7(client: redis.Redis, key: str, last_delivered: str) -> int | None:
    """Entries after a group's last-delivered id, counted up to LAG_COUNT_LIMIT (None beyond it)."""
    after = client.xrange(key, min=f"({last_delivered}", max="+", count=LAG_COUNT_LIMIT + 1) or []
    return len(after) if len(after) <= LAG_COUNT_LIMIT else None


def queues(client: redis.Redis) -> dict[str, int]:
    """Celery queue lengths, unacked deliveries and jobs in flight."""
    pipe = client.pipeline(transaction=False)
    for q in (keys.QUEUE_FEEDS, keys.QUEUE_ARTICLES):
        pipe.llen(keys.CELERY_PREFIX + q)
    pipe.hlen(keys.CELERY_PREFIX + "unacked")
    pipe.zcard(keys.INFLIGHT)
    feeds_q, articles_q, unacked, inflight = (int(n) for n in pipe.execute())
    return {"feeds": feeds_q, "articles": articles_q, "unacked": unacked, "jobs_in_flight": inflight}


def throughput(client: redis.Redis, minutes: int = THROUGHPUT_MINUTES) -> tuple[list[str], list[dict[str, int]]]:
    """Jobs finished per minute by outcome over the last minutes, oldest first."""
    now = int(time.time() // 60)
    span = range(now - minutes + 1, now + 1)
    pipe = client.pipeline(transaction=False)
    for m in span:
        pipe.hgetall(keys.web_minute(m))
    cols = [{k: int(v) for k, v in text_map(h).items()} for h in pipe.execute()]
    labels = [dt.datetime.fromtimestamp(m * 60, dt.UTC).strftime("%H:%M") for m in span]
    return labels, cols


def memory(client: redis.Redis) -> dict[str, Any]:
    """Redis memory use."""
    info = client.info("memory")
    return {
        "used": int(info.get("used_memory", 0)),
        "used_human": info.get("used_memory_human", ""),
        "peak_human": info.get("used_memory_peak_human", ""),
        "max": int(info.get("maxmemory", 0)),
        "max_human": info.get("maxmemory_human", ""),
    }


@router.get("/system", response_class=HTMLResponse, include_in_schema=False)
def system_page(request: Request) -> HTMLResponse:
    """How the service is doing right now."""
    web = web_of(request)
    web.readable(request)
    named = streams(web.redis, [s.id for s in web.storylines])
    labels, cols = throughput(web.redis)
    per_minute = [{o: c.get(o, 0) for o in OUTCOMES if c.get(o)} for c in cols]
    last_hour = sum(sum(c.values()) for c in per_minute[-60:])
    return web.render(
        request,
        "system.html",
        "system",
        workers=workers_alive(web.redis),
        now=time.time(),
        queues=queues(web.redis),
        chart=charts.stacked(labels, per_minute, "outcome", unit="jobs"),
        last_hour=last_hour,
        lengths=stream_lengths(web.redis, named),
        groups=groups(web.redis, named),
        memory=memory(web.redis),
    )
