"""Feed polling at scale: polls per second and CPU per poll by the workers, Redis memory per feed,
cost per entry of a big feed, and the scheduler's cost per tick as the feed list grows.

Everything runs on this machine: a private redis-server, a local HTTP server (its own process) that
serves --feeds RSS feeds of 3 entries each (even-numbered feeds answer 304 to their ETag, odd ones
ignore validators and send the whole feed again), and a Celery worker of the project's own app
(`workers.app`, the poll task as in production) consuming the feeds queue, so the article jobs the
first round creates wait in their queue instead of being fetched.

* big feed: one 10,000-entry feed polled in-process with the Celery dispatcher (CPU of the polling
  process per entry: parse, lookups, job records, task sends), separately the parse alone;
* round 1: every feed polled once (each enqueues its 3 entries); round 2: every feed polled again
  (half 304, half unchanged bodies whose entries are all known): wall time, polls per second, CPU of
  the worker processes and of redis-server per poll;
* memory: INFO used_memory per feed after registering, and after both rounds (feed record,
  schedule, seen entries; job records and queued messages excluded by measuring the feed keys);
* scheduler: claim the due feeds and send their polls (what `poll_due_feeds` does each beat tick),
  with 10,000 and 100,000 feeds registered and 0 / 100 / 1,000 / 10,000 of them due.

    python benchmarks/bench_feeds.py [--feeds 10000] [--concurrency 2] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import keys  # noqa: E402
from ingest.config import Settings  # noqa: E402
from ingest.embedded import free_port, start_redis  # noqa: E402
from ingest.feeds import FeedStore, fetch_and_parse, poll  # noqa: E402
from ingest.fetch import Fetcher  # noqa: E402
from ingest.jobs import Jobs  # noqa: E402
from ingest.publish import Publisher  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


# ---- the feed server (its own process: its CPU is not the workers') ----


def _rss(i: int, n: int, base: str) -> bytes:
    items = "".join(
        f"<item><title>Story {i}-{k}</title><link>{base}/a/{i}/{k}</link><guid>{base}/a/{i}/{k}</guid>"
        f"<pubDate>Wed, 19 Mar 2025 {k % 24:02d}:00:00 GMT</pubDate></item>"
        for k in range(n)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {i}</title>{items}</channel></rss>'.encode()


def serve(port: int) -> None:
    """Serve /f/<i>.xml (3 entries, ETag), /big.xml (10,000 entries) and a missing robots.txt."""
    base = f"http://127.0.0.1:{port}"
    big = _rss(0, 10_000, base)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path
            if path.startswith("/f/"):
                i = int(path[3:].split(".")[0])
                etag = f'"v{i}"'
                if i % 2 == 0 and self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", etag)
                else:
                    self._send(200, _rss(i, 3, base), etag)
            elif path == "/big.xml":
                self._send(200, big, '"big"')
            else:
                self._send(404, b"no", None)

        def _send(self, status: int, body: bytes, etag: str | None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 512
    server.serve_forever()


# ---- measuring ----


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its live children (a prefork worker's pool)."""
    total = 0.0
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry))
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


@contextmanager
def feed_server() -> Iterator[str]:
    import multiprocessing as mp

    port = free_port()
    proc = mp.get_context("fork").Process(target=serve, args=(port,), daemon=True)
    proc.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            import httpx

            httpx.get(base + "/robots.txt", timeout=0.5)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield base
    finally:
        proc.terminate()
        proc.join()


