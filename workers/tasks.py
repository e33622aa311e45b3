"""Thin Celery tasks: decode arguments, call ingest, map errors to retry or deadletter."""

from __future__ import annotations

import cProfile
import logging
import os
import time
from typing import Any

from celery import Task
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown

from ingest import feeds, pipeline
from ingest.errors import TransientError
from ingest.models import Job
from workers.app import app, settings
from workers.dispatch import CeleryDispatcher

log = logging.getLogger(__name__)

_context: pipeline.Context | None = None
_pid: int | None = None
_profile: cProfile.Profile | None = None


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


# Waiting for a busy host is scheduling, not failing: it has a budget of its own.
MAX_BUSY_RETRIES = 100


@app.task(name="ingest.process_article", bind=True, max_retries=None)
def process_article(self: Task[Any, Any], job: dict[str, Any], busy: int = 0) -> str:
    """Process one article job."""
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


@app.task(name="ingest.poll_feed")
def poll_feed(feed_url: str, run_id: str | None = None) -> str:
    """Poll one feed and enqueue its new entries."""
    ctx = context()
    store = feeds.FeedStore(ctx.redis, ctx.settings)
    outcome = "error"
    try:
        outcome = feeds.poll(store, ctx.fetcher, ctx.jobs, CeleryDispatcher(app), ctx.publisher, feed_url, run_id)
    finally:
        ctx.jobs.feed_polled(run_id, feed_url, outcome)
    return outcome


@app.task(name="ingest.poll_due_feeds")
def poll_due_feeds() -> int:
    """Dispatch a poll for every feed that is due."""
    ctx = context()
    dispatcher = CeleryDispatcher(app)
    due = feeds.FeedStore(ctx.redis, ctx.settings).claim_due()
    for url in due:
        dispatcher.send_feed_poll(url, None)
    return len(due)


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
