"""Sending tasks without importing Celery: Celery protocol 2 messages pushed on kombu's Redis lists.

Client commands (`ingest poll`, `ingest enqueue`, the API) only send; loading Celery and kombu to
do so costs more than the rest of their start-up. The message is the one `app.send_task` writes
(tests/test_sender.py compares the two field by field): JSON body `[args, kwargs, embed]`,
base64-encoded, headers naming the task, LPUSHed on the queue's list under the broker prefix
(the worker pops from the other end, so the queue stays first in, first out).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from dataclasses import asdict
from typing import Any

import redis

from ingest import keys
from ingest.models import Job


def task_message(task: str, args: list[Any], queue: str) -> dict[str, Any]:
    """A Celery protocol 2 message of one task call, as kombu's Redis transport stores it."""
    task_id = str(uuid.uuid4())
    body = json.dumps([args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    return {
        "body": base64.b64encode(body.encode("utf-8")).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr(args),
            "kwargsrepr": "{}",
            "origin": f"{os.getpid()}@{socket.gethostname()}",
            "ignore_result": None,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }


class RedisDispatcher:
    """ingest.jobs.Dispatcher that writes task messages straight to the broker's Redis lists."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def _send(self, task: str, args: list[Any], queue: str) -> None:
        self.redis.lpush(keys.CELERY_PREFIX + queue, json.dumps(task_message(task, args, queue)))

    def send_article(self, job: Job) -> None:
        """Queue one article job."""
        self._send("ingest.process_article", [asdict(job)], keys.QUEUE_ARTICLES)

    def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
        """Queue one poll of one feed."""
        self._send("ingest.poll_feed", [feed_url, run_id], keys.QUEUE_FEEDS)
