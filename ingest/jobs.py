"""Jobs and runs: what entered the pipeline, what is still in flight, and waiting for a run to finish.

A job is one URL (its id derives from the canonical form of the URL, so the same URL entering
twice is one job, counted as already seen). A run is one `ingest poll` or `ingest enqueue`:
it records the jobs it caused so `--wait` can read from Redis when all of them have ended.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import redis

from ingest import keys
from ingest.models import Job, Via
from ingest.redisutil import text, text_map, texts
from ingest.urls import canonicalize, job_id

MIN_READ_INTERVAL = 0.1  # seconds between two reads of a run's counters while jobs keep ending


class Dispatcher(Protocol):
    """Sends work to the queue. The Celery implementation lives in workers/; ingest/ stays queue-agnostic."""

    def send_article(self, job: Job) -> None:
        """Queue one article job."""

    def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
        """Queue one poll of one feed."""

    def send_feed_polls(self, feed_urls: list[str], run_id: str | None) -> None:
        """Queue polls of many feeds in one go."""


# Creates the job unless it exists. A new job counts on its run (`jobs`); its end counts there too
# (publish.py), so a waiter compares two counters instead of reading every job. A job another run
# has in flight is waited on as `foreign`; one that has ended is remembered as seen by this run.
# A feed entry polled without a run (by the scheduler) joins the run `feeds add` opened for the
# feed's first poll, if that poll is this one. Returns {status, run id}.
_ENQUEUE_LUA = """
local job_key, inflight, feed_key = KEYS[1], KEYS[2], KEYS[3]
local jid, url, via, feed_url, run_id, now, run_prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if run_id == '' and feed_key ~= '' then run_id = redis.call('HGET', feed_key, 'first_run') or '' end
local run_key, run_jobs, run_foreign, run_seen = '', '', '', ''
if run_id ~= '' then
  run_key = run_prefix .. run_id
  run_jobs, run_foreign, run_seen = run_key .. ':jobs', run_key .. ':foreign', run_key .. ':seen'
end
local state = redis.call('HGET', job_key, 'state')
if state == 'done' then
  if run_seen ~= '' then
    redis.call('SADD', run_seen, jid)
    redis.call('EXPIRE', run_seen, 86400)
  end
  return {'done', run_id}
end
if run_jobs ~= '' then
  redis.call('SADD', run_jobs, jid)
  redis.call('EXPIRE', run_jobs, 86400)
end
if state then
  if run_foreign ~= '' and redis.call('HGET', job_key, 'run') ~= run_id then
    redis.call('SADD', run_foreign, jid)
    redis.call('EXPIRE', run_foreign, 86400)
  end
  return {state, run_id}
end
redis.call('HSET', job_key, 'url', url, 'via', via, 'feed_url', feed_url, 'run', run_id,
           'state', 'queued', 'created', now, 'attempts', 0)
redis.call('ZADD', inflight, now, jid)
if run_key ~= '' then redis.call('HINCRBY', run_key, 'jobs', 1) end
return {'new', run_id}
"""


# Marks a job running and counts the attempt; recreates the record if a message outlived it.
# Returns {attempts, clean retries}: attempts that neither finished nor retried cleanly crashed.
_BEGIN_LUA = """
local job_key, inflight = KEYS[1], KEYS[2]
local jid, url, via, feed_url, run_id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local state = redis.call('HGET', job_key, 'state')
if state == 'done' then return {-1, 0} end
if not state then
  redis.call('HSET', job_key, 'url', url, 'via', via, 'feed_url', feed_url, 'run', run_id, 'created', now)
  redis.call('ZADD', inflight, now, jid)
