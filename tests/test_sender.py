"""Tasks sent without Celery: the same message Celery writes, and client commands that never load Celery."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from ingest import keys
from ingest.config import Settings
from ingest.models import Job
from workers.app import configure
from workers.dispatch import CeleryDispatcher
from workers.sender import RedisDispatcher

ROOT = Path(__file__).resolve().parent.parent
# Differ on every message, or name the sending process.
VARYING = {"id", "root_id", "origin", "correlation_id", "delivery_tag", "reply_to"}


def pop_all(r: redis.Redis, queue: str) -> list[dict[str, Any]]:
    out = [json.loads(m) for m in r.lrange(keys.CELERY_PREFIX + queue, 0, -1)]
    r.delete(keys.CELERY_PREFIX + queue)
    return out


def shape(message: dict[str, Any]) -> dict[str, Any]:
    """The message with what varies removed and the body decoded."""
    headers = {k: v for k, v in message["headers"].items() if k not in VARYING}
    props = {k: v for k, v in message["properties"].items() if k not in VARYING}
    body = json.loads(base64.b64decode(message["body"]))
    rest = {k: v for k, v in message.items() if k not in ("headers", "properties", "body")}
    return {"headers": headers, "properties": props, "body": body, **rest}


@pytest.mark.parametrize("kind", ["article", "feed"])
def test_the_message_is_the_one_celery_writes(r: redis.Redis, settings: Settings, kind: str) -> None:
    celery = CeleryDispatcher(configure(settings, settings.redis_url or ""))
    raw = RedisDispatcher(r)
    job = Job("j1", "https://a.example/x", "feed", "https://a.example/feed", "run1")
    for d in (celery, raw):
        if kind == "article":
            d.send_article(job)
        else:
            d.send_feed_poll("https://a.example/feed", "run1")
    queue = keys.QUEUE_ARTICLES if kind == "article" else keys.QUEUE_FEEDS
    sent_by_celery, sent_raw = pop_all(r, queue)[::-1]  # LPUSH: the newest first
    assert shape(sent_raw) == shape(sent_by_celery)
    assert sent_raw["headers"]["id"] == sent_raw["headers"]["root_id"] == sent_raw["properties"]["correlation_id"]


HEAVY = ("celery", "kombu", "trafilatura", "httpx", "feedparser", "lxml", "numpy", "fastapi")
PROBE = """
import runpy, sys
sys.argv = ["ingest", *sys.argv[1:]]
try:
    runpy.run_module("ingest", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print("loaded:", ",".join(sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["stats", "--json"], ["items"], ["poll"], ["enqueue", "https://a.example/1"], ["feeds", "list"]],
)
def test_client_commands_do_not_load_celery_or_the_pipeline(redis_url: str, r: redis.Redis, args: list[str]) -> None:
    r.zadd(keys.FEEDS_DUE, {"https://a.example/feed": 0})  # so that poll sends a task
    cp = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}", *args],
        env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.splitlines()[-1] == "loaded: ", cp.stderr
    if args[0] in ("poll", "enqueue"):
        assert r.llen(keys.CELERY_PREFIX + keys.QUEUE_FEEDS) + r.llen(keys.CELERY_PREFIX + keys.QUEUE_ARTICLES) == 1
