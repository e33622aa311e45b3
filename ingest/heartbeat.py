"""Worker heartbeats in Redis: each worker says it is alive every few seconds, clients list the living.

A worker writes one short-lived key (JSON: hostname, pid, concurrency, started, last_seen) and its
name in a sorted set scored by the time of the beat. A worker that stops beating (killed, frozen,
cut off from Redis) drops out of `workers_alive` within ``keys.HEARTBEAT_TTL`` seconds.
The Celery side (the timer that calls `beat`) lives in workers/heartbeat.py.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from ingest import keys
from ingest.redisutil import texts

INTERVAL = keys.HEARTBEAT_TTL / 3


@dataclass(frozen=True)
class WorkerInfo:
    """One living worker, as its last heartbeat described it."""

    name: str
    hostname: str
    pid: int
    concurrency: int
    started: float
    last_seen: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def worker_name(hostname: str | None = None, pid: int | None = None) -> str:
    """The name a worker beats under: hostname and pid."""
    return f"{hostname or socket.gethostname()}:{pid or os.getpid()}"


def beat(
    client: redis.Redis, hostname: str, pid: int, concurrency: int, started: float, now: float | None = None
) -> str:
    """Write one heartbeat of a worker (and forget workers silent for longer than the TTL); returns its name."""
    now = time.time() if now is None else now
    name = worker_name(hostname, pid)
    info = WorkerInfo(name, hostname, pid, concurrency, started, now)
    pipe = client.pipeline(transaction=False)
    pipe.set(keys.worker_heartbeat(name), json.dumps(info.as_dict()), ex=keys.HEARTBEAT_TTL)
    pipe.zadd(keys.WORKERS, {name: now})
    pipe.zremrangebyscore(keys.WORKERS, "-inf", now - keys.HEARTBEAT_TTL)
    pipe.execute()
    return name


def stop(client: redis.Redis, name: str) -> None:
    """Remove a worker's heartbeat at a clean shutdown, so it is not listed for another TTL."""
    pipe = client.pipeline(transaction=False)
    pipe.delete(keys.worker_heartbeat(name))
    pipe.zrem(keys.WORKERS, name)
    pipe.execute()


def workers_alive(client: redis.Redis, now: float | None = None) -> list[WorkerInfo]:
    """Workers that beat within the TTL, by name."""
    now = time.time() if now is None else now
    names = texts(client.zrangebyscore(keys.WORKERS, now - keys.HEARTBEAT_TTL, "+inf"))
    if not names:
        return []
    out = []
    for raw in client.mget([keys.worker_heartbeat(n) for n in names]):
        if raw is None:  # its key expired between the two reads
            continue
        try:
            out.append(WorkerInfo(**json.loads(raw)))
        except (ValueError, TypeError):
            continue
    return sorted(out, key=lambda w: w.name)
