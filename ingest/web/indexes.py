"""Indexes the dashboard and /metrics read, written right after each item is published.

Per storyline: per-day counts by language, outlet and label, and sorted sets of entry ids (by
article time) per facet, so a page reads a range of days or one page of entries and never scans a
stream. Per deadletter reason and hour, per outcome and minute, per stage latency buckets.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis

from ingest import keys
from ingest.models import DeadLetter, Item, StorylineTag
from ingest.urls import host_of

STAGES = ("fetch", "extract", "dedup", "tag", "publish")
# Seconds; a page is fetched in tens of ms to seconds, extracted in ms to hundreds of ms.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNKNOWN_LANGUAGE = "und"


def outlet_of(url: str) -> str:
    """The outlet an article is counted under: its host without a leading www."""
    try:
        host = host_of(url)
    except Exception:  # a malformed URL still has to be counted somewhere
        return "unknown"
    return host[4:] if host.startswith("www.") else host or "unknown"


def article_time(published_at: datetime | None, fetched_at: datetime) -> datetime:
    """When an article happened for the timeline: its publication date, else when it was fetched."""
    ts = published_at or fetched_at
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def day_of(ts: datetime) -> str:
    """UTC day of a time, YYYY-MM-DD."""
    return ts.astimezone(UTC).date().isoformat()


def facets(language: str | None, outlet: str, labels: Iterable[str]) -> list[str]:
    """The facet names of an article: lang:<code>, outlet:<host>, label:<label>."""
    return [f"lang:{language or UNKNOWN_LANGUAGE}", f"outlet:{outlet}", *(f"label:{x}" for x in labels)]


def _bucket(seconds: float) -> str:
    for bound in BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


# One script call per published item: a pipeline of some thirty commands cost more client CPU
# (packing and parsing each reply) than the work Redis does for them. Key names come in the spec.
_RECORD_LUA = """
local spec = cjson.decode(ARGV[1])
local entry, maxlen = spec.entry, tonumber(spec.maxlen)
local function add(zkey, score)
  redis.call('ZADD', zkey, score, entry)
  if redis.call('ZCARD', zkey) > maxlen then redis.call('ZREMRANGEBYRANK', zkey, 0, -(maxlen + 1)) end
end
if spec.minute ~= '' then
  redis.call('HINCRBY', spec.minute, spec.outcome, 1)
  redis.call('EXPIRE', spec.minute, spec.minute_ttl)
end
if spec.copies ~= '' then redis.call('ZADD', spec.copies, spec.now, entry) end
for _, s in ipairs(spec.storylines) do
  redis.call('ZADD', s.days, s.ordinal, s.day)
  redis.call('HINCRBY', s.day_key, 'n', 1)
  for i, f in ipairs(s.fields) do
    redis.call('HINCRBY', s.day_key, f, 1)
    redis.call('ZINCRBY', s.totals[i], 1, s.names[i])
  end
  for _, z in ipairs(s.zsets) do add(z, s.score) end
end
if spec.reason ~= '' then
  redis.call('HINCRBY', spec.hour, spec.reason, 1)
  redis.call('EXPIRE', spec.hour, spec.hour_ttl)
  add(spec.reason_key, spec.now)
end
for _, st in ipairs(spec.stages) do
  redis.call('HINCRBY', st[1], st[2], 1)
  redis.call('HINCRBY', st[1], 'count', 1)
  redis.call('HINCRBYFLOAT', st[1], 'sum', st[3])
end
return 1
"""
_RECORD_SHA = hashlib.sha1(_RECORD_LUA.encode()).hexdigest()


def _storyline_spec(item: Item, tag: StorylineTag) -> dict[str, Any]:
    ts = article_time(item.published_at, item.fetched_at)
    day = day_of(ts)
    names = facets(item.language, outlet_of(item.canonical_url), tag.labels)
    return {
        "days": keys.web_days(tag.id),
        "day": day,
        "ordinal": datetime.fromisoformat(day).toordinal(),
        "day_key": keys.web_day(tag.id, day),
        "fields": names,
        "totals": [keys.web_totals(tag.id, f.split(":", 1)[0]) for f in names],
        "names": [f.split(":", 1)[1] for f in names],
        "zsets": [keys.web_items(tag.id, f) for f in ["", *names]],
        "score": ts.timestamp(),
    }


def record(
    client: redis.Redis,
    entry_id: str,
    maxlen: int,
    item: Item | None = None,
    letter: DeadLetter | None = None,
    timings: Mapping[str, float] | None = None,
    storylines: list[StorylineTag] | None = None,
    count_outcome: bool = True,
) -> None:
    """Update every index for one published item or dead letter (one script call).

    `storylines` limits the storyline part to these tags (a retag indexes one storyline only);
    by default every storyline the item is on is indexed.
    """
    now = time.time()
    outcome = "deadletter" if letter is not None else "duplicate" if item and item.duplicate else "article"
    spec: dict[str, Any] = {
        "entry": entry_id,
        "maxlen": maxlen,
        "now": now,
        "outcome": outcome,
        "minute": keys.web_minute(int(now // 60)),
        "minute_ttl": keys.WEB_MINUTE_TTL,
        "copies": keys.web_copies(item.duplicate.of) if item is not None and item.duplicate is not None else "",
        "storylines": [],
        "reason": letter.reason if letter is not None else "",
        "stages": [[keys.web_stage(st), _bucket(sec), repr(sec)] for st, sec in (timings or {}).items()],
    }
    if item is not None and item.duplicate is None:
        tags = storylines if storylines is not None else [t for t in item.storylines if t.on_storyline]
        spec["storylines"] = [_storyline_spec(item, t) for t in tags]
    if letter is not None:
        spec["hour"] = keys.web_dead_hour(datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H"))
        spec["hour_ttl"] = keys.WEB_DEAD_TTL
        spec["reason_key"] = keys.web_dead_reason(letter.reason)
    if not count_outcome:
        spec["minute"] = ""
    payload = json.dumps(spec)
    try:
        client.evalsha(_RECORD_SHA, 0, payload)
    except redis.exceptions.NoScriptError:  # a restarted or different server: load it once
        client.script_load(_RECORD_LUA)
        client.evalsha(_RECORD_SHA, 0, payload)


def record_retagged(client: redis.Redis, entry_id: str, maxlen: int, item: Item, tag: StorylineTag) -> None:
    """Index an article that a retag put on a storyline (its articles entry is unchanged)."""
    record(client, entry_id, maxlen, item=item, storylines=[tag], count_outcome=False)


def histogram(raw: Mapping[str, str]) -> tuple[list[tuple[str, float]], float, float]:
    """Cumulative buckets (le, count), sum and count of a stored stage histogram."""
    running, out = 0.0, []
    for bound in [*(repr(b) for b in BUCKETS), "+Inf"]:
        running += float(raw.get(bound, 0))
        out.append((bound, running))
    count = float(raw.get("count", 0))
    return out, float(raw.get("sum", 0.0)), count if count else running


def ordinal_day(ordinal: float) -> str:
    """YYYY-MM-DD of a day ordinal (as stored in web_days)."""
    return datetime.fromordinal(int(ordinal)).date().isoformat()


def finite(x: Any) -> float:
    """A float that is never NaN or infinite (for charts)."""
    f = float(x)
    return f if math.isfinite(f) else 0.0