def env_for(redis_url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(
        {
            "REDIS_URL": redis_url,
            "INGEST_ALLOW_PRIVATE_NETWORKS": "1",
            "INGEST_HOST_DELAY": "0",
            "INGEST_DATA_DIR": str(tmp / "var"),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


WORKER = """
import sys
from ingest.config import load_settings
from workers.app import configure
settings = load_settings()
app = configure(settings, settings.redis_url)
app.worker_main(["worker", "--loglevel=WARNING", "--queues=feeds", "--concurrency=%s",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"])
"""


# ---- parts ----


def bench_big_feed(settings: Settings, r: redis.Redis, base: str) -> dict[str, Any]:
    """CPU per entry of one 10,000-entry feed polled in this process with the Celery dispatcher."""
    from workers.app import configure
    from workers.dispatch import CeleryDispatcher

    dispatcher = CeleryDispatcher(configure(settings, settings.redis_url or ""))
    url = base + "/big.xml"
    with Fetcher(settings, r) as fetcher:
        fetch_and_parse(fetcher, url)  # warm: robots, connections, imports
        c0 = time.process_time()
        parsed = fetch_and_parse(fetcher, url).feed
        parse_cpu = time.process_time() - c0
        store = FeedStore(r, settings)
        store.add(url)
        c0, t0 = time.process_time(), time.perf_counter()
        outcomes = [poll(store, fetcher, Jobs(r), dispatcher, Publisher(r, settings), url)]
        while outcomes[-1] == "partial":  # the continuation the worker would run next
            outcomes.append(poll(store, fetcher, Jobs(r), dispatcher, Publisher(r, settings), url))
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        outcome = "+".join(outcomes)
    n = len(parsed.entries)
    queued = r.llen(keys.CELERY_PREFIX + keys.QUEUE_ARTICLES)
    r.delete(keys.CELERY_PREFIX + keys.QUEUE_ARTICLES, keys.CELERY_PREFIX + keys.QUEUE_FEEDS)
    return {
        "entries": n,
        "outcome": outcome,
        "jobs_queued": queued,
        "poll_cpu_ms_per_entry": round(cpu * 1000 / n, 3),
        "parse_cpu_ms_per_entry": round(parse_cpu * 1000 / n, 3),
        "enqueue_cpu_ms_per_entry": round((cpu - parse_cpu) * 1000 / n, 3),
        "wall_s": round(wall, 2),
    }


def bench_rounds(settings: Settings, r: redis.Redis, base: str, n: int, concurrency: int, tmp: Path) -> dict[str, Any]:
    """10,000 feeds polled twice by a real worker: polls/s, CPU per poll, memory per feed."""
    from workers.app import configure
    from workers.dispatch import CeleryDispatcher

    store, jobs = FeedStore(r, settings), Jobs(r)
    dispatcher = CeleryDispatcher(configure(settings, settings.redis_url or ""))
    mem0 = used_memory(r)
    urls = [f"{base}/f/{i}.xml" for i in range(n)]
    for url in urls:
        store.add(url)
    mem_registered = used_memory(r)
    redis_pid = int(r.info("server")["process_id"])
    log = (tmp / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER % concurrency],
        env=env_for(settings.redis_url or "", tmp),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    rounds = []
    try:
        time.sleep(3)  # the pool is up before the clock starts
        for label in ("first poll (enqueues 3 entries per feed)", "second poll (half 304, half unchanged)"):
            run_id = jobs.new_run("poll")
            jobs.add_run_feeds(run_id, urls)
            w0, r0, t0 = cpu_seconds(worker.pid), cpu_seconds(redis_pid), time.perf_counter()
            dispatcher.send_feed_polls(urls, run_id)
            while r.scard(keys.run_feeds(run_id)):
                time.sleep(0.2)
            wall = time.perf_counter() - t0
            wcpu, rcpu = cpu_seconds(worker.pid) - w0, cpu_seconds(redis_pid) - r0
            outcomes = {k: int(v) for k, v in r.hgetall(keys.run(run_id)).items() if k.startswith(b"feeds_")}
            rounds.append(
                {
                    "round": label,
                    "outcomes": {k.decode()[6:]: v for k, v in outcomes.items()},
                    "wall_s": round(wall, 1),
                    "polls_per_s": round(n / wall, 1),
                    "worker_cpu_ms_per_poll": round(wcpu * 1000 / n, 2),
                    "redis_cpu_ms_per_poll": round(rcpu * 1000 / n, 2),
                }
            )
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()
    per_feed_keys = 0
    sample = urls[:: max(1, n // 200)]
    for url in sample:
        for key in (keys.feed(url), keys.feed_seen(url), keys.feed_versions(url)):
            per_feed_keys += int(r.memory_usage(key) or 0)
    schedule = int(r.memory_usage(keys.FEEDS_DUE) or 0)
    return {
        "feeds": n,
        "concurrency": concurrency,
        "rounds": rounds,
        "memory_bytes_per_feed_registered": round((mem_registered - mem0) / n),
        "memory_bytes_per_feed_after_polls": round(per_feed_keys / len(sample) + schedule / n),
    }


def bench_scheduler(settings: Settings, r: redis.Redis) -> list[dict[str, Any]]:
    """Cost of one beat tick (claim due feeds, send their polls) by feeds registered and feeds due."""
    from workers.app import configure
    from workers.dispatch import CeleryDispatcher

    dispatcher = CeleryDispatcher(configure(settings, settings.redis_url or ""))
    store = FeedStore(r, settings)
    out = []
    for total in (10_000, 100_000):
        for due in (0, 100, 1000, 10_000):
            r.delete(keys.FEEDS_DUE, keys.CELERY_PREFIX + keys.QUEUE_FEEDS)
            now = time.time()
            pipe = r.pipeline(transaction=False)
            for i in range(total):
                pipe.zadd(keys.FEEDS_DUE, {f"https://f{i}.example/feed": now - 1 if i < due else now + 600 + i})
                if i % 5000 == 4999:
                    pipe.execute()
            pipe.execute()
            c0, t0 = time.process_time(), time.perf_counter()
            claimed = 0
            while True:  # workers.tasks.poll_due_feeds
                batch = store.claim_due(now)
                dispatcher.send_feed_polls(batch, None)
                claimed += len(batch)
                if len(batch) < 1000:
                    break
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            assert claimed == due
            tick = {"registered": total, "due": due, "tick_ms": round(wall * 1000, 2), "cpu_ms": round(cpu * 1000, 2)}
            out.append(tick)
    r.delete(keys.FEEDS_DUE, keys.CELERY_PREFIX + keys.QUEUE_FEEDS)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-feeds-"))
    server = start_redis(tmp / "redis", persistent=False)
    try:
        settings = Settings(redis_url=server.url, allow_private_networks=True, host_delay=0.0, data_dir=tmp / "var")
        r = redis.Redis.from_url(server.url)
        with feed_server() as base:
            result: dict[str, Any] = {
                "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
                "big_feed": bench_big_feed(settings, r, base),
            }
            print(json.dumps(result["big_feed"]), flush=True)
            r.flushall()
            result["polling"] = bench_rounds(settings, r, base, args.feeds, args.concurrency, tmp)
            print(json.dumps(result["polling"]), flush=True)
        r.flushall()
        result["scheduler"] = bench_scheduler(settings, r)
        for row in result["scheduler"]:
            print(json.dumps(row), flush=True)
    finally:
        server.stop()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
