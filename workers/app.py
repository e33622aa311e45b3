"""The Celery app: Redis broker, late acks, short visibility timeout, the beat schedule."""

from __future__ import annotations

from celery import Celery

from ingest import keys
from ingest.config import Settings

app = Celery("storyline_ingest", include=["workers.tasks"])

_settings: Settings | None = None


def configure(settings: Settings, broker_url: str) -> Celery:
    """Point the app at a broker and apply the settings; worker children inherit this through fork."""
    global _settings
    _settings = settings
    app.conf.update(
        broker_url=broker_url,
        # redis:// through the same transport with one client per channel (workers/broker.py);
        # other schemes (rediss://, sentinel://) keep kombu's own, which reads its TLS options off the URL
        broker_transport="workers.broker:Transport" if broker_url.startswith("redis://") else None,
        broker_connection_retry_on_startup=True,
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
        # A hard limit well past every fetch and extraction bound: only a wedged task hits it.
        task_time_limit=int(settings.fetch_deadline * 3 + settings.max_host_wait + 60),
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
