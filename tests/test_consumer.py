"""Consumers that run for months: blocking past the socket timeout, Redis restarts, clean exits, typed items."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from ingest import keys
from ingest.config import Settings
from ingest.consumer import Consumer, UnknownStream, parse
from ingest.embedded import start_redis
from ingest.models import Item, Job
from ingest.publish import Publisher
from tests.test_streams import make_item

ROOT = Path(__file__).resolve().parent.parent


def env_for(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_") and k != "REDIS_URL"}
    env.update({"REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1", **extra})
    return env


def publish(r: redis.Redis, settings: Settings, *numbers: int) -> None:
    pub = Publisher(r, settings)
    for n in numbers:
        pub.item(Job(f"j{n}", f"https://a.example/{n}"), make_item(n))


def read_lines(proc: subprocess.Popen[str], want: int, timeout: float) -> list[str]:
    """Lines the consumer printed, once `want` of them are there (a reader thread keeps this bounded)."""
    assert proc.stdout is not None
    lines: list[str] = []
    done = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if len(lines) >= want:
                done.set()
                return

    threading.Thread(target=pump, daemon=True).start()
    done.wait(timeout)
    return lines


def test_a_block_longer_than_the_socket_timeout_still_reads(redis_url: str, r: redis.Redis, settings: Settings) -> None:
    # redis-py's socket timeout used to bound the blocking read too: an idle consumer died of it.
    env = env_for(redis_url, INGEST_REDIS_SOCKET_TIMEOUT="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "consume", "--group", "g", "--block", "6000", "--count", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not r.exists(keys.ARTICLES) and time.monotonic() < deadline:  # the group is made at start
            time.sleep(0.05)
        time.sleep(2.5)  # idle for longer than the 1 s socket timeout
        publish(r, settings, 1)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert '"id": "item1"' in out
    assert "Traceback" not in err


def test_the_python_consumer_outlives_the_socket_timeout(redis_url: str, r: redis.Redis, settings: Settings) -> None:
    short = settings.model_copy(update={"redis_socket_timeout": 0.5})
    consumer = Consumer("g", stream="articles", consumer="c", redis_url=redis_url, idle_timeout=4, settings=short)
    threading.Timer(1.5, publish, (r, settings, 7)).start()
    got = [item.id for item in consumer]
    consumer.close()
    assert got == ["item7"]


def test_consume_carries_on_after_a_redis_restart(tmp_path: Path, settings: Settings) -> None:
    server = start_redis(tmp_path / "redis", persistent=True)
    url, port = server.url, server.port
    client = redis.Redis.from_url(url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "consume", "--group", "g", "--block", "0", "--consumer", "c1"],
        env=env_for(url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        publish(client, settings, 1)
        assert len(read_lines(proc, 1, 30)) == 1
        server.stop()  # SIGTERM: Redis writes its append-only file and exits
        time.sleep(1.5)  # the consumer is without Redis for a while
        server = start_redis(tmp_path / "redis", port=port, persistent=True)
        client = redis.Redis.from_url(url)
        publish(client, settings, 2)
        lines = read_lines(proc, 1, 60)
        assert len(lines) == 1 and '"id": "item2"' in lines[0]
        deadline = time.monotonic() + 10
        while client.xpending(keys.ARTICLES, "g")["pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.xpending(keys.ARTICLES, "g")["pending"] == 0  # what it printed, it acked
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert "reconnecting" in err
    finally:
        proc.kill()
        server.stop()


def test_ctrl_c_exits_0_without_a_traceback(redis_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "consume", "--group", "g", "--block", "0"],
        env=env_for(redis_url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 20
    while not r.exists(keys.ARTICLES) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and err == ""


@pytest.mark.parametrize("command", ["items", "consume"])
def test_unknown_streams_exit_2_naming_the_known_ones_and_create_nothing(
    command: str, redis_url: str, r: redis.Redis
) -> None:
    for stream in ("storyline:energy-cesefire", "artcles"):
        args = [command, "--stream", stream] + (["--group", "g"] if command == "consume" else [])
        cp = subprocess.run(
            [sys.executable, "-m", "ingest", *args], env=env_for(redis_url), cwd=ROOT, capture_output=True, text=True
        )
        assert cp.returncode == 2, cp.stderr
        assert "Traceback" not in cp.stderr and len(cp.stderr.strip().splitlines()) == 1
        assert "storyline:energy-ceasefire" in cp.stderr
    assert r.keys("*") == []


def test_the_python_api_refuses_unknown_streams(redis_url: str, r: redis.Redis, settings: Settings) -> None:
    with pytest.raises(UnknownStream, match="storyline:energy-ceasefire"):
        Consumer("g", stream="storyline:typo", redis_url=redis_url, settings=settings)
    assert r.keys("*") == []


def test_items_are_typed_and_acked_after_the_loop_body(redis_url: str, r: redis.Redis, settings: Settings) -> None:
    publish(r, settings, 1, 2, 3)
    seen: list[str] = []
    with pytest.raises(RuntimeError):
        for item in Consumer(
            "g", stream="storyline:energy-ceasefire", consumer="me", settings=settings, idle_timeout=0.2
        ):
            assert isinstance(item, Item) and item.storylines[0].id == "energy-ceasefire"
            seen.append(item.id)
            if item.id == "item2":
                raise RuntimeError("the handler failed")
    stream = keys.storyline_stream("energy-ceasefire")
    assert seen == ["item1", "item2"]
    # item1 acked; item2 (its handler failed) and item3 (read in the same batch) stay pending for "me"
    assert r.xpending(stream, "g")["pending"] == 2
    again = [
        i.id
        for i in Consumer("g", stream="storyline:energy-ceasefire", consumer="me", settings=settings, idle_timeout=0.2)
    ]
    assert again == ["item2", "item3"]
    assert r.xpending(stream, "g")["pending"] == 0


def test_a_dead_consumers_items_are_reclaimed(redis_url: str, r: redis.Redis, settings: Settings) -> None:
    publish(r, settings, 1, 2)
    dead = iter(Consumer("g", consumer="dead", settings=settings, idle_timeout=0.2))
    assert next(dead).id == "item1"  # taken, never acked: this consumer "dies" here
    time.sleep(0.1)
    alive = Consumer("g", consumer="alive", settings=settings, idle_timeout=0.2, min_idle_ms=50)
    assert sorted(i.id for i in alive) == ["item1", "item2"]
    assert r.xpending(keys.ARTICLES, "g")["pending"] == 0


def test_fields_a_newer_service_adds_are_ignored() -> None:
    data = make_item(1).model_dump(mode="json", by_alias=True)
    data["published_at_source"] = "feed"
    data["storylines"][0]["explain"] = {"rules": []}
    item = parse(Item, data)
    assert isinstance(item, Item) and item.id == "item1"
