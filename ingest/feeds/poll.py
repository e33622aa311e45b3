"""Polling one feed: conditional GET, parse, enqueue unseen entries in batches, resumably.

A poll spends at most INGEST_FEED_POLL_BUDGET seconds on entries (and on the child sitemaps of an
index) after its fetch; what is left goes to the feed's backlog in Redis and a continuation poll is
sent, so no poll outlives the task time limit or the visibility timeout, and a 10,000-entry feed is
enqueued in several tasks without refetching it. Entries are marked seen only once their job exists:
a poll killed mid-way loses nothing, the next one picks up where it stopped.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import redis
from redis.typing import EncodableT, FieldT

from ingest import keys
from ingest.errors import IngestError
from ingest.feeds import schedule
from ingest.feeds.model import FeedEntry, ParsedFeed, SitemapRef
from ingest.feeds.parse import parse_document
from ingest.feeds.store import FeedStore, PollCounts
from ingest.fetch import FeedResponse, Fetcher
from ingest.jobs import Dispatcher, Jobs
from ingest.models import DeadLetter, Job, Source, utcnow
from ingest.publish import Publisher
from ingest.redisutil import text

log = logging.getLogger(__name__)

Item = FeedEntry | SitemapRef


@dataclass(frozen=True)
class Checked:
    """One feed URL fetched and parsed: the response and what it holds."""

    response: FeedResponse
    feed: ParsedFeed


def fetch_and_parse(fetcher: Fetcher, url: str, etag: str | None = None, modified: str | None = None) -> Checked:
    """Fetch one feed (or sitemap) URL and parse it; an IngestError names what is wrong (not_feed, http_404...).

    A 304 answer comes back with an empty feed.
    """
    resp = fetcher.fetch_feed(url, etag, modified)
    if resp.status == 304:
        return Checked(resp, ParsedFeed(None, [], kind="not_modified"))
    return Checked(resp, parse_document(resp.body, resp.final_url, resp.content_type, fetcher.settings.max_body_bytes))


@dataclass
class _Poll:
    """The parts one poll works with."""

    store: FeedStore
    fetcher: Fetcher
    jobs: Jobs
    dispatcher: Dispatcher
    publisher: Publisher
    feed_url: str
    run_id: str | None

    @property
    def redis(self) -> redis.Redis:
        return self.store.redis


# Take the feed's poll lock unless another poll holds it; the same token (a redelivered task after
# a crash) takes it over instead of waiting for it to expire.
_LOCK_LUA = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_UNLOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def poll(
    store: FeedStore,
    fetcher: Fetcher,
    jobs: Jobs,
    dispatcher: Dispatcher,
    publisher: Publisher,
    feed_url: str,
    run_id: str | None = None,
    token: str | None = None,
) -> str:
    """Poll one feed. Returns ok, not_modified, error, partial (a continuation was sent) or busy.

    `token` identifies this poll (the task id): one poll of a feed runs at a time, and a poll
    delivered again after a crash takes over its own lock.
    """
    settings = store.settings
    token = token or uuid.uuid4().hex
    ttl_ms = int((settings.feed_poll_budget + settings.fetch_deadline * 2 + 60) * 1000)
    lock_key = keys.feed_lock(feed_url)
    if not store.redis.eval(_LOCK_LUA, 1, lock_key, token, ttl_ms):
        return "busy"  # another poll of this feed is running; it does this one's work
    try:
        return _run(_Poll(store, fetcher, jobs, dispatcher, publisher, feed_url, run_id))
    finally:
        store.redis.eval(_UNLOCK_LUA, 1, lock_key, token)


@dataclass
class _Fresh:
    """What a fresh fetch brought: the response, the entries to work through, the next interval's parts."""

    response: FeedResponse
    feed: ParsedFeed
    items: deque[Item]
    counts: PollCounts
    base: tuple[float, str]
    hints: dict[str, float]


