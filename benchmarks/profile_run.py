"""Where the CPU of a run goes: one `ingest poll --wait` over a local site, CPU per article by part.

Starts a private redis-server, the local site of benchmarks/aeb_site.py (the 181 pages of
../shared/data/aeb, or --articles N distinct URLs made from them), and `ingest worker`; adds the
site's feeds, waits until the worker is idle, then times `ingest poll --wait`. CPU is read per
process: the worker's parent (Celery's consumer) and its pool children from /proc, redis-server
from /proc, the poll client from its own rusage. With --cprofile (the default) it runs twice: once
plain, for the totals, and once with INGEST_PROFILE_DIR set, so each pool child writes a cProfile
of its CPU time when it exits; the children's CPU of the plain run is split by the shares of that
profile (the profiler's own overhead inflates every part alike, so shares carry over, totals not).

    python benchmarks/profile_run.py                     # the 181 pages, as evalbench speed serves them
    python benchmarks/profile_run.py --articles 10000 --feeds 50 --no-cprofile
    python benchmarks/profile_run.py --json-out run.json
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from benchmarks.aeb_site import DEFAULT_AEB  # noqa: E402
from ingest import embedded, keys  # noqa: E402
from ingest.config import Settings  # noqa: E402
from ingest.feeds import FeedStore  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
INGEST = [sys.executable, "-m", "ingest"]

# Parts of a pool child's CPU, by the functions whose cumulative time they are (file suffix, name).
PARTS = [
    ("trafilatura extraction (clean.extract)", [("ingest/clean.py", "extract")]),
    ("fetch (robots, politeness, HTTP)", [("ingest/fetch.py", "fetch_article")]),
    ("storyline tagging", [("ingest/storyline.py", "tag_all")]),
    ("dedup fingerprint", [("ingest/dedup.py", "fingerprint")]),
    (
        "dedup claim and publish (one Redis script)",
        [("ingest/publish.py", n) for n in ("claim_and_publish", "item", "deadletter")]
        + [("ingest/dedup.py", "claim")],
    ),
    ("job bookkeeping (Redis)", [("ingest/jobs.py", "begin")]),
    ("feed polls", [("workers/tasks.py", "poll_feed")]),
]
PIPELINE = ("ingest/pipeline.py", "run")
TASK = ("workers/tasks.py", "process_article")
LOGGING = ("logging/__init__.py", "_log")


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process, in clock ticks, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int]:
    """(idle, all) clock ticks of every core since boot, from /proc/stat (idle counts iowait too)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def children_of(pid: int) -> list[int]:
    """Direct children of a process."""
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(p) for p in listed]


class Sampler:
    """Remembers the last CPU reading of each process of the worker tree, the poll client and Redis."""

    def __init__(self, worker: int, redis_pid: int) -> None:
        self.worker, self.redis = worker, redis_pid
        self.last: dict[int, int] = {}
        self.base: dict[int, int] = {}
        self.started_at = self.client_exit_at = 0.0  # wall clock (epoch) of the poll client
        self.machine_before = self.machine_after = (0, 0)  # machine_ticks() around the poll client

    def pids(self) -> list[int]:
        """The worker's parent, its pool children, and Redis."""
        return [self.worker, *children_of(self.worker), self.redis]

    def sample(self) -> None:
        """Read every process now."""
        for pid in self.pids():
            ticks = cpu_ticks(pid)
            if ticks is not None:
                self.last[pid] = ticks

    def start(self) -> None:
        """Take the readings the run is measured from."""
        self.sample()
        self.base = dict(self.last)

    def ms(self, pid: int) -> float:
        """CPU ms of a process since start()."""
        return (self.last.get(pid, 0) - self.base.get(pid, 0)) * 1000 / TICK

    def children_ms(self) -> float:
        """CPU ms of every pool child seen since start()."""
        return sum(self.ms(p) for p in self.last if p not in (self.worker, self.redis))


