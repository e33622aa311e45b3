"""Jobs and runs: what entered the pipeline, what is still in flight, and waiting for a run to finish.

A job is one URL (its id derives from the canonical form of the URL, so the same URL entering
twice is one job, counted as already seen). A run is one `ingest poll` or `ingest enqueue`:
it records the jobs it caused so `--wait` can read from Redis when all of them have ended.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import redis

from ingest import keys
from ingest.models import Job, Via
from ingest.redisutil import text, text_map, texts
from ingest.urls import canonicalize, job_id


class Dispatcher(Protocol):
    """Sends work to the queue. The Celery implementation lives in workers/; ingest/ stays queue-agnostic."""

    def send_article(self, job: Job) -> None:
        """Queue one article job."""

    def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
        """Queue one poll of one feed."""


# Creates the job unless it exists; records it on the run either way unless it has already ended.
_ENQUEUE_LUA = """
local job_key, inflight, run_jobs = KEYS[1], KEYS[2], KEYS[3]
local jid, url, via, feed_url, run_id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local state = redis.call('HGET', job_key, 'state')
if state == 'done' then return 'done' end
if run_jobs ~= '' then
  redis.call('SADD', run_jobs, jid)
  redis.call('EXPIRE', run_jobs, 86400)
end
if state then return state end
redis.call('HSET', job_key, 'url', url, 'via', via, 'feed_url', feed_url, 'run', run_id,
           'state', 'queued', 'created', now, 'attempts', 0)
redis.call('ZADD', inflight, now, jid)
return 'new'
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
    ) -> Enqueued:
        """Create the job of a (valid) URL and send it, unless the same URL was seen before.

        A version (a feed entry's new `updated` stamp) makes a job of its own: the page is fetched
        again, and dedup tells whether it is a revision or the same text.
        """
        canonical = canonicalize(url)
        jid = job_id(f"{canonical}\n{version}" if version else canonical)
        status = self._enqueue(
            keys=[keys.job(jid), keys.INFLIGHT, keys.run_jobs(run_id) if run_id else ""],
            args=[jid, url, via, feed_url or "", run_id or "", repr(time.time())],
        )
        result = Enqueued(url, jid, text(status))
        if result.is_new:
            dispatcher.send_article(Job(jid, url, via, feed_url, run_id))
        else:
            self.redis.hincrby(keys.STATS, "already_seen", 1)
            if run_id:
                self.redis.hincrby(keys.run(run_id), "already_seen", 1)
        return result

    def enqueue_many(
        self,
        dispatcher: Dispatcher,
        urls: list[tuple[str, str | None]],
        *,
        via: Via,
        feed_url: str | None = None,
        run_id: str | None = None,
        resend_queued: bool = False,
    ) -> list[Enqueued]:
        """enqueue() for many (url, version) pairs: one round trip to Redis and one batch of sends.

        With resend_queued, a job found still queued is sent again: the caller knows the job may
        have been created by an attempt that died before sending it (a second message for a job
        that has one is harmless: the task finds the job done and returns).
        """
        if not urls:
            return []
        now = repr(time.time())
        run_jobs = keys.run_jobs(run_id) if run_id else ""
        jids = []
        pipe = self.redis.pipeline(transaction=False)
        for url, version in urls:
            canonical = canonicalize(url)
            jid = job_id(f"{canonical}\n{version}" if version else canonical)
            jids.append(jid)
            self._enqueue(
                keys=[keys.job(jid), keys.INFLIGHT, run_jobs],
                args=[jid, url, via, feed_url or "", run_id or "", now],
                client=pipe,
            )
        statuses = pipe.execute()
        results = [Enqueued(u, jid, text(st)) for (u, _), jid, st in zip(urls, jids, statuses, strict=True)]
        send = ("new", "queued") if resend_queued else ("new",)
        new = [Job(r.job_id, r.url, via, feed_url, run_id) for r in results if r.status in send]
        send_many = getattr(dispatcher, "send_articles", None)
        if send_many is not None:
            send_many(new)
        else:
            for job in new:
                dispatcher.send_article(job)
        seen = sum(1 for r in results if not r.is_new)
        if seen:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrby(keys.STATS, "already_seen", seen)
            if run_id:
                pipe.hincrby(keys.run(run_id), "already_seen", seen)
            pipe.execute()
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
            self.redis.sadd(keys.run_feeds(run_id), *urls)
            self.redis.expire(keys.run_feeds(run_id), keys.RUN_TTL)

    def feed_polled(self, run_id: str | None, feed_url: str, outcome: str) -> None:
        """Mark a feed of a run as polled (after its entries were enqueued) and wake the waiter."""
        if not run_id:
            return
        pipe = self.redis.pipeline()
        pipe.srem(keys.run_feeds(run_id), feed_url)
        pipe.hincrby(keys.run(run_id), f"feeds_{outcome}", 1)
        pipe.rpush(keys.run_events(run_id), f"feed:{feed_url}")
        pipe.expire(keys.run_events(run_id), keys.RUN_TTL)
        pipe.execute()

    def progress(self, run_id: str) -> RunProgress:
        """How far a run has got, read from Redis."""
        jids = sorted(texts(self.redis.smembers(keys.run_jobs(run_id))))
        pipe = self.redis.pipeline()
        for jid in jids:
            pipe.hmget(keys.job(jid), "state", "outcome", "item_id", "reason", "url")  # same order as fields
        rows = pipe.execute() if jids else []
        fields = ("state", "outcome", "item_id", "reason", "url")
        jobs = {
            jid: {k: text(v) for k, v in zip(fields, row, strict=True)} for jid, row in zip(jids, rows, strict=True)
        }
        feeds_left = self.redis.scard(keys.run_feeds(run_id))
        counters = text_map(self.redis.hgetall(keys.run(run_id)))
        return RunProgress(run_id, jobs, int(feeds_left), counters)

    def wait(self, run_id: str, timeout: float, poll_every: float = 1.0) -> RunProgress:
        """Block until every feed and job of the run has finished (or timeout); returns the last progress."""
        deadline = time.monotonic() + timeout
        while True:
            progress = self.progress(run_id)
            left = deadline - time.monotonic()
            if progress.finished or left <= 0:
                return progress
            # Woken by each finished job or feed of this run; the timeout only bounds how stale
            # the view of jobs shared with other runs can get.
            self.redis.blpop([keys.run_events(run_id)], timeout=max(0.05, min(poll_every, left)))
            self.redis.delete(keys.run_events(run_id))

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
            out.append(Job(jid, rec["url"], via, rec.get("feed_url") or None, rec.get("run") or None))
        return out

    def touch(self, jid: str) -> None:
        """Restart a job's in-flight clock (it was just re-sent)."""
        self.redis.zadd(keys.INFLIGHT, {jid: time.time()}, xx=True)


@dataclass
class RunProgress:
    """A snapshot of one run."""

    run_id: str
    jobs: dict[str, dict[str, str]]
    feeds_left: int
    counters: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        """Jobs not finished yet."""
        return sum(1 for j in self.jobs.values() if j["state"] != "done")

    @property
    def finished(self) -> bool:
        """True when every feed was polled and every job ended."""
        return self.feeds_left == 0 and self.pending == 0

    def count(self, outcome: str) -> int:
        """Finished jobs with this outcome (article, duplicate, deadletter)."""
        return sum(1 for j in self.jobs.values() if j["state"] == "done" and j["outcome"] == outcome)