def _fetch(p: _Poll, rec: dict[str, str]) -> _Fresh | str:
    """Fetch and parse the feed; returns the outcome (error, not_modified) when there is nothing to work on."""
    settings = p.store.settings
    last_full = float(rec.get("last_full") or 0)
    # Validators may be stuck (a server answering 304 after the feed changed): ask afresh now and then.
    stale = bool(settings.feed_unconditional_after) and time.time() - last_full > settings.feed_unconditional_after
    etag, modified = (None, None) if stale else (rec.get("etag") or None, rec.get("last_modified") or None)
    try:
        checked = fetch_and_parse(p.fetcher, p.feed_url, etag, modified)
    except IngestError as exc:
        log.warning("feed poll failed", extra={"feed_url": p.feed_url, "reason": exc.reason, "detail": exc.detail})
        p.store.record_failure(p.feed_url, exc)
        return "error"
    resp, parsed = checked.response, checked.feed
    hints = schedule.cache_hints(resp.headers)
    explicit = p.store.explicit_interval(rec)
    if resp.status == 304:
        stored = float(rec.get("base_interval") or explicit or settings.feed_interval)
        delay = schedule.after_success(settings, (stored, rec.get("base_reason") or "last interval"), hints)
        none = PollCounts()
        p.store.record_ok(p.feed_url, "not_modified", none, etag=resp.etag, modified=resp.last_modified, delay=delay)
        return "not_modified"
    hints.update(parsed.hints)
    dates = [e.published for e in parsed.entries if e.published]
    base = schedule.base_interval(settings, explicit, dates, time.time())
    limited: dict[str, int] = {}
    items: deque[Item] = deque(parsed.entries)
    items.extend(_children(p, parsed.children, limited))
    counts = PollCounts(found=len(parsed.entries), skipped=parsed.skipped).plus(PollCounts(skipped=limited))
    return _Fresh(resp, parsed, items, counts, base, hints)


def _run(p: _Poll) -> str:
    settings = p.store.settings
    ends_at = time.monotonic() + settings.feed_poll_budget
    p.store.begin(p.feed_url)
    rec = p.store.record(p.feed_url)
    items = _load_backlog(p)
    had_backlog = bool(items)
    fresh = None
    if items:
        log.info("feed poll continues", extra={"feed_url": p.feed_url, "backlog": len(items)})
        counts = PollCounts()
        base = (float(rec.get("base_interval") or settings.feed_interval), rec.get("base_reason") or "last interval")
    else:
        got = _fetch(p, rec)
        if isinstance(got, str):
            return got
        fresh, items, counts, base = got, got.items, got.counts, got.base
    child_marks: dict[str, str] = {}
    counts, problems = _work(p, items, ends_at, counts, child_marks)
    problem = "; ".join(filter(None, [fresh.feed.problem if fresh else None, *problems]))[:500] or None
    if had_backlog or items or child_marks:
        _save_backlog(p, items, child_marks)
    _count_run(p, counts)
    status = "partial" if items else "ok"
    if items:
        # Out of time with entries left: they are in the backlog; a continuation takes them on.
        delay = (0.0, f"continuing: {len(items)} entries left")
    else:
        _trim_seen(p)
        delay = schedule.after_success(settings, base, fresh.hints if fresh else {})
    p.store.record_ok(
        p.feed_url,
        status,
        counts,
        etag=fresh.response.etag if fresh else None,
        modified=fresh.response.last_modified if fresh else None,
        problem=problem,
        delay=delay,
        full=fresh is not None,
        title=fresh.feed.title if fresh else None,
        backlog=len(items),
        base=base,
    )
    if items:
        p.dispatcher.send_feed_poll(p.feed_url, p.run_id)
    return status


