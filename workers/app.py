"""The Celery app: Redis broker, late acks, short visibility timeout, the beat schedule."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from ingest import keys, limits, logs
from ingest.config import Settings

app = Celery("storyline_ingest", include=["workers.tasks", "workers.heartbeat"])

_settings: Settings | None = None


@signals.setup_logging.connect
def _one_log_format(**_kwargs: Any) -> None:
    # With a receiver on this signal Celery leaves logging alone (no handlers, formats or levels of
    # its own), so worker and beat lines look like every other line of the service.
    if _settings is not None:
        logs.setup(_settings.log_level, _settings.log_format)


def configure(settings: Settings, broker_url: str) -> Celery:
    """Point the app at a broker and apply the settings; worker children inherit this through fork."""
    global _settings
    limits.check(settings)
    _settings = settings
    app.conf.update(
        broker_url=broker_url,
        # kombu's Redis transport, except that a channel of a closed connection fails with a
        # connection error, which Celery recovers from, and one client per channel (workers/broker.py);
        # other schemes (rediss://, sentinel://) keep kombu's own, which reads its TLS options off the URL
        broker_transport="workers.broker:Transport" if broker_url.startswith("redis://") else None,
        broker_connection_retry_on_startup=True,
        # A worker keeps reconnecting for as long as Redis is away; it never gives up and exits.
        broker_connection_max_retries=None,
        # Publishing a retry or a new job outlives a Redis restart of several seconds.
        task_publish_retry_policy={"max_retries": 30, "interval_start": 0, "interval_step": 0.5, "interval_max": 2},
        broker_transport_options={
            # A message a worker took but never acked (it was killed) becomes visible again after
            # this long; tasks are short, so minutes rather than kombu's default hour.
            "visibility_timeout": settings.visibility_timeout,
            # Sweep for such messages every 5 s instead of kombu's default 10 s x 10.
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
            "global_keyprefix": keys.CELERY_PREFIX,
            "socket_timeout": 30,
            "socket_connect_timeout": 10,
            "socket_keepalive": True,
            "retry_on_timeout": True,
            # Ping an idle connection before use, so one left over from before a Redis restart
            # is replaced instead of failing the first command.
            "health_check_interval": 10,
        },
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        # Ack after the task ran, and requeue it if the worker process died mid-task:
        # together with idempotent tasks this is what makes a crash lose nothing.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # Each pool child's next message waits in the parent while it works, so a child never
        # idles for a round trip to Redis between tasks. Reserved messages are unacked like the
        # running ones: a killed worker's come back after the visibility timeout, nothing is lost.
        worker_prefetch_multiplier=4,
        # Per-task work Celery would do for features this service does not use.
        worker_disable_rate_limits=True,
        worker_enable_remote_control=False,
        task_track_started=False,
        task_default_queue=keys.QUEUE_ARTICLES,
        task_routes={
            "ingest.poll_feed": {"queue": keys.QUEUE_FEEDS},
            "ingest.poll_due_feeds": {"queue": keys.QUEUE_FEEDS},
            "ingest.sweep": {"queue": keys.QUEUE_FEEDS},
        },
        # The attempt deadline bounds the fetch; the soft limit adds processing, the hard limit
        # kills a wedged task, and limits.check keeps the visibility timeout above both.
        task_soft_time_limit=limits.soft_time_limit(settings),
        task_time_limit=limits.hard_time_limit(settings),
        # A task killed at the hard limit goes back to the queue: its next delivery counts as a
        # crashed attempt (too_many_attempts in the end) instead of the URL waiting for the sweeper.
        task_acks_on_timeout=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_schedule={
            "poll-due-feeds": {"task": "ingest.poll_due_feeds", "schedule": settings.beat_interval},
            "sweep-stale-jobs": {"task": "ingest.sweep", "schedule": settings.sweep_interval},
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    return app


def settings() -> Settings:
    """The settings the app was configured with."""
    if _settings is None:
        raise RuntimeError("workers.app.configure() was not called")
    return _settings
