"""Thin Celery tasks: decode arguments, call ingest, map errors to retry or deadletter."""

from __future__ import annotations

import cProfile
import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

import redis
from celery import Task
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from ingest import feeds, pipeline
from ingest.errors import TransientError
from ingest.feeds.polling import poll as poll_one_feed
from ingest.models import Job
from workers.app import app, settings
from workers.dispatch import CeleryDispatcher
from workers.sender import RedisDispatcher

log = logging.getLogger(__name__)

_context: pipeline.Context | None = None
_pid: int | None = None
_profile: cProfile.Profile | None = None
# With a timeline directory: (task name, wall start, wall end, CPU seconds) of every task this process ran.
_timeline: list[tuple[str, float, float, float]] = []
_task_started = _task_cpu = 0.0


def context() -> pipeline.Context:
    """This process's pipeline context (connections are per process: never shared across fork)."""
    global _context, _pid
    if _context is None or _pid != os.getpid():
        _context = pipeline.Context.create(settings())
        _pid = os.getpid()
    return _context


@worker_init.connect
def _warm_up_parent(**_: Any) -> None:
    # Celery's "received" and "succeeded" lines and httpx's line per request are three INFO lines
    # per article that say what our own "article done" line says; failures still log as warnings.
    for name in ("celery.worker.strategy", "celery.app.trace", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # In the parent, before the pool forks: children share the loaded models copy-on-write
    # instead of each paying ~1 s for the language model on its first article.
    pipeline.warm_up()


@worker_process_init.connect
def _connect_child(**_: Any) -> None:
    # Connect and index the seeds before the first task, not during it.
    pipeline.warm_up(context())
    _start_profile()


@worker_ready.connect
def _profile_parent(**_: Any) -> None:
    _start_profile()


def _start_profile() -> None:
    global _profile
    if settings().profile_dir is not None:
        # CPU time, not wall time: waiting for the next task is not a cost of the task
        _profile = cProfile.Profile(time.process_time)
        _profile.enable()


@worker_process_shutdown.connect
def _write_child_profile(**_: Any) -> None:
    _write_profile("child")


@worker_shutdown.connect
def _write_parent_profile(**_: Any) -> None:
    _write_profile("parent")


def _write_profile(role: str) -> None:
    directory = settings().profile_dir
    if _profile is not None and directory is not None:
        _profile.disable()
        directory.mkdir(parents=True, exist_ok=True)
        _profile.dump_stats(directory / f"{role}-{os.getpid()}.prof")
    timeline_dir = settings().timeline_dir
    if _timeline and timeline_dir is not None:
        timeline_dir.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{name}\t{start:.6f}\t{end:.6f}\t{cpu:.6f}\n" for name, start, end, cpu in _timeline)
        (timeline_dir / f"timeline-{os.getpid()}.tsv").write_text(lines)


@task_prerun.connect
def _task_start(**_: Any) -> None:
    global _task_started, _task_cpu
    if settings().timeline_dir is not None:
        _task_started, _task_cpu = time.time(), time.process_time()


@task_postrun.connect
def _task_end(task: Task[Any, Any] | None = None, **_: Any) -> None:
    # Wall and CPU time, for the gaps between tasks and the waits inside them (benchmarks/profile_run.py).
    if _task_started:
        cpu = time.process_time() - _task_cpu
        _timeline.append((task.name if task is not None else "?", _task_started, time.time(), cpu))


def _soft_time_limit(signum: int, frame: FrameType | None) -> None:
    limit = app.conf.task_soft_time_limit
    raise TransientError("timeout", f"the attempt ran past the task's soft time limit ({limit}s)")


@task_prerun.connect
def _soft_limit_is_a_timeout(**_: Any) -> None:
    # Celery's soft limit raises its own exception, which ingest cannot tell from a bug (it would
    # be dead-lettered as internal_error); raised as TransientError(timeout) it is retried, then
    # dead-lettered as a timeout. billiard installs its handler after worker_process_init, so
    # it is replaced here, before the first task of each child.
    if (
        hasattr(signal, "SIGUSR1")
        and threading.current_thread() is threading.main_thread()  # a prefork child, not a thread pool
        and signal.getsignal(signal.SIGUSR1) is not _soft_time_limit
    ):
        signal.signal(signal.SIGUSR1, _soft_time_limit)


# Waiting for a busy host is scheduling, not failing: it has a budget of its own.
MAX_BUSY_RETRIES = 100
# Redis went away mid-task (a restart): try again this soon; the job is not failed.
REDIS_RETRY_DELAY = 2.0
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
# A poll retried this many times (about a minute) waits for beat to poll the feed again instead.
MAX_REDIS_POLL_RETRIES = 30


@app.task(name="ingest.process_article", bind=True, max_retries=None)
def process_article(self: Task[Any, Any], job: dict[str, Any], busy: int = 0) -> str:
    """Process one article job."""
    try:
        return _process_article(self, job, busy)
    except REDIS_ERRORS as exc:
        # Job bookkeeping, publishing or the retry itself lost Redis: a Redis restart is a
        # delay, never a failure, so the attempt is sent again (counted as scheduling, like a
        # busy host) once the broker takes messages again.
        extra = {"article_url": job.get("url"), "reason": "redis_unavailable"}
        log.warning("redis unavailable, article retried", extra=extra)
        raise self.retry(countdown=REDIS_RETRY_DELAY, exc=exc, kwargs={"job": job, "busy": busy + 1}) from exc


def _process_article(self: Task[Any, Any], job: dict[str, Any], busy: int) -> str:
    ctx = context()
    j = Job(**job)
    try:
        return pipeline.run(ctx, j)
    except TransientError as exc:
        is_busy = exc.reason == "host_busy"
        failures = self.request.retries - busy
        if (failures >= ctx.settings.task_max_retries and not is_busy) or busy >= MAX_BUSY_RETRIES:
            return pipeline.fail(ctx, j, exc)
        delay = pipeline.retry_delay(exc, 0 if is_busy else failures, ctx.settings)
        ctx.jobs.retried(j.job_id)
        log.info("article retry", extra={"article_url": j.url, "reason": exc.reason, "countdown": round(delay, 1)})
        raise self.retry(countdown=delay, exc=exc, kwargs={"job": job, "busy": busy + is_busy}) from exc


@app.task(name="ingest.poll_feed", bind=True, max_retries=None)
def poll_feed(self: Task[Any, Any], feed_url: str, run_id: str | None = None) -> str:
    """Poll one feed and enqueue its new entries (a big feed continues in further polls)."""
    ctx = context()
    store = feeds.FeedStore(ctx.redis, ctx.settings)
    outcome = "error"
    try:
        # Messages written straight to the broker's lists: a batch of entries is one round trip.
        dispatcher = RedisDispatcher(ctx.redis)
        token = self.request.id
        outcome = poll_one_feed(store, ctx.fetcher, ctx.jobs, dispatcher, ctx.publisher, feed_url, run_id, token)
    except REDIS_ERRORS as exc:
        # Redis went away mid-poll (a restart): poll again shortly under the same task id, which
        # takes over its own poll lock; entries already enqueued are found seen and not sent twice.
        outcome = "redis_unavailable"
        if self.request.retries >= MAX_REDIS_POLL_RETRIES:
            raise
        raise self.retry(countdown=REDIS_RETRY_DELAY, exc=exc) from exc
    finally:
        # A partial poll sent its continuation, and a busy one leaves the feed to the poll in
        # progress: the runs (this one, a new feed's first) hear of the feed once its last part ran.
        if outcome not in ("partial", "busy", "redis_unavailable"):
            ctx.jobs.feed_polled(run_id, feed_url, outcome)
    if outcome == "busy" and run_id:
        raise self.retry(countdown=2.0)
    return outcome


@app.task(name="ingest.poll_due_feeds")
def poll_due_feeds() -> int:
    """Dispatch a poll for every feed that is due (the schedule is read only as far as it is due)."""
    ctx = context()
    dispatcher = RedisDispatcher(ctx.redis)
    store = feeds.FeedStore(ctx.redis, ctx.settings)
    total = 0
    for _ in range(20):  # at most 20,000 per tick; the rest are still due at the next one
        due = store.claim_due()
        dispatcher.send_feed_polls(due, None)
        total += len(due)
        if len(due) < 1000:
            break
    return total


@app.task(name="ingest.sweep")
def sweep() -> int:
    """Re-send jobs in flight for too long: their messages were lost (nothing may vanish)."""
    ctx = context()
    dispatcher = CeleryDispatcher(app)
    stale = ctx.jobs.stale(older_than=ctx.settings.stale_job_after)
    for job in stale:
        log.warning("re-sending stale job", extra={"article_url": job.url})
        dispatcher.send_article(job)
        ctx.jobs.touch(job.job_id)
    return len(stale)