def _children(p: _Poll, refs: list[SitemapRef], skipped: dict[str, int]) -> list[SitemapRef]:
    """The child sitemaps of an index worth reading: within depth and count, newest first."""
    settings = p.store.settings
    deep = [r for r in refs if r.depth > settings.sitemap_max_depth]
    if deep:
        skipped["sitemap_too_deep"] = skipped.get("sitemap_too_deep", 0) + len(deep)
    refs = [r for r in refs if r.depth <= settings.sitemap_max_depth]
    refs.sort(key=lambda r: r.lastmod or "", reverse=True)
    if len(refs) > settings.sitemap_max_files:
        skipped["sitemap_over_limit"] = skipped.get("sitemap_over_limit", 0) + len(refs) - settings.sitemap_max_files
        refs = refs[: settings.sitemap_max_files]
    if not refs:
        return []
    known = p.redis.hmget(keys.feed_children(p.feed_url), [r.loc for r in refs])
    # A child whose lastmod is unchanged since it was last read holds nothing new.
    return [r for r, last in zip(refs, known, strict=True) if not (r.lastmod and last and text(last) == r.lastmod)]


def _work(
    p: _Poll, items: deque[Item], ends_at: float, counts: PollCounts, child_marks: dict[str, str]
) -> tuple[PollCounts, list[str]]:
    """Enqueue entries batch by batch and read child sitemaps until done or out of time."""
    batch_size = p.store.settings.feed_batch_size
    problems: list[str] = []
    progress = False  # one step at least, whatever the clock: every continuation moves forward
    while items and (not progress or time.monotonic() < ends_at):
        progress = True
        if isinstance(items[0], SitemapRef):
            ref = items.popleft()
            assert isinstance(ref, SitemapRef)
            try:
                child = fetch_and_parse(p.fetcher, ref.loc).feed
            except IngestError as exc:
                problems.append(f"sitemap {ref.loc}: {exc.reason}")
                continue
            sub: dict[str, int] = {}
            nested = [SitemapRef(c.loc, c.lastmod, ref.depth + 1) for c in child.children]
            items.extendleft(reversed([*child.entries, *_children(p, nested, sub)]))
            counts = counts.plus(PollCounts(found=len(child.entries), skipped={**child.skipped, **sub}))
            if ref.lastmod:
                child_marks[ref.loc] = ref.lastmod
            continue
        batch: list[FeedEntry] = []
        while items and len(batch) < batch_size and isinstance(items[0], FeedEntry):
            entry = items.popleft()
            assert isinstance(entry, FeedEntry)
            batch.append(entry)
        counts = counts.plus(_enqueue_batch(p, batch))
    return counts, problems


def _enqueue_batch(p: _Poll, batch: list[FeedEntry]) -> PollCounts:
    """One batch: one round trip to look entries up, one to create jobs, one send, one to mark them seen."""
    seen_key, versions_key = keys.feed_seen(p.feed_url), keys.feed_versions(p.feed_url)
    ids = [keys.digest(e.key) for e in batch]
    pipe = p.redis.pipeline(transaction=False)
    pipe.zmscore(seen_key, ids)
    pipe.hmget(versions_key, ids)
    scores, versions = pipe.execute()
    wanted: list[tuple[str, str | None, datetime | None]] = []
    marks: dict[str, float] = {}
    stamps: dict[FieldT, EncodableT] = {}
    known = deadlettered = revised = 0
    now = time.time()
    for entry, eid, score, raw_prev in zip(batch, ids, scores, versions, strict=True):
        previous = text(raw_prev) if raw_prev is not None else None
        if score is None and entry.invalid:
            _deadletter(p, entry)
            deadlettered += 1
        elif score is None:
            wanted.append((entry.link or entry.key, None, entry.published))
        elif entry.updated and previous is not None and previous != entry.updated and not entry.invalid:
            # The feed says the entry changed since we took it: fetch it again so that a changed
            # text is published as a revision instead of being missed.
            wanted.append((entry.link or entry.key, entry.updated, entry.published))
            revised += 1
        else:
            known += 1
            if not (entry.updated and previous is None):
                continue
        marks[eid] = now
        if entry.updated:
            stamps[eid] = entry.updated
    # Entries are marked seen only after this: a job that exists but is still queued may belong to
    # a poll killed before it sent the message, so the message is sent again (a job runs once).
    results = p.jobs.enqueue_many(
        p.dispatcher, wanted, via="feed", feed_url=p.feed_url, run_id=p.run_id, resend_if_queued=True
    )
    new = sum(1 for r, (_, version, _) in zip(results, wanted, strict=True) if r.is_new and version is None)
    already = sum(1 for r in results if not r.is_new)
    pipe = p.redis.pipeline(transaction=False)
    if marks:
        pipe.zadd(seen_key, marks, nx=True)
    if stamps:
        pipe.hset(versions_key, mapping=stamps)
    pipe.execute()
    return PollCounts(0, new, revised, known, already, deadlettered)


