"""Feeds: the feed list and its schedule in Redis, parsing with feedparser, and polling one feed."""

from __future__ import annotations

import calendar
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urljoin

import feedparser
import redis
from redis.typing import EncodableT, FieldT

from ingest import keys
from ingest.config import Settings
from ingest.errors import IngestError, InvalidURL, PermanentError, TransientError
from ingest.fetch import Fetcher
from ingest.jobs import Dispatcher, Jobs
from ingest.models import DeadLetter, Job, Source, utcnow
from ingest.publish import Publisher
from ingest.redisutil import text, text_map, texts
from ingest.urls import validate_url

log = logging.getLogger(__name__)

# A due feed is leased for this long when beat dispatches its poll, so the next beat tick does
# not dispatch it again; finishing the poll sets the real next due time.
POLL_LEASE = 600


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed: its identity (GUID, else link), link and title."""

    key: str
    link: str | None
    title: str | None
    published: datetime | None
    updated: str | None = None  # the entry's own last-modified stamp, as the feed wrote it


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed; `problem` names what was wrong with a feed we could still read."""

    title: str | None
    entries: list[FeedEntry]
    problem: str | None = None


def parse_feed(body: bytes, feed_url: str) -> ParsedFeed:
    """Parse RSS/Atom bytes; PermanentError('malformed_feed') when nothing usable is in them."""
    parsed = feedparser.parse(body, response_headers={"content-location": feed_url})
    problem = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}" if parsed.bozo else None
    if not parsed.get("version") and not parsed.entries:
        raise PermanentError("malformed_feed", problem or "not an RSS or Atom feed")
    entries = []
    for e in parsed.entries:
        link = e.get("link")
        link = urljoin(feed_url, link) if link else None
        # RSS says <guid> identifies an item, but some feeds repeat one GUID for every entry or
        # omit it; the link is the fallback, and an entry with neither cannot be tracked.
        key = e.get("id") or link
        if not key:
            continue
        stamp = e.get("published_parsed") or e.get("updated_parsed")
        published = datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None
        # dict.get: feedparser's own get() falls back from `updated` to `published` (with a warning),
        # which would make every dated entry look updated.
        updated = dict.get(e, "updated")
        entries.append(FeedEntry(str(key), link, e.get("title"), published, updated))
    if len({en.key for en in entries}) == 1 and len(entries) > 1:
        entries = [FeedEntry(en.link or en.key, en.link, en.title, en.published, en.updated) for en in entries]
    return ParsedFeed(parsed.feed.get("title"), entries, problem)


@dataclass(frozen=True)
class FeedInfo:
    """A feed and its health, as `feeds list` and `stats` show it."""

    url: str
    interval: int
    next_due: float | None
    record: dict[str, str]


