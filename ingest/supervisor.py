"""`ingest up`: Redis (embedded unless REDIS_URL is set), worker, beat and API under one foreground process."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from ingest import embedded
from ingest.config import Settings
from ingest.errors import ConfigError
from ingest.storyline import load_storylines


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ingest", *args], env=env)


def _stop(procs: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """SIGTERM each child (Celery warm shutdown finishes running tasks), then kill stragglers."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def up(settings: Settings, concurrency: int | None = None) -> int:
    """Run everything until Ctrl-C or SIGTERM, or until one part dies; returns the exit code."""
    load_storylines(settings.storylines_path)  # a bad definition stops us before anything starts
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / "up.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(f"`ingest up` is already running for {data_dir.resolve()}") from None

    server: embedded.RedisProcess | None = None
    env = dict(os.environ)
    if settings.redis_url:
        url = settings.redis_url
    else:
        server = embedded.start_embedded(data_dir, settings.redis_port, settings.redis_server)
        embedded.write_state(data_dir, server)
        url = server.url
    env["REDIS_URL"] = url
    env["INGEST_DATA_DIR"] = str(Path(data_dir).resolve())  # children find the same folder from anywhere

    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker_args = ["worker"] + (["--concurrency", str(concurrency)] if concurrency else [])
    procs = [_spawn(worker_args, env), _spawn(["beat"], env), _spawn(["api"], env)]
    names = ["worker", "beat", "api"]
    print(
        f"storyline-ingest up: redis {url} "
        f"({f'embedded Redis {server.version}, data in {data_dir}' if server else 'external'}), "
        f"API http://{settings.api_host}:{settings.api_port}; Ctrl-C stops everything",
        flush=True,
    )
    code = 0
    try:
        while not stopping:
            for name, p in zip(names, procs, strict=True):
                if p.poll() is not None:
                    print(f"ingest up: {name} exited with code {p.returncode}; stopping", file=sys.stderr)
                    stopping, code = True, 1
            time.sleep(0.5)
    finally:
        _stop(procs)
        if server is not None:
            server.stop()
            embedded.clear_state(data_dir)
        with contextlib.suppress(OSError):
            fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    print("storyline-ingest stopped", flush=True)
    return code