def _deadletter(p: _Poll, entry: FeedEntry) -> None:
    """Nothing vanishes: an entry whose link cannot be fetched is dead-lettered, not skipped."""
    link = entry.link or entry.key
    job = Job(keys.digest(f"feed-entry\n{p.feed_url}\n{entry.key}"), link, "feed", p.feed_url, None)
    letter = DeadLetter(
        id=job.job_id,
        url=link,
        reason="invalid_url",
        detail=entry.invalid or "invalid URL",
        source=Source(via="feed", feed_url=p.feed_url),
        failed_at=utcnow(),
    )
    p.publisher.deadletter(job, letter)


def _load_backlog(p: _Poll) -> deque[Item]:
    items: deque[Item] = deque()
    for raw in p.redis.lrange(keys.feed_backlog(p.feed_url), 0, -1):
        d = json.loads(raw)
        items.append(SitemapRef.from_json(d) if "s" in d else FeedEntry.from_json(d))
    return items


def _chunks(items: deque[Item], size: int = 1000) -> Iterator[list[str]]:
    row: list[str] = []
    for it in items:
        row.append(json.dumps(it.to_json(), ensure_ascii=False))
        if len(row) == size:
            yield row
            row = []
    if row:
        yield row


def _save_backlog(p: _Poll, items: deque[Item], child_marks: dict[str, str]) -> None:
    """Replace the backlog by what is left, in one transaction with the child sitemaps now read."""
    pipe = p.redis.pipeline(transaction=True)
    pipe.delete(keys.feed_backlog(p.feed_url))
    for chunk in _chunks(items):
        pipe.rpush(keys.feed_backlog(p.feed_url), *chunk)
    if child_marks:
        marks: dict[FieldT, EncodableT] = {k: v for k, v in child_marks.items()}
        pipe.hset(keys.feed_children(p.feed_url), mapping=marks)
    pipe.execute()


def _trim_seen(p: _Poll) -> None:
    """Forget entries first seen longer ago than the seen TTL (a complete poll listed what is current)."""
    seen_key = keys.feed_seen(p.feed_url)
    cutoff = time.time() - p.store.settings.seen_ttl_days * 86400
    expired = p.redis.zrangebyscore(seen_key, "-inf", cutoff)
    if expired:
        pipe = p.redis.pipeline(transaction=False)
        pipe.zrem(seen_key, *expired)
        pipe.hdel(keys.feed_versions(p.feed_url), *expired)
        pipe.execute()


def _count_run(p: _Poll, counts: PollCounts) -> None:
    """Entries a run's poll could not enqueue, by reason, for the run summary."""
    if not p.run_id:
        return
    skipped = dict(counts.skipped or {})
    if counts.deadlettered:
        skipped["invalid_url"] = skipped.get("invalid_url", 0) + counts.deadlettered
    if skipped:
        pipe = p.redis.pipeline(transaction=False)
        for reason, n in skipped.items():
            pipe.hincrby(keys.run(p.run_id), f"skipped:{reason}", n)
        pipe.execute()