class FeedStore:
    """The feed list, schedule and health in Redis."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self._claim_due = client.register_script(
            """
            local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
            for _, url in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], url) end
            return due
            """
        )

    def add(self, url: str, interval: int | None = None) -> bool:
        """Add (or update the interval of) a feed; it is due at once. True if it is new."""
        url = validate_url(url)
        interval = interval or self.settings.feed_interval
        if interval < 10:
            raise InvalidURL("interval must be at least 10 seconds")
        new = self.redis.hsetnx(keys.feed(url), "added", repr(time.time()))
        self.redis.hset(keys.feed(url), mapping={"url": url, "interval": interval})
        self.redis.zadd(keys.FEEDS_DUE, {url: time.time()}, nx=True)
        return bool(new)

    def remove(self, url: str) -> bool:
        """Remove a feed, its schedule and its seen entries. True if it existed."""
        removed = self.redis.zrem(keys.FEEDS_DUE, url)
        self.redis.delete(keys.feed(url), keys.feed_seen(url), keys.feed_versions(url))
        return bool(removed)

    def urls(self) -> list[str]:
        """Every feed URL, in schedule order."""
        return texts(self.redis.zrange(keys.FEEDS_DUE, 0, -1))

    def all(self) -> list[FeedInfo]:
        """Every feed with its schedule and health."""
        out = []
        for raw_url, due in cast(list[Any], self.redis.zrange(keys.FEEDS_DUE, 0, -1, withscores=True)):
            url = text(raw_url)
            rec = text_map(self.redis.hgetall(keys.feed(url)))
            out.append(FeedInfo(url, int(rec.get("interval", self.settings.feed_interval)), float(due), rec))
        return out

    def claim_due(self, now: float | None = None, limit: int = 100) -> list[str]:
        """Feeds due now, leased so that a second scheduler cannot dispatch them twice."""
        now = time.time() if now is None else now
        due = self._claim_due(keys=[keys.FEEDS_DUE], args=[now, now + POLL_LEASE, limit])
        return texts(due)

    def _schedule(self, url: str, delay: float) -> None:
        self.redis.zadd(keys.FEEDS_DUE, {url: time.time() + delay}, xx=True)

    def record_ok(
        self,
        url: str,
        status: str,
        new_entries: int,
        etag: str | None,
        modified: str | None,
        problem: str | None = None,
    ) -> None:
        """Note a successful poll (status ok or not_modified) and schedule the next one."""
        interval = int(self.redis.hget(keys.feed(url), "interval") or self.settings.feed_interval)
        now = repr(time.time())
        mapping: dict[FieldT, EncodableT] = {
            "last_polled": now,
            "last_ok": now,
            "last_status": status,
            "failures": "0",
            "last_problem": problem or "",
        }
        if etag is not None:
            mapping["etag"] = etag
        if modified is not None:
            mapping["last_modified"] = modified
        pipe = self.redis.pipeline()
        pipe.hset(keys.feed(url), mapping=mapping)
        pipe.hincrby(keys.feed(url), "polls", 1)
        pipe.hincrby(keys.feed(url), "entries_new", new_entries)
        pipe.execute()
        self._schedule(url, interval)

    def record_failure(self, url: str, error: IngestError) -> None:
        """Count a failed poll and back off exponentially (capped) before the next one."""
        interval = int(self.redis.hget(keys.feed(url), "interval") or self.settings.feed_interval)
        failures = self.redis.hincrby(keys.feed(url), "failures", 1)
        self.redis.hincrby(keys.feed(url), "errors_total", 1)
        self.redis.hset(
            keys.feed(url),
            mapping={
                "last_polled": repr(time.time()),
                "last_status": "error",
                "last_error": f"{error.reason}: {error.detail}"[:500],
            },
        )
        delay = min(interval * 2 ** min(failures, 16), self.settings.feed_max_backoff)
        if isinstance(error, TransientError) and error.retry_after:
            delay = max(delay, error.retry_after)
        self._schedule(url, delay)


def poll(
    store: FeedStore,
    fetcher: Fetcher,
    jobs: Jobs,
    dispatcher: Dispatcher,
    publisher: Publisher,
    feed_url: str,
    run_id: str | None = None,
) -> str:
    """Poll one feed: conditional GET, parse, enqueue unseen entries. Returns ok, not_modified or error."""
    rec = text_map(store.redis.hgetall(keys.feed(feed_url)))
    try:
        resp = fetcher.fetch_feed(feed_url, rec.get("etag") or None, rec.get("last_modified") or None)
        if resp.status == 304:
            store.record_ok(feed_url, "not_modified", 0, None, None)
            return "not_modified"
        parsed = parse_feed(resp.body, resp.final_url)
    except IngestError as exc:
        log.warning("feed poll failed", extra={"feed_url": feed_url, "reason": exc.reason, "detail": exc.detail})
        store.record_failure(feed_url, exc)
        return "error"
    seen_key, versions_key = keys.feed_seen(feed_url), keys.feed_versions(feed_url)
    known = text_map(store.redis.hgetall(versions_key))
    new = 0
    for entry in parsed.entries:
        previous = known.get(entry.key)
        if store.redis.zscore(seen_key, entry.key) is None:
            _enqueue_entry(jobs, dispatcher, publisher, feed_url, run_id, entry, None)
            new += 1
        elif entry.updated and previous is not None and previous != entry.updated:
            # The feed says the entry changed since we took it: fetch it again so that a changed
            # text is published as a revision instead of being missed.
            _enqueue_entry(jobs, dispatcher, publisher, feed_url, run_id, entry, entry.updated)
        elif not (entry.updated and previous is None):
            continue
        # Marked seen only once its job exists: a poll killed mid-way enqueues the rest next time.
        store.redis.zadd(seen_key, {entry.key: time.time()}, nx=True)
        if entry.updated:
            store.redis.hset(versions_key, entry.key, entry.updated)
    cutoff = time.time() - store.settings.seen_ttl_days * 86400
    expired = texts(store.redis.zrangebyscore(seen_key, "-inf", cutoff))
    if expired:
        store.redis.zrem(seen_key, *expired)
        store.redis.hdel(versions_key, *expired)
    store.record_ok(feed_url, "ok", new, resp.etag, resp.last_modified, parsed.problem)
    return "ok"


def _enqueue_entry(
    jobs: Jobs,
    dispatcher: Dispatcher,
    publisher: Publisher,
    feed_url: str,
    run_id: str | None,
    entry: FeedEntry,
    version: str | None,
) -> None:
    try:
        url = validate_url(entry.link or "")
    except InvalidURL as exc:
        # Nothing vanishes: an entry whose link cannot be fetched is dead-lettered, not skipped.
        link = entry.link or entry.key
        job = Job(keys.digest(f"feed-entry\n{feed_url}\n{entry.key}"), link, "feed", feed_url, None)
        publisher.deadletter(
            job,
            DeadLetter(
                id=job.job_id,
                url=link,
                reason=exc.reason,
                detail=exc.detail,
                source=Source(via="feed", feed_url=feed_url),
                failed_at=utcnow(),
            ),
        )
        return
    # The entry is not marked seen yet: if its job exists but is still queued, the poll that created
    # it may have been killed before sending its message, so the message is sent again.
    jobs.enqueue(dispatcher, url, via="feed", feed_url=feed_url, run_id=run_id, version=version, resend_if_queued=True)