end
redis.call('HSET', job_key, 'state', 'running', 'started', now)
local attempts = redis.call('HINCRBY', job_key, 'attempts', 1)
return {attempts, tonumber(redis.call('HGET', job_key, 'retried') or '0')}
"""


@dataclass
class Enqueued:
    """What happened to one URL handed to enqueue."""

    url: str
    job_id: str
    status: str  # new | queued | running | done (done and in-flight jobs count as already seen)

    @property
    def is_new(self) -> bool:
        """True when this call created the job."""
        return self.status == "new"


class Jobs:
    """Job records and runs in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._enqueue = client.register_script(_ENQUEUE_LUA)
        self._begin = client.register_script(_BEGIN_LUA)

    def new_run(self, kind: str) -> str:
        """Start a run (poll or enqueue) and return its id."""
        run_id = uuid.uuid4().hex[:16]
        pipe = self.redis.pipeline()
        pipe.hset(keys.run(run_id), mapping={"kind": kind, "created": repr(time.time())})
        pipe.expire(keys.run(run_id), keys.RUN_TTL)
        pipe.execute()
        return run_id

    def enqueue(
        self,
        dispatcher: Dispatcher,
        url: str,
        *,
        via: Via,
        feed_url: str | None = None,
        run_id: str | None = None,
        version: str | None = None,
        published: datetime | None = None,
        resend_if_queued: bool = False,
    ) -> Enqueued:
        """Create the job of a (valid) URL and send it, unless the same URL was seen before.

        A version (a feed entry's new `updated` stamp) makes a job of its own: the page is fetched
        again, and dedup tells whether it is a revision or the same text. `published` is a feed entry's
        date, the article's publication date when its page gives none. resend_if_queued sends a
        job that exists but never started once more (see feeds.poll).
        """
        canonical = canonicalize(url)
        jid = job_id(f"{canonical}\n{version}" if version else canonical)
        status, joined = self._enqueue(
            keys=[keys.job(jid), keys.INFLIGHT, keys.feed(feed_url) if feed_url and not run_id else ""],
            args=[jid, url, via, feed_url or "", run_id or "", repr(time.time()), keys.run("")],
        )
        run_id = text(joined) or None
        result = Enqueued(url, jid, text(status))
        if result.is_new or (resend_if_queued and result.status == "queued"):
            # A feed entry's date travels with its job: the page may carry none (kept for a re-send too).
            stamp = published.isoformat() if published is not None else None
            if stamp and result.is_new:
                self.redis.hset(keys.job(jid), "feed_date", stamp)  # not `published`: publish.py's marker
            # A job still queued may have no message at all when the poll that created it was killed
            # before sending it. Sending again is safe, since a job runs to its end once
            # (ingest.pipeline.run), and it spares the URL a wait for the sweeper.
            dispatcher.send_article(Job(jid, url, via, feed_url, run_id, stamp))
        if not result.is_new:
            self.redis.hincrby(keys.STATS, "already_seen", 1)
            if run_id:
                self.redis.hincrby(keys.run(run_id), "already_seen", 1)
        return result

    def enqueue_many(
        self,
        dispatcher: Dispatcher,
        urls: list[tuple[str, str | None, datetime | None]],
        *,
        via: Via,
        feed_url: str | None = None,
        run_id: str | None = None,
        resend_if_queued: bool = False,
    ) -> list[Enqueued]:
        """enqueue() for many (url, version, published) triples: one round trip to Redis and one batch of sends."""
        if not urls:
            return []
        now = repr(time.time())
        feed_key = keys.feed(feed_url) if feed_url and not run_id else ""
        jids = []
        pipe = self.redis.pipeline(transaction=False)
        for url, version, _ in urls:
            canonical = canonicalize(url)
            jid = job_id(f"{canonical}\n{version}" if version else canonical)
            jids.append(jid)
            self._enqueue(
                keys=[keys.job(jid), keys.INFLIGHT, feed_key],
                args=[jid, url, via, feed_url or "", run_id or "", now, keys.run("")],
                client=pipe,
            )
        replies = pipe.execute()
        results = [Enqueued(u, jid, text(st)) for (u, _, _), jid, (st, _) in zip(urls, jids, replies, strict=True)]
        # the run each job joined: the poll's own, or the first poll's run of a feed just added
        joined = [text(run) or None for _, run in replies]
        new: list[Job] = []
        dates = self.redis.pipeline(transaction=False)
        for r, (_, _, published), run in zip(results, urls, joined, strict=True):
            # a job still queued may have lost its message with a poll killed before sending it
            if not (r.is_new or (resend_if_queued and r.status == "queued")):
                continue
            # A feed entry's date travels with its job: the page may carry none (kept for a re-send too).
            stamp = published.isoformat() if published is not None else None
            if stamp and r.is_new:
                dates.hset(keys.job(r.job_id), "feed_date", stamp)  # not `published`: publish.py's marker
            new.append(Job(r.job_id, r.url, via, feed_url, run, stamp))
        dates.execute()
        send_many = getattr(dispatcher, "send_articles", None)
        if send_many is not None:
            send_many(new)
        else:
            for job in new:
                dispatcher.send_article(job)
        counts = self.redis.pipeline(transaction=False)
        for r, run in zip(results, joined, strict=True):
            if not r.is_new:
                counts.hincrby(keys.STATS, "already_seen", 1)
                if run:
                    counts.hincrby(keys.run(run), "already_seen", 1)
        counts.execute()
        return results

    def begin(self, job: Job) -> int | None:
        """Start an attempt at a job: how many earlier attempts crashed, or None when the job has ended."""
        attempts, retried = self._begin(
            keys=[keys.job(job.job_id), keys.INFLIGHT],
            args=[job.job_id, job.url, job.via, job.feed_url or "", job.run_id or "", repr(time.time())],
        )
        if int(attempts) < 0:
            return None
        return int(attempts) - 1 - int(retried)

    def retried(self, job_id: str) -> None:
        """Note that an attempt ended in a scheduled retry (it did not crash)."""
        self.redis.hincrby(keys.job(job_id), "retried", 1)

    def job(self, jid: str) -> dict[str, str]:
        """The job record (empty when unknown or expired)."""
        return text_map(self.redis.hgetall(keys.job(jid)))

    def add_run_feeds(self, run_id: str, feed_urls: Iterable[str]) -> None:
        """Record the feeds a run asked to poll, before the polls are sent."""
        urls = list(feed_urls)
        if urls:
            pipe = self.redis.pipeline()
            pipe.sadd(keys.run_feeds(run_id), *urls)
            pipe.expire(keys.run_feeds(run_id), keys.RUN_TTL)
            pipe.hincrby(keys.run(run_id), "feeds", len(urls))
            pipe.execute()

    def feed_polled(self, run_id: str | None, feed_url: str, outcome: str) -> None:
        """Mark a feed of a run as polled (after its entries were enqueued) and wake the waiter.

        The first poll of a feed, whoever sent it, also ends the run `feeds add` opened for it.
        """
        first = text(self.redis.hget(keys.feed(feed_url), "first_run")) or None
        runs = {r for r in (run_id, first) if r}
        if not runs:
            return
        pipe = self.redis.pipeline()
        for rid in sorted(runs):
            pipe.srem(keys.run_feeds(rid), feed_url)
            pipe.hincrby(keys.run(rid), f"feeds_{outcome}", 1)
            pipe.rpush(keys.run_events(rid), f"feed:{feed_url}")
            pipe.expire(keys.run_events(rid), keys.RUN_TTL)
        if first:
            pipe.hdel(keys.feed(feed_url), "first_run")
        pipe.execute()

    def exists(self, run_id: str) -> bool:
        """True when the run is known (runs live a day)."""
        return bool(self.redis.exists(keys.run(run_id)))

    def open_first_poll(self, feed_url: str) -> str:
        """Open a run for a new feed's first poll (the scheduler's or a `poll`), for `poll --wait` to count."""
        run_id = self.new_run("feed_add")
        self.add_run_feeds(run_id, [feed_url])
        pipe = self.redis.pipeline()
        pipe.hset(keys.feed(feed_url), "first_run", run_id)
        pipe.sadd(keys.RUNS_FROM_ADDS, run_id)
        pipe.execute()
        return run_id

    def adopt_first_polls(self, max_age: float = 3600) -> list[str]:
        """Take the first-poll runs `feeds add` opened in the last max_age seconds, so one `poll` counts them.

        A run whose feed was removed before its first poll is left out: nothing would end it.
        """
        run_ids = texts(self.redis.spop(keys.RUNS_FROM_ADDS, 1000) or [])
        if not run_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for rid in run_ids:
            pipe.hget(keys.run(rid), "created")
            pipe.smembers(keys.run_feeds(rid))
        replies = pipe.execute()
        cutoff = time.time() - max_age
        adopted = []
        for i, rid in enumerate(run_ids):
            created, waiting = replies[2 * i], texts(replies[2 * i + 1])
            if not created or float(created) < cutoff:
                continue
            if any(not self.redis.exists(keys.feed(url)) for url in waiting):
                continue
            adopted.append(rid)
        return adopted

    def counts(self, run_ids: Sequence[str], *, drain: Sequence[str] = ()) -> RunCounts:
        """How far one or more runs have got, from their counters: a fixed number of commands per run.

        Jobs another run had in flight are checked one by one, and forgotten once they have ended.
        The event lists in `drain` are emptied in the same transaction: what is on them afterwards
        ended after this reading.
        """
        pipe = self.redis.pipeline(transaction=bool(drain))
        for rid in run_ids:
            pipe.hgetall(keys.run(rid))
            pipe.scard(keys.run_feeds(rid))
            pipe.smembers(keys.run_foreign(rid))
        if drain:
            pipe.delete(*drain)
        replies = pipe.execute()
        total = RunCounts()
        for i, rid in enumerate(run_ids):
            counters, feeds_left, foreign = text_map(replies[3 * i]), int(replies[3 * i + 1]), texts(replies[3 * i + 2])
            total.add(counters, feeds_left)
            if foreign:
                states = self.redis.pipeline(transaction=False)
                for jid in foreign:
                    states.hget(keys.job(jid), "state")
                ended = [jid for jid, st in zip(foreign, states.execute(), strict=True) if text(st) in ("done", "")]
                if ended:
                    self.redis.srem(keys.run_foreign(rid), *ended)
                total.foreign_left += len(foreign) - len(ended)
        return total

    def progress(self, run_id: str) -> RunProgress:
        """Everything about a run, read from Redis: its jobs (one read of each), seen URLs and counters."""
        jids = sorted(texts(self.redis.smembers(keys.run_jobs(run_id))))
        seen = sorted(texts(self.redis.smembers(keys.run_seen(run_id))))
        pipe = self.redis.pipeline(transaction=False)
        for jid in jids + seen:
            pipe.hgetall(keys.job(jid))
        rows = [text_map(row) for row in pipe.execute()] if jids or seen else []
        feeds_left = self.redis.scard(keys.run_feeds(run_id))
        counters = text_map(self.redis.hgetall(keys.run(run_id)))
        return RunProgress(
            run_id,
            dict(zip(jids, rows[: len(jids)], strict=True)),
            int(feeds_left),
            counters,
            dict(zip(seen, rows[len(jids) :], strict=True)),
        )

    def wait(
        self,
        run_id: str,
        timeout: float,
        poll_every: float = 1.0,
        *,
        also: Sequence[str] = (),
        on_progress: Callable[[RunCounts], None] | None = None,
        on_outage: Callable[[str], None] | None = None,
    ) -> RunProgress:
        """Block until every feed and job of the run (and of the runs in `also`) has ended, or timeout.

        Each wake-up reads the runs' counters (O(1) per finished job); the jobs are read once, at the end.
        Redis going away meanwhile (a restart) is waited out until the timeout, said once through on_outage.
        """
        run_ids = [run_id, *also]
        events = [keys.run_events(r) for r in run_ids]
        deadline = time.monotonic() + timeout
        outage = _Outage(deadline, on_outage)
        while True:
            try:
                counts = self.counts(run_ids, drain=events)
                last_read = time.monotonic()
                if on_progress is not None:
                    on_progress(counts)
                left = deadline - time.monotonic()
                if counts.finished or left <= 0:
                    break
                self._next_events(events, counts, min(poll_every, left), last_read)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                outage.wait_out(exc)
                continue
            outage.over()
        while True:
            try:
                progress = self.progress(run_id)
                for other in also:
                    progress.merge(self.progress(other))
                return progress
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                outage.wait_out(exc, grace=OUTAGE_GRACE)

    def _next_events(self, events: list[str], counts: RunCounts, wait: float, last_read: float) -> None:
        """Block until jobs or feeds of the runs end (one event each), or `wait` seconds pass.

        Jobs ending in a burst are read as one, at most one reading per MIN_READ_INTERVAL, except
        that the events which may be the runs' last end the wait at once. The timeout bounds how
        stale the view of jobs shared with other runs can get, and paces the progress display.
        """
        ended = 0
        timeout = wait
        while self.redis.blpop(events, timeout=max(0.01, timeout)) is not None:
            ended += 1
            timeout = MIN_READ_INTERVAL - (time.monotonic() - last_read)
            if counts.may_end_with(ended) or timeout <= 0:
                return

    def stale(self, older_than: float, limit: int = 500) -> list[Job]:
        """Jobs in flight for longer than older_than seconds: their messages may be lost."""
        cutoff = time.time() - older_than
        jids = texts(self.redis.zrangebyscore(keys.INFLIGHT, "-inf", cutoff, start=0, num=limit))
        out = []
        for jid in jids:
            rec = self.job(jid)
            if not rec or rec.get("state") == "done":
                self.redis.zrem(keys.INFLIGHT, jid)
                continue
            via: Via = "feed" if rec.get("via") == "feed" else "manual"
            out.append(
                Job(jid, rec["url"], via, rec.get("feed_url") or None, rec.get("run") or None, rec.get("feed_date"))
            )
        return out

    def touch(self, jid: str) -> None:
        """Restart a job's in-flight clock (it was just re-sent)."""
        self.redis.zadd(keys.INFLIGHT, {jid: time.time()}, xx=True)


