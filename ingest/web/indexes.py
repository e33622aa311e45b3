"""Indexes the dashboard and /metrics read, written right after each item is published.

Per storyline: per-day counts by language, outlet and label, and sorted sets of entry ids (by
article time) per facet, so a page reads a range of days or one page of entries and never scans a
stream. Per deadletter reason and hour, per outcome and minute, per stage latency buckets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from redis.client import Pipeline

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


def record(
    client: redis.Redis,
    entry_id: str,
    maxlen: int,
    item: Item | None = None,
    letter: DeadLetter | None = None,
    timings: Mapping[str, float] | None = None,
) -> None:
    """Update every index for one published item or dead letter (one round trip)."""
    pipe = client.pipeline(transaction=False)
    now = time.time()
    outcome = "deadletter" if letter is not None else "duplicate" if item and item.duplicate else "article"
    minute = keys.web_minute(int(now // 60))
    pipe.hincrby(minute, outcome, 1)
    pipe.expire(minute, keys.WEB_MINUTE_TTL)
    if item is not None and item.duplicate is not None:
        pipe.zadd(keys.web_copies(item.duplicate.of), {entry_id: now})
    elif item is not None:
        for tag in item.storylines:
            if tag.on_storyline:
                _on_storyline(pipe, entry_id, maxlen, item, tag)
    if letter is not None:
        hour = keys.web_dead_hour(datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H"))
        pipe.hincrby(hour, letter.reason, 1)
        pipe.expire(hour, keys.WEB_DEAD_TTL)
        zkey = keys.web_dead_reason(letter.reason)
        pipe.zadd(zkey, {entry_id: now})
        pipe.zremrangebyrank(zkey, 0, -(maxlen + 1))
    for stage, seconds in (timings or {}).items():
        key = keys.web_stage(stage)
        pipe.hincrby(key, _bucket(seconds), 1)
        pipe.hincrby(key, "count", 1)
        pipe.hincrbyfloat(key, "sum", seconds)
    pipe.execute()


def _on_storyline(pipe: Pipeline, entry_id: str, maxlen: int, item: Item, tag: StorylineTag) -> None:
    ts = article_time(item.published_at, item.fetched_at)
    day, score, outlet = day_of(ts), ts.timestamp(), outlet_of(item.canonical_url)
    day_key = keys.web_day(tag.id, day)
    pipe.zadd(keys.web_days(tag.id), {day: datetime.fromisoformat(day).toordinal()})
    pipe.hincrby(day_key, "n", 1)
    for facet in facets(item.language, outlet, tag.labels):
        pipe.hincrby(day_key, facet, 1)
    for facet in ["", *facets(item.language, outlet, tag.labels)]:
        zkey = keys.web_items(tag.id, facet)
        pipe.zadd(zkey, {entry_id: score})
        pipe.zremrangebyrank(zkey, 0, -(maxlen + 1))


def record_retagged(client: redis.Redis, entry_id: str, maxlen: int, item: Item, tag: StorylineTag) -> None:
    """Index an article that a retag put on a storyline (its articles entry is unchanged)."""
    pipe = client.pipeline(transaction=False)
    _on_storyline(pipe, entry_id, maxlen, item, tag)
    pipe.execute()


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
