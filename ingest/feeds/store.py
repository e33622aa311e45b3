"""The feed list, its schedule (a sorted set by next-due time) and each feed's health, in Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.typing import EncodableT, FieldT

from ingest import keys
from ingest.config import Settings
from ingest.errors import IngestError, InvalidURL, TransientError
from ingest.feeds import schedule
from ingest.redisutil import text, text_map, texts
from ingest.urls import validate_url

# A due feed is leased for this long when beat dispatches its poll, so the next beat tick does
# not dispatch it again; finishing the poll sets the real next due time.
POLL_LEASE = 600


@dataclass(frozen=True)
class FeedInfo:
    """A feed and its health, as `feeds list` and `stats` show it."""

    url: str
    interval: int
    next_due: float | None
    record: dict[str, str]


@dataclass(frozen=True)
class PollCounts:
    """What one poll (or one part of it) did with the entries it found."""

    found: int = 0
    new: int = 0  # a job was created
    revised: int = 0  # a changed entry was fetched again
    known: int = 0  # the feed listed it before
    already_seen: int = 0  # its URL entered before by another way (another feed, by hand)
    deadlettered: int = 0  # its link cannot be fetched (invalid URL)
    skipped: Mapping[str, int] | None = None  # by reason: no_link, enclosure_only, repeated_in_feed

    def plus(self, other: PollCounts) -> PollCounts:
        """The sum of two counts."""
        skipped = dict(self.skipped or {})
        for k, v in (other.skipped or {}).items():
            skipped[k] = skipped.get(k, 0) + v
        return PollCounts(
            self.found + other.found,
            self.new + other.new,
            self.revised + other.revised,
            self.known + other.known,
            self.already_seen + other.already_seen,
            self.deadlettered + other.deadlettered,
            skipped,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON form, for feed health."""
        return {
            "found": self.found,
            "new": self.new,
            "revised": self.revised,
            "known": self.known,
            "already_seen": self.already_seen,
            "deadlettered": self.deadlettered,
            "skipped": dict(self.skipped or {}),
        }


