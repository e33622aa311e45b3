"""Client-side costs: start-up of the `ingest` commands, and what `--wait` costs per finished job.

    python benchmarks/bench_client.py [--runs 15] [--jobs 100,1000,3000] [--code DIR ...]

start-up: each of `ingest stats|items|poll|enqueue` is run --runs times, interleaved, against a private
redis-server (min and median wall seconds; modules imported, and whether Celery is among them).

wait: a run of N jobs is created, then a second thread ends the jobs one at a time through the real
publish script while `Jobs.wait` waits on the run; the waiter's Redis commands are counted on its
own connection (pipelined commands one by one) and its CPU time is read from its own thread clock.

--code measures other checkouts of the project too (for example the commit before a change, extracted
with `git archive`): start-up runs are interleaved across them, so versions are compared in one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))


COMMANDS = {
    "stats": ["stats", "--json"],
    "items": ["items", "--count", "5"],
    "poll": ["poll"],
    "enqueue": ["enqueue", "https://bench.example/a"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _env(code: Path, redis_url: str) -> dict[str, str]:
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(code)}
    env.pop("INGEST_CONFIG", None)
    return env


def startup(codes: list[Path], redis_url: str, runs: int) -> dict[Path, dict[str, dict[str, Any]]]:
    """Wall seconds (min, median) and imported modules of each client command, per checkout."""
    import redis

    # one feed, so that poll sends a task as it would in use
    redis.Redis.from_url(redis_url).zadd("ingest:feeds:due", {"https://bench.example/feed": 9e9})
    times: dict[tuple[Path, str], list[float]] = {}
    cpu: dict[tuple[Path, str], list[float]] = {}
    bare = []
    for _ in range(runs):
        for code in codes:
            for name, args in COMMANDS.items():
                t0, c0 = time.perf_counter(), _children_cpu()
                subprocess.run(
                    [sys.executable, "-m", "ingest", *args],
                    env=_env(code, redis_url),
                    cwd=code,
                    capture_output=True,
                    check=True,
                )
                times.setdefault((code, name), []).append(time.perf_counter() - t0)
                cpu.setdefault((code, name), []).append(_children_cpu() - c0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t0)
    out: dict[Path, dict[str, dict[str, Any]]] = {}
    for code in codes:
        out[code] = {}
        for name, args in COMMANDS.items():
            cp = subprocess.run(
                [sys.executable, "-X", "importtime", "-m", "ingest", *args],
                env=_env(code, redis_url),
                cwd=code,
                capture_output=True,
                text=True,
                check=True,
            )
            modules = [ln.split("|")[-1].strip() for ln in cp.stderr.splitlines() if ln.startswith("import time:")]
            t = times[(code, name)]
            out[code][name] = {
                "min_s": round(min(t), 3),
                "median_s": round(statistics.median(t), 3),
                "cpu_median_s": round(statistics.median(cpu[(code, name)]), 3),
                "modules": len(modules),
                "celery": any(m == "celery" or m.startswith("celery.") for m in modules),
            }
        out[code]["python -c pass"] = {"min_s": round(min(bare), 3), "median_s": round(statistics.median(bare), 3)}
    return out


def wait_cost(redis_url: str, sizes: list[int]) -> list[dict[str, Any]]:
    """Commands and CPU the waiter spends on runs of each size."""
    import redis

    from ingest.config import Settings
    from ingest.jobs import Jobs
    from ingest.models import DeadLetter, Job, Source, utcnow
    from ingest.publish import Publisher

    class Counting(redis.connection.Connection):
        sent = 0

        def send_command(self, *args: Any, **kwargs: Any) -> None:
            Counting.sent += 1
            super().send_command(*args, **kwargs)

        def pack_commands(self, commands: Any) -> Any:
            commands = list(commands)
            Counting.sent += len(commands)
            return super().pack_commands(commands)

    class Null:
        def __init__(self) -> None:
            self.jobs: list[Job] = []

        def send_article(self, job: Job) -> None:
            self.jobs.append(job)

        def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
            pass

    settings = Settings(redis_url=redis_url)
    out = []
    for size in sizes:
        plain = redis.Redis.from_url(redis_url)
        plain.flushall()
        d = Null()
        jobs = Jobs(plain)
        run = jobs.new_run("enqueue")
        for n in range(size):
            jobs.enqueue(d, f"https://bench.example/{size}/{n}", via="manual", run_id=run)
        publisher = Publisher(redis.Redis.from_url(redis_url), settings)

        def finish(todo: list[Job] = d.jobs, pub: Publisher = publisher) -> None:
            for job in todo:
                pub.deadletter(
                    job,
                    DeadLetter(
                        id=job.job_id,
                        url=job.url,
                        reason="http_404",
                        detail="bench",
                        source=Source(via="manual"),
                        failed_at=utcnow(),
                    ),
                )
                time.sleep(0.0005)  # a job ends, then the next: the waiter wakes often, as with real work

        waiter = redis.Redis(connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=Counting))
        Counting.sent = 0
        t = threading.Thread(target=finish)
        t0, c0 = time.perf_counter(), time.thread_time()
        t.start()
        progress = Jobs(waiter).wait(run, timeout=600, poll_every=1.0)
        cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
        t.join()
        assert progress.finished and progress.count("deadletter") == size, "run did not finish"
        out.append(
            {
                "jobs": size,
                "waiter_commands": Counting.sent,
                "commands_per_job": round(Counting.sent / size, 2),
                "waiter_cpu_ms_per_job": round(cpu * 1000 / size, 3),
                "wall_s": round(wall, 2),
            }
        )
    return out


def main() -> None:
    """Run both parts and print their tables."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--jobs", default="100,1000,3000")
    p.add_argument("--code", type=Path, action="append", help="checkout to measure (repeatable; default: this one)")
    p.add_argument("--skip-startup", action="store_true")
    p.add_argument("--wait-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--redis", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.wait_only:  # a child process, with the checkout to measure first on its path
        for row in wait_cost(args.redis, [int(n) for n in args.jobs.split(",")]):
            print(row)
        return
    codes = [c.resolve() for c in args.code or [ROOT]]
    from ingest.embedded import start_redis

    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp), persistent=False)
        try:
            if not args.skip_startup:
                for code, table in startup(codes, server.url, args.runs).items():
                    for name, row in table.items():
                        print(f"start-up {code.name:10} {name:15} {row}")
            for code in codes:
                out = subprocess.run(
                    [sys.executable, __file__, "--wait-only", "--jobs", args.jobs, "--redis", server.url],
                    env={**os.environ, "PYTHONPATH": str(code)},
                    cwd=code,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                for line in out.splitlines():
                    print(f"wait {code.name:10} {line}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
