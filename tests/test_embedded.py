"""One data folder is one database: the same redis-server on every start, a stable port, found from subfolders."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest import embedded
from ingest.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH whose first redis-server is a different version that cannot even start."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    script = fake / "redis-server"
    script.write_text("#!/bin/sh\necho 'Redis server v=5.0.1 sha=0'\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ.get('PATH', '')}")
    return fake


@pytest.fixture
def stopper() -> Iterator[list[embedded.RedisProcess]]:
    started: list[embedded.RedisProcess] = []
    yield started
    for s in started:
        s.stop()


def test_the_same_binary_runs_whatever_path_holds(
    tmp_path: Path, fake_path: Path, stopper: list[embedded.RedisProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "var"
    first = embedded.start_embedded(data)
    stopper.append(first)
    record = json.loads((data / "redis" / "server.json").read_text())
    assert record["binary"] != str(fake_path / "redis-server")
    redis.Redis.from_url(first.url).set("k", "kept")
    first.stop()
    monkeypatch.setenv("PATH", str(VENV_BIN))  # now PATH holds the venv's server (an activated venv)
    second = embedded.start_embedded(data)
    stopper.append(second)
    assert json.loads((data / "redis" / "server.json").read_text())["binary"] == record["binary"]
    assert second.port == first.port  # a stable port
    assert redis.Redis.from_url(second.url).get("k") == b"kept"


def test_data_no_server_here_can_read_is_refused_and_nothing_starts(tmp_path: Path) -> None:
    workdir = tmp_path / "var" / "redis"
    workdir.mkdir(parents=True)
    record = {"binary": "/opt/gone/redis-server", "version": [99, 0, 0], "port": 6390}
    (workdir / "server.json").write_text(json.dumps(record))
    (workdir / "appendonlydir").mkdir()
    with pytest.raises(ConfigError, match=r"written by redis-server 99\.0\.0"):
        embedded.start_embedded(tmp_path / "var")
    assert not (workdir / "redis.log").exists()  # no server was started on it
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_") and k != "REDIS_URL"}
    cp = subprocess.run(
        [sys.executable, "-m", "ingest", "up"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert cp.returncode == 2 and "Traceback" not in cp.stderr
    assert len(cp.stderr.strip().splitlines()) == 1 and "99.0.0" in cp.stderr


def test_data_of_a_newer_format_needs_a_newer_server(tmp_path: Path) -> None:
    workdir = tmp_path / "redis"
    (workdir / "appendonlydir").mkdir(parents=True)  # the multi-part AOF of Redis 7
    assert embedded.data_release(workdir) == (7, 0)
    (workdir / "dump.rdb").write_bytes(b"REDIS0011" + b"\0" * 10)
    assert embedded.data_release(workdir) == (7, 2)
    wheel = embedded.candidates()[0]
    version = embedded.server_version(wheel)
    assert version is not None
    if version[:2] < (7, 2):
        with pytest.raises(ConfigError, match=r"Redis 7\.2"):
            embedded.choose_server(workdir, wheel)


def test_a_taken_port_moves_the_server_and_is_remembered(tmp_path: Path, stopper: list[embedded.RedisProcess]) -> None:
    data = tmp_path / "var"
    first = embedded.start_embedded(data, port=embedded.free_port())
    port = first.port
    first.stop()
    with socket.socket() as squatter:  # another checkout's Redis, say
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(ConfigError, match=f"INGEST_REDIS_PORT={port} is in use"):
            embedded.start_embedded(data, port=port)
        moved = embedded.start_embedded(data)
        stopper.append(moved)
        assert moved.port != port
    moved.stop()
    again = embedded.start_embedded(data)
    stopper.append(again)
    assert again.port == moved.port


def test_commands_find_the_service_from_a_subfolder(tmp_path: Path, stopper: list[embedded.RedisProcess]) -> None:
    data = tmp_path / "var"
    server = embedded.start_embedded(data, port=embedded.free_port())
    stopper.append(server)
    embedded.write_state(data, server)
    deep = tmp_path / "notebooks" / "2025"
    deep.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_") and k != "REDIS_URL"}
    cp = subprocess.run(
        [sys.executable, "-m", "ingest", "redis-url"], cwd=deep, env=env, capture_output=True, text=True, timeout=60
    )
    assert cp.returncode == 0 and cp.stdout.strip() == server.url
    cli = subprocess.run(
        ["sh", "-c", f'"{VENV_BIN}/redis-cli" -u "$({sys.executable} -m ingest redis-url)" PING'],
        cwd=deep,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.stdout.strip() == "PONG", cli.stderr
    other = tmp_path / "elsewhere"
    other.mkdir()
    env["INGEST_DATA_DIR"] = str(other)  # an explicit data folder wins over the one found upward
    cp = subprocess.run(
        [sys.executable, "-m", "ingest", "redis-url"], cwd=deep, env=env, capture_output=True, text=True, timeout=60
    )
    assert cp.returncode == 1 and str(other) in cp.stderr


def _newer_system_server() -> str | None:
    for folder in ("/usr/bin", "/usr/local/bin"):
        path = Path(folder) / "redis-server"
        version = embedded.server_version(str(path)) if path.is_file() else None
        wheel = embedded.server_version(embedded.candidates()[0])
        if version and wheel and version[:2] > wheel[:2]:
            return str(path)
    return None


@pytest.mark.skipif(_newer_system_server() is None, reason="needs a system redis-server newer than the wheel's")
def test_data_written_by_a_newer_system_server_before_records_existed_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopper: list[embedded.RedisProcess]
) -> None:
    # The old behaviour: `make run` without the venv ran the system's Redis 7 and wrote its data.
    system = _newer_system_server()
    assert system is not None
    data = tmp_path / "var"
    old = embedded.start_redis(data / "redis", persistent=True, binary=system)
    redis.Redis.from_url(old.url).set("k", "written by 7")
    old.stop()
    # Now with the venv active: its 6.2 comes first on PATH, and cannot read this data.
    monkeypatch.setenv("PATH", f"{VENV_BIN}:{Path(system).parent}")
    server = embedded.start_embedded(data)
    stopper.append(server)
    assert redis.Redis.from_url(server.url).get("k") == b"written by 7"
    assert json.loads((data / "redis" / "server.json").read_text())["binary"] == system