# How long past its own timeout a wait still waits for Redis to come back, to read the final state.
OUTAGE_GRACE = 30.0


class _Outage:
    """A wait's view of Redis being away: pause and retry until the deadline, say so once."""

    def __init__(self, deadline: float, say: Callable[[str], None] | None) -> None:
        self.deadline, self.say, self.since = deadline, say, 0.0

    def wait_out(self, exc: Exception, grace: float = 0.0) -> None:
        """Sleep a moment before the next try; re-raise once the deadline (plus grace) has passed."""
        if time.monotonic() > self.deadline + grace:
            raise exc
        if not self.since:
            self.since = time.monotonic()
            if self.say is not None:
                self.say(f"Redis is unavailable ({exc}); waiting for it to come back")
        time.sleep(0.5)

    def over(self) -> None:
        """Redis answered again."""
        if self.since and self.say is not None:
            self.say(f"Redis is back after {time.monotonic() - self.since:.0f}s")
        self.since = 0.0


@dataclass
class RunCounts:
    """What a waiter reads after each finished job: counters only, never the list of jobs."""

    jobs: int = 0  # jobs the runs created
    outcomes: dict[str, int] = field(default_factory=dict)  # article, duplicate, deadletter -> ended jobs
    already_seen: int = 0
    foreign_left: int = 0  # jobs of other runs these runs wait on, not ended yet
    feeds: int = 0
    feeds_left: int = 0

    def add(self, counters: dict[str, str], feeds_left: int) -> None:
        """Add one run's counters."""
        self.jobs += int(counters.get("jobs", 0))
        for outcome in OUTCOMES:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + int(counters.get(outcome, 0))
        self.already_seen += int(counters.get("already_seen", 0))
        self.feeds += int(counters.get("feeds", 0))
        self.feeds_left += feeds_left

    @property
    def done(self) -> int:
        """Jobs of these runs that have ended."""
        return sum(self.outcomes.values())

    @property
    def finished(self) -> bool:
        """True when every feed was polled and every job ended."""
        return self.feeds_left == 0 and self.done >= self.jobs and self.foreign_left == 0

    def may_end_with(self, ended: int) -> bool:
        """Whether this many more jobs or feeds ending (one event each) could finish the runs."""
        return self.foreign_left == 0 and self.feeds_left + max(0, self.jobs - self.done) <= ended


OUTCOMES = ("article", "duplicate", "deadletter")


@dataclass
class RunProgress:
    """A snapshot of one run (or of several merged): every job it waits on, and the URLs it found seen."""

    run_id: str
    jobs: dict[str, dict[str, str]]
    feeds_left: int
    counters: dict[str, str] = field(default_factory=dict)
    seen: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        """Jobs not finished yet."""
        return sum(1 for j in self.jobs.values() if j.get("state") != "done")

    @property
    def finished(self) -> bool:
        """True when every feed was polled and every job ended."""
        return self.feeds_left == 0 and self.pending == 0

    def count(self, outcome: str) -> int:
        """Finished jobs with this outcome (article, duplicate, deadletter)."""
        return sum(1 for j in self.jobs.values() if j.get("state") == "done" and j.get("outcome") == outcome)

    def merge(self, other: RunProgress) -> None:
        """Fold another run's jobs and counters into this one (work a run adopted)."""
        self.jobs.update(other.jobs)
        self.seen.update(other.seen)
        self.feeds_left += other.feeds_left
        for k, v in other.counters.items():
            if k.startswith(("storyline:", "already_seen")):  # its feed's poll is counted by whoever polled
                self.counters[k] = str(int(self.counters.get(k, 0)) + int(v))