def wait_idle(sampler: Sampler, quiet: float = 1.5, timeout: float = 120) -> None:
    """Wait until the worker's processes have used no CPU for `quiet` seconds (warm-up done)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        sampler.sample()
        total = sum(sampler.last.get(p, 0) for p in sampler.pids() if p != sampler.redis)
        if total != last:
            last, since = total, time.monotonic()
        elif time.monotonic() - since >= quiet and len(sampler.pids()) > 2:
            return
        time.sleep(0.25)
    sys.exit("profile_run: the worker did not become idle")


def expected_articles(args: argparse.Namespace) -> int:
    """How many article URLs the site lists in its feeds."""
    return int(args.articles) if args.articles is not None else len(list((args.aeb / "html").glob("*.html.gz")))


def wait_outside(client: redis.Redis, expected: int, sampler: Sampler, timeout: float) -> dict[str, Any]:
    """Wait for the poll's run by reading its counters (for --no-wait: the poll client has exited)."""
    found = client.scan_iter(match=keys.run("*"), count=1000)
    runs = [k for k in found if client.type(k) == b"hash" and client.hget(k, "kind") == b"poll"]
    if len(runs) != 1:
        sys.exit(f"profile_run: expected one poll run in Redis, found {len(runs)}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counters = {k.decode(): v.decode() for k, v in client.hgetall(runs[0]).items()}
        if sum(int(counters.get(k, 0)) for k in ("article", "duplicate", "deadletter")) >= expected:
            return counters
        sampler.sample()
        time.sleep(0.5)
    sys.exit("profile_run: the run did not finish in time")


def start_site(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start benchmarks/aeb_site.py; returns the process, its base URL and its feed URLs."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "aeb_site.py"), "--aeb", str(args.aeb), "--feeds", str(args.feeds)]
    if args.articles is not None:
        cmd += ["--articles", str(args.articles)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    assert proc.stdout is not None
    base, feeds = "", []
    for raw in proc.stdout:
        line = raw.strip()
        if line == "ready":
            return proc, base, feeds
        if line.startswith("feed "):
            feeds.append(line[5:])
        else:
            base = line
    sys.exit(f"profile_run: the site did not start (see {log})")


def run_poll(
    args: argparse.Namespace, env: dict[str, str], tmp: Path, sampler: Sampler, redis_url: str
) -> tuple[float, dict[str, Any], float]:
    """Run `ingest poll` until its run has finished; returns wall seconds, the summary, the client's CPU ms."""
    sampler.started_at = time.time()
    sampler.machine_before = machine_ticks()
    t0 = time.perf_counter()
    poll_args = ["poll", "--wait", "--json", "--timeout", str(args.timeout)] if args.wait else ["poll"]
    with (tmp / "poll.out").open("w") as out, (tmp / "poll.err").open("w") as err:
        poll = subprocess.Popen(
            [*INGEST, *poll_args],
            cwd=args.project,
            env=env,
            stdout=out,
            stderr=err,
        )
        next_sample = 0.0
        while True:
            pid, status, usage = os.wait4(poll.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() >= next_sample:
                sampler.sample()
                next_sample = time.monotonic() + 0.2
            time.sleep(0.005)  # the client's exit is timed to a few ms, as evalbench times it
    sampler.client_exit_at = time.time()
    sampler.machine_after = machine_ticks()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = (tmp / "poll.err").read_text()[-2000:]
        sys.exit(f"profile_run: `ingest poll` exited {code}: {tail}")
    if args.wait:
        summary = json.loads((tmp / "poll.out").read_text().strip().splitlines()[-1])
    else:
        summary = wait_outside(redis.Redis.from_url(redis_url), expected_articles(args), sampler, args.timeout)
    wall = time.perf_counter() - t0
    sampler.sample()
    return wall, summary, (usage.ru_utime + usage.ru_stime) * 1000


def one_run(args: argparse.Namespace, tmp: Path, profile_dir: Path | None) -> dict[str, Any]:
    """Start everything, poll once with --wait, and return the CPU readings."""
    tmp.mkdir(parents=True)
    server = embedded.start_redis(tmp / "redis", persistent=False)
    site, base, feed_urls = start_site(args, tmp / "site.log")
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": server.url,
            "INGEST_ALLOW_PRIVATE_NETWORKS": "1",
            "INGEST_HOST_DELAY": "0",
            "INGEST_DATA_DIR": str(tmp / "var"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(args.project.resolve()),
        }
    )
    env.pop("INGEST_CONFIG", None)
    env.pop("INGEST_PROFILE_DIR", None)
    if profile_dir is not None:
        env["INGEST_PROFILE_DIR"] = str(profile_dir)
    env["INGEST_TIMELINE_DIR"] = str(tmp / "timeline")
    log = (tmp / "worker.log").open("w")
    worker = subprocess.Popen(
        [*INGEST, "worker", "--concurrency", str(args.workers)],
        cwd=args.project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        subprocess.run(
            [*INGEST, "enqueue", "--wait", f"{base}/warm.html"],
            cwd=args.project,
            env=env,
            check=True,
            capture_output=True,
        )
        store = FeedStore(redis.Redis.from_url(server.url), Settings(redis_url=server.url))
        for url in feed_urls:
            store.add(url)
        sampler = Sampler(worker.pid, server.process.pid)
        wait_idle(sampler)
        sampler.start()
        site_before = cpu_ticks(site.pid) or 0
        stats_client = redis.Redis.from_url(server.url)
        stats_client.config_resetstat()
        wall, summary, poll_ms = run_poll(args, env, tmp, sampler, server.url)
        calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats_client.info("commandstats").items()}
        site_ms = ((cpu_ticks(site.pid) or 0) - site_before) * 1000 / TICK
        timing = {"started_at": sampler.started_at, "client_exit_at": sampler.client_exit_at}
        idle = sampler.machine_after[0] - sampler.machine_before[0]
        ticks = sampler.machine_after[1] - sampler.machine_before[1]
        return {
            "timing": timing,
            "redis_calls": calls,
            "wall_s": wall,
            "summary": summary,
            "poll_ms": poll_ms,
            "waited": args.wait,
            "parent_ms": sampler.ms(worker.pid),
            "children_ms": sampler.children_ms(),
            "redis_ms": sampler.ms(server.process.pid),
            "site_ms": site_ms,
            "machine_idle": idle / ticks if ticks else 0.0,
        }
    finally:
        # warm shutdown: pool children exit normally and write their profiles
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        log.close()
        site.kill()
        site.wait()
        server.stop()


def wall_breakdown(timeline_dir: Path, started_at: float, client_exit_at: float, workers: int) -> dict[str, Any]:
    """Where the pool's core-seconds of the poll went: tasks, waiting to start, gaps, tail, the end."""
    children: list[list[tuple[str, float, float, float]]] = []
    for f in sorted(timeline_dir.glob("timeline-*.tsv")):
        rows = []
        for line in f.read_text().splitlines():
            name, start, end, cpu = line.split("\t")
            if float(start) >= started_at:
                rows.append((name, float(start), float(end), float(cpu)))
        if rows:
            children.append(sorted(rows, key=lambda r: r[1]))
    if not children:
        return {}
    first = min(c[0][1] for c in children)
    last = max(c[-1][2] for c in children)
    gaps = [b[1] - a[2] for c in children for a, b in itertools.pairwise(c)]
    wall = client_exit_at - started_at
    slots = max(workers, len(children))
    out = {
        "wall_s": wall,
        "slots": slots,
        "before first task (client start-up, sending, first message)": (first - started_at) * slots,
        "in tasks, on the CPU": sum(r[3] for c in children for r in c),
        "in tasks, waiting (I/O, Redis, other processes on the core)": sum(
            r[2] - r[1] - r[3] for c in children for r in c
        ),
        "in feed polls": sum(r[2] - r[1] for c in children for r in c if r[0] == "ingest.poll_feed"),
        "gaps between tasks": sum(gaps),
        "child idle at the start (after the first task began)": sum(c[0][1] - first for c in children),
        "tail (a child done, another still busy)": sum(last - c[-1][2] for c in children),
        "after the last task (client noticing the end, exiting)": (client_exit_at - last) * slots,
        "gap count": len(gaps),
        "gap mean ms": 1000 * sum(gaps) / len(gaps) if gaps else 0.0,
        "gap p90 ms": 1000 * sorted(gaps)[int(0.9 * (len(gaps) - 1))] if gaps else 0.0,
    }
    out["unaccounted (children that never ran)"] = (slots - len(children)) * (last - first)
    return out


def print_wall(b: dict[str, Any]) -> None:
    """The wall-time table: core-seconds of the pool during the poll, by what the cores were doing."""
    total = b["wall_s"] * b["slots"]
    print(f"\nWall time of the poll, {b['wall_s']:.2f} s x {b['slots']} pool processes = {total:.2f} core-seconds:\n")
    print("| pool time | s | share |\n|---|---:|---:|")
    for name, v in b.items():
        if name in ("wall_s", "slots") or name.startswith("gap ") or name == "in feed polls":
            continue
        print(f"| {name} | {v:.3f} | {v / total:.1%} |")
    print(
        f"\n(in feed polls {b['in feed polls']:.3f} s of the task time; {b['gap count']} gaps, "
        f"mean {b['gap mean ms']:.1f} ms, p90 {b['gap p90 ms']:.1f} ms)"
    )


def profile_shares(profile_dir: Path) -> dict[str, float]:
    """Each part's share of the pool children's profiled CPU time."""
    files = sorted(profile_dir.glob("child-*.prof"))
    if not files:
        sys.exit(f"profile_run: the pool children wrote no profile to {profile_dir}")
    stats = pstats.Stats(*(str(f) for f in files))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]

    def cum(targets: list[tuple[str, str]]) -> float:
        return sum(
            v[3] for (file, _line, name), v in raw.items() if any(file.endswith(f) and name == n for f, n in targets)
        )

    shares = {name: cum(targets) / total for name, targets in PARTS}
    task, pipe = cum([TASK]), cum([PIPELINE])
    listed = sum(shares[name] for name, _ in PARTS if name != "feed polls")
    shares["rest of the article pipeline"] = max(0.0, pipe / total - listed)
    shares["Celery task wrapper (workers/tasks.py)"] = max(0.0, (task - pipe) / total)
    shares["Celery inside pool children"] = max(0.0, 1 - (task + cum([PARTS[-1][1][0]])) / total)
    shares["of which logging (all parts)"] = cum([LOGGING]) / total
    return shares


def table(run: dict[str, Any], shares: dict[str, float] | None, articles: int) -> list[tuple[str, float]]:
    """(part, CPU ms per article) rows."""
    rows: list[tuple[str, float]] = []
    children = run["children_ms"]
    if shares:
        for name, share in shares.items():
            rows.append((name, children * share / articles))
    else:
        rows.append(("worker pool children (pipeline, feed polls, Celery in children)", children / articles))
    rows.append(("Celery worker parent (consumer, acks, pool I/O)", run["parent_ms"] / articles))
    client = "`ingest poll --wait` client" if run["waited"] else "`ingest poll` client (start-up, sending the polls)"
    rows.append((client, run["poll_ms"] / articles))
    rows.append(("redis-server", run["redis_ms"] / articles))
    return rows


def main() -> None:
    """Run, print the table (Markdown) and the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aeb", type=Path, default=DEFAULT_AEB)
    ap.add_argument("--articles", type=int, default=None, help="distinct article URLs (default: the 181 pages)")
    ap.add_argument("--feeds", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--no-cprofile", dest="cprofile", action="store_false", help="one plain run, no breakdown")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument(
        "--no-wait", dest="wait", action="store_false", help="`ingest poll` without --wait; this script waits instead"
    )
    ap.add_argument("--top", type=int, default=15, help="functions listed per process kind (with --cprofile)")
    ap.add_argument("--project", type=Path, default=ROOT, help="run the service from this checkout (default: this one)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="profile-run-"))
    run = one_run(args, tmp / "plain", None)
    shares = None
    if args.cprofile:
        profiled = one_run(args, tmp / "profiled", tmp / "profiles")
        shares = profile_shares(tmp / "profiles")
        run["profiled_wall_s"] = profiled["wall_s"]
    summary = run["summary"]
    articles = expected_articles(args)
    wall = wall_breakdown(
        tmp / "plain" / "timeline", run["timing"]["started_at"], run["timing"]["client_exit_at"], args.workers
    )
    run["wall_breakdown"] = wall
    rows = table(run, shares, articles)
    total = sum(ms for name, ms in rows if not name.startswith("of which"))
    print(
        f"\n{articles} articles, wall {run['wall_s']:.2f} s ({articles / run['wall_s']:.1f}/s), "
        f"CPU {total:.1f} ms per article; poll summary {json.dumps(summary)}"
    )
    print(f"local site (outside the service, not counted): {run['site_ms'] / articles:.1f} ms per article")
    print(f"machine ({os.cpu_count()} cores) idle during the poll: {run['machine_idle']:.1%}\n")
    print("| part | CPU ms per article | share |\n|---|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} | {ms / total:.1%} |")
    print(f"| **total** | **{total:.1f}** | 100% |")
    if wall:
        print_wall(wall)
    calls = sorted(run["redis_calls"].items(), key=lambda kv: -kv[1])
    per = ", ".join(f"{name} {n / articles:.2f}" for name, n in calls if n / articles >= 0.05)
    print(f"\nRedis commands per article: {sum(n for _, n in calls) / articles:.1f} ({per})")
    if args.cprofile:
        for role in ("child", "parent"):
            files = sorted((tmp / "profiles").glob(f"{role}-*.prof"))
            if files:
                out = io.StringIO()
                stats = pstats.Stats(*(str(f) for f in files), stream=out)
                stats.sort_stats("tottime").print_stats(args.top)
                title = "pool children" if role == "child" else "worker parent"
                print(f"\nTop {args.top} functions by own CPU time, {title} (cProfile, {tmp / 'profiles'}):")
                print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-8000:])
    if args.json_out:
        args.json_out.write_text(json.dumps({"articles": articles, "run": run, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
