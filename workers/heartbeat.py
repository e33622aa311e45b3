"""The worker's heartbeat: a timer thread in the worker's main process, started when it is ready."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

import redis
from celery.signals import worker_ready, worker_shutdown

from ingest import heartbeat
from ingest.embedded import resolve_url
from workers.app import settings

log = logging.getLogger(__name__)

_stop = threading.Event()
_name: str | None = None
_thread: threading.Thread | None = None


def _run(concurrency: int) -> None:
    global _name
    s = settings()
    client = redis.Redis.from_url(resolve_url(s.redis_url, s.data_dir), socket_timeout=5, socket_connect_timeout=5)
    started, hostname, pid = time.time(), socket.gethostname(), os.getpid()
    while not _stop.is_set():
        try:
            _name = heartbeat.beat(client, hostname, pid, concurrency, started)
        except redis.RedisError as exc:  # Redis away for a moment: the next beat tries again
            log.warning("heartbeat failed", extra={"reason": type(exc).__name__})
        _stop.wait(heartbeat.INTERVAL)
    if _name is not None:
        with contextlib.suppress(redis.RedisError):
            heartbeat.stop(client, _name)
    client.close()


@worker_ready.connect
def _start(sender: Any = None, **_: Any) -> None:
    controller = getattr(sender, "controller", None)
    concurrency = int(getattr(controller, "concurrency", 0) or 0)
    global _thread
    _thread = threading.Thread(target=_run, args=(concurrency,), name="ingest-heartbeat", daemon=True)
    _thread.start()


@worker_shutdown.connect
def _shutdown(**_: Any) -> None:
    # A clean stop removes the heartbeat at once, so clients do not count this worker for a TTL more.
    _stop.set()
    if _thread is not None:
        _thread.join(timeout=3)