class FeedStore:
    """The feed list, schedule and health in Redis."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        # ZRANGEBYSCORE with LIMIT walks only the due part of the sorted set: a tick costs
        # O(log N + due), whatever the number of feeds registered.
        self._claim_due = client.register_script(
            """
            local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
            for _, url in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], url) end
            return due
            """
        )

    def add(self, url: str, interval: int | None = None, title: str | None = None) -> bool:
        """Add a feed (or set its interval); it is due at once. True if it is new.

        Without an interval the feed is polled adaptively (INGEST_FEED_ADAPTIVE).
        """
        url = validate_url(url)
        if interval is not None and interval < 10:
            raise InvalidURL("interval must be at least 10 seconds")
        new = self.redis.hsetnx(keys.feed(url), "added", repr(time.time()))
        mapping: dict[FieldT, EncodableT] = {"url": url}
        if interval:
            mapping["interval"] = interval
        if title and new:
            mapping["title"] = title[:300]
        self.redis.hset(keys.feed(url), mapping=mapping)
        self.redis.zadd(keys.FEEDS_DUE, {url: time.time()}, nx=True)
        return bool(new)

    def remove(self, url: str) -> bool:
        """Remove a feed, its schedule and its seen entries. True if it existed."""
        removed = self.redis.zrem(keys.FEEDS_DUE, url)
        self.redis.delete(
            keys.feed(url),
            keys.feed_seen(url),
            keys.feed_versions(url),
            keys.feed_backlog(url),
            keys.feed_children(url),
        )
        return bool(removed)

    def urls(self) -> list[str]:
        """Every feed URL, in schedule order."""
        return texts(self.redis.zrange(keys.FEEDS_DUE, 0, -1))

    def record(self, url: str) -> dict[str, str]:
        """The feed's record (empty when it is not registered)."""
        return text_map(self.redis.hgetall(keys.feed(url)))

    def all(self) -> list[FeedInfo]:
        """Every feed with its schedule and health."""
        rows = cast(list[Any], self.redis.zrange(keys.FEEDS_DUE, 0, -1, withscores=True))
        pipe = self.redis.pipeline(transaction=False)
        for raw_url, _due in rows:
            pipe.hgetall(keys.feed(text(raw_url)))
        records = pipe.execute() if rows else []
        return [self._info(text(u), float(due), text_map(rec)) for (u, due), rec in zip(rows, records, strict=True)]

    def _info(self, url: str, due: float, rec: dict[str, str]) -> FeedInfo:
        interval = rec.get("interval") or rec.get("next_interval") or self.settings.feed_interval
        return FeedInfo(url, int(float(interval)), due, rec)

    def claim_due(self, now: float | None = None, limit: int = 1000) -> list[str]:
        """Feeds due now, leased so that a second scheduler cannot dispatch them twice."""
        now = time.time() if now is None else now
        due = self._claim_due(keys=[keys.FEEDS_DUE], args=[now, now + POLL_LEASE, limit])
        return texts(due)

    def explicit_interval(self, rec: Mapping[str, str]) -> int | None:
        """The interval set for this feed by hand, or None (adaptive)."""
        value = rec.get("interval")
        return int(value) if value else None

    def begin(self, url: str) -> None:
        """Note that a poll started: a poll cut short still shows in health (never `never_polled`)."""
        self.redis.hset(keys.feed(url), "poll_started", repr(time.time()))

    def record_ok(
        self,
        url: str,
        status: str,
        counts: PollCounts,
        *,
        etag: str | None = None,
        modified: str | None = None,
        problem: str | None = None,
        delay: tuple[float, str] | None = None,
        full: bool = False,
        title: str | None = None,
        backlog: int = 0,
        base: tuple[float, str] | None = None,
    ) -> None:
        """Note a successful poll (ok, not_modified, or partial with a backlog) and schedule the next one."""
        now = time.time()
        seconds, why = delay or (float(self.settings.feed_interval), "default interval")
        mapping: dict[FieldT, EncodableT] = {
            "last_polled": repr(now),
            "last_ok": repr(now),
            "last_status": status,
            "failures": "0",
            "broken": "",
            "last_problem": problem or "",
            "next_interval": int(seconds),
            "next_reason": why,
            "backlog": backlog,
        }
        if status != "not_modified":
            mapping["last_entries"] = json.dumps(counts.as_dict())
        if etag is not None:
            mapping["etag"] = etag
        if modified is not None:
            mapping["last_modified"] = modified
        if full:
            mapping["last_full"] = repr(now)
        if title:
            mapping["title"] = title[:300]
        if base is not None:  # the interval before hints, reused when the next answer is a 304
            mapping["base_interval"] = int(base[0])
            mapping["base_reason"] = base[1]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.feed(url), mapping=mapping)
        pipe.hincrby(keys.feed(url), "polls", 1)
        if counts.new:
            pipe.hincrby(keys.feed(url), "entries_new", counts.new)
        for reason, n in (counts.skipped or {}).items():
            pipe.hincrby(keys.feed(url), f"skipped:{reason}", n)
        if counts.deadlettered:
            pipe.hincrby(keys.feed(url), "skipped:invalid_url", counts.deadlettered)
        pipe.zadd(keys.FEEDS_DUE, {url: now + seconds}, xx=True)
        pipe.hincrby(keys.STATS, f"feed_polls:{status}", 1)  # across all feeds, for /metrics
        pipe.execute()

    def record_failure(self, url: str, error: IngestError) -> None:
        """Count a failed poll, back off exponentially (capped), mark the feed broken after N in a row."""
        rec = self.record(url)
        interval = float(rec.get("interval") or rec.get("next_interval") or self.settings.feed_interval)
        failures = self.redis.hincrby(keys.feed(url), "failures", 1)
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        delay, why, broken = schedule.after_failure(self.settings, interval, failures, retry_after)
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(keys.feed(url), "errors_total", 1)
        pipe.hset(
            keys.feed(url),
            mapping={
                "last_polled": repr(now),
                "last_status": "error",
                "last_error": f"{error.reason}: {error.detail}"[:500],
                "broken": "1" if broken else "",
                "next_reason": why,
            },
        )
        pipe.zadd(keys.FEEDS_DUE, {url: now + delay}, xx=True)
        pipe.hincrby(keys.STATS, "feed_polls:error", 1)
        pipe.execute()
