"""Redis killed and restarted mid-run, several times: the worker keeps going, nothing is lost or published twice."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest import keys
from ingest.embedded import find_redis_server, free_port, ping
from tests.hostile import html_page
from tests.httpsite import Page, Site
from tests.test_e2e import Worker, env_for, ingest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ARTICLES = 24
RESTARTS = 3


class RestartableRedis:
    """A redis-server of this test's own: append-only file synced on every write, same port every start."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        # fsync on every write: a SIGKILL then loses nothing that Redis acknowledged.
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not ping("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[RestartableRedis]:
    (tmp_path / "redis").mkdir()
    server = RestartableRedis(tmp_path / "redis")
    yield server
    server.stop()


def outcomes(client: redis.Redis) -> Counter[str]:
    """How many times each URL was published, over every outcome stream."""
    seen: Counter[str] = Counter()
    for key in (keys.ARTICLES, keys.DUPLICATES, keys.DEADLETTER):
        for _id, fields in client.xrange(key):
            seen[json.loads(fields[b"data"])["url"]] += 1
    return seen


def test_worker_rides_through_redis_restarts(restartable: RestartableRedis, site: Site, tmp_path: Path) -> None:
    for n in range(ARTICLES):
        words = " ".join(f"restart{n}word{k}" for k in range(12))
        site.pages[f"/story/{n}.html"] = Page(
            html_page(f"Story {n}", words), headers={"Content-Type": "text/html"}, delay=1.0
        )
    urls = [site.url(f"/story/{n}.html") for n in range(ARTICLES)]
    # No beat runs here, so no sweeper: whatever ends, ends without it.
    env = env_for(restartable.url, tmp_path)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        cp = ingest(env, "enqueue", "--json", *urls)
        assert cp.returncode == 0, cp.stderr
        client = redis.Redis.from_url(restartable.url)
        started = time.monotonic()
        while not outcomes(client) and time.monotonic() - started < 60:  # the worker is at work
            time.sleep(0.2)
        done_at_kill = []
        for _ in range(RESTARTS):
            time.sleep(2.0)  # mid-run: articles in flight, more queued
            done_at_kill.append(len(outcomes(client)))
            client.close()
            restartable.kill()
            time.sleep(1.0)
            restartable.start()
            assert worker.proc.poll() is None, worker.log.read_text()[-3000:]

        assert done_at_kill[-1] < ARTICLES, done_at_kill  # every restart hit a run still under way
        client = redis.Redis.from_url(restartable.url)
        # work was left after the last restart: what follows was done on reconnected broker connections
        assert len(outcomes(client)) < ARTICLES
        deadline = time.monotonic() + 90  # far below the sweeper's stale_job_after (30 min)
        while len(outcomes(client)) < ARTICLES and time.monotonic() < deadline:
            time.sleep(0.5)
        published = outcomes(client)
        assert sorted(published) == sorted(urls), worker.log.read_text()[-3000:]
        assert set(published.values()) == {1}  # nothing published twice
        assert not client.exists(keys.DEADLETTER)  # a restart costs a delay, never an outcome
        assert worker.proc.poll() is None, "the worker exited"
        client.close()
    finally:
        worker.stop()
    assert "Unrecoverable error" not in worker.log.read_text()


def test_a_feed_poll_rides_through_a_redis_restart(restartable: RestartableRedis, site: Site, tmp_path: Path) -> None:
    entries = 6
    for n in range(entries):
        words = " ".join(f"pollrestart{n}word{k}" for k in range(12))
        site.pages[f"/p/{n}.html"] = Page(html_page(f"Polled {n}", words), headers={"Content-Type": "text/html"})
    items = "".join(
        f"<item><title>Polled {n}</title><link>{site.url(f'/p/{n}.html')}</link></item>" for n in range(entries)
    )
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Slow wire</title>{items}</channel></rss>'
    env = env_for(restartable.url, tmp_path)
    site.pages["/slow.xml"] = Page(feed.encode(), headers={"Content-Type": "application/rss+xml"})
    assert ingest(env, "feeds", "add", "--no-check", site.url("/slow.xml")).returncode == 0
    # The feed answers after 3 s: Redis is down when the poll comes back to enqueue the entries.
    site.pages["/slow.xml"] = Page(feed.encode(), headers={"Content-Type": "application/rss+xml"}, delay=3.0)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        waiter = subprocess.Popen(
            [*ingest_argv(), "poll", "--wait", "--json", "--timeout", "150"],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while site.hits("/slow.xml") == 0:  # the poll is fetching the feed
            assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
            time.sleep(0.05)
        restartable.kill()
        time.sleep(5.0)  # the feed answered meanwhile; the poll met a Redis that is gone
        restartable.start()
        out, err = waiter.communicate(timeout=170)
        assert waiter.returncode == 0, out + err + worker.log.read_text()[-3000:]
        client = redis.Redis.from_url(restartable.url)
        published = outcomes(client)
        client.close()
        assert sorted(published) == sorted(site.url(f"/p/{n}.html") for n in range(entries))
        assert set(published.values()) == {1}
        assert worker.proc.poll() is None, "the worker exited"
    finally:
        worker.stop()


def ingest_argv() -> list[str]:
    """The `ingest` command as this interpreter runs it."""
    import sys

    return [sys.executable, "-m", "ingest"]
