"""The `ingest` command line (public contract: DESIGN.md). Exit codes: 0 ok, 2 bad usage or input, 1 other."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ingest import keys
from ingest.errors import ConfigError, IngestError, InvalidURL, Unavailable

# Client commands (poll, enqueue, items, stats) must start fast: modules they do not need, Celery
# above all, are imported inside the commands that use them (docs/benchmarks.md, start-up).
if TYPE_CHECKING:
    import redis
    from celery import Celery

    from ingest.config import Settings
    from ingest.jobs import Dispatcher, RunProgress

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or bad input: exit code 2 with a one-line message."""


def _client(settings: Settings) -> redis.Redis:
    import redis

    from ingest.embedded import resolve_url

    return redis.Redis.from_url(resolve_url(settings.redis_url, settings.data_dir))


def _celery(settings: Settings) -> Celery:
    # Celery is imported here, in the composition root's commands, never by the ingest library.
    from ingest.embedded import resolve_url
    from workers.app import configure

    return configure(settings, resolve_url(settings.redis_url, settings.data_dir))


def _dispatcher(client: redis.Redis) -> Dispatcher:
    # Commands only send tasks: Celery-format messages written to Redis without loading Celery.
    from workers.sender import RedisDispatcher

    return RedisDispatcher(client)


def _setup_logging() -> None:
    from ingest import logs

    logs.setup()


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str), flush=True)


# ---- long-running processes ----


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Redis (embedded unless REDIS_URL is set), worker, beat and API in the foreground."""
    from ingest.supervisor import up

    return up(settings, concurrency=args.concurrency)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run a Celery worker consuming feed polls first, then articles."""
    from ingest.storyline import load_storylines

    load_storylines(settings.storylines_path)  # fail now, with a clear message, not in every child
    _setup_logging()
    app = _celery(settings)
    concurrency = args.concurrency or settings.worker_concurrency or os.cpu_count() or 1
    argv = [
        "worker",
        "--loglevel=INFO",
        f"--queues={keys.QUEUE_FEEDS},{keys.QUEUE_ARTICLES}",
        f"--concurrency={concurrency}",
        f"--hostname=ingest-{os.getpid()}@{socket.gethostname()}",
        # No gossip, mingle or events: workers coordinate through Redis state, not broadcasts.
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    app.worker_main(argv)  # returns only by exiting the process


def cmd_beat(settings: Settings, args: argparse.Namespace) -> int:
    """Run the scheduler: dispatch polls of due feeds, re-send stale jobs."""
    _setup_logging()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = _celery(settings)
    app.start(["beat", "--loglevel=INFO"])  # returns only by exiting the process


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the HTTP API."""
    import uvicorn

    from ingest.api import create_app

    _setup_logging()
    client = _client(settings)
    app = create_app(settings, client, _dispatcher(client))
    uvicorn.run(app, host=args.host or settings.api_host, port=args.port or settings.api_port, log_level="info")
    return EXIT_OK


# ---- feeds ----


def _check_feed(settings: Settings, client: redis.Redis, url: str, discover: bool) -> list[str]:
    """The feeds to add for url: itself when it is a feed, the feeds its page offers with --discover."""
    from ingest import discover as disc
    from ingest.fetch import Fetcher

    with Fetcher(settings, client) as fetcher:
        try:
            check = disc.check(fetcher, url)
        except IngestError as exc:
            raise UsageError(
                f"cannot fetch {url}: {exc.reason}: {exc.detail} (add it anyway with --no-check if it is down for now)"
            ) from None
        if check.is_feed:
            return [url]
        if not check.html:
            raise UsageError(f"{url} is not a feed: {check.problem} (add it anyway with --no-check)")
        if not check.feeds:
            raise UsageError(
                f'{url} is a web page, not a feed, and offers none (looked for <link rel="alternate"> and '
                f"{', '.join(disc.COMMON_PATHS)})"
            )
        if not discover:
            raise UsageError(
                f"{url} is a web page, not a feed; it offers {len(check.feeds)}: {' '.join(check.feeds)} "
                f"(add them with `ingest feeds add --discover {url}`)"
            )
        # a declared link may still be broken: add only those that parse
        good = []
        for found in check.feeds:
            try:
                if disc.check(fetcher, found, probe=False).is_feed:
                    good.append(found)
            except IngestError:
                continue
        if not good:
            raise UsageError(f"{url} links to {' '.join(check.feeds)}, but none of them is a readable feed")
        return good


def cmd_feeds(settings: Settings, args: argparse.Namespace) -> int:
    """Add, list or remove feeds."""
    from ingest import report
    from ingest.feeds import FeedStore
    from ingest.urls import validate_url

    client = _client(settings)
    store = FeedStore(client, settings)
    if args.feeds_command == "add":
        from ingest.jobs import Jobs

        try:
            url = validate_url(args.url)
        except InvalidURL as exc:
            raise UsageError(exc.detail) from None
        to_add = [url] if args.no_check else _check_feed(settings, client, url, args.discover)
        for feed_url in to_add:
            try:
                new = store.add(feed_url, args.interval)
            except InvalidURL as exc:
                raise UsageError(exc.detail) from None
            if new:
                # Whoever polls it first (the scheduler, at once), the next `poll --wait` counts that work.
                Jobs(client).open_first_poll(feed_url)
            print(f"{'added' if new else 'updated'} {feed_url} (every {args.interval or settings.feed_interval}s)")
    elif args.feeds_command == "remove":
        if not store.remove(args.url):
            raise UsageError(f"no such feed: {args.url}")
        print(f"removed {args.url}")
    else:
        infos = store.all()
        if args.json:
            for info in infos:
                _print_json(report.feed_health(info))
        else:
            print(report.feeds_table(infos) if infos else "no feeds (add one with `ingest feeds add URL`)")
    return EXIT_OK


# ---- work ----


def _wait(client: redis.Redis, run_id: str, args: argparse.Namespace, also: Sequence[str] = ()) -> RunProgress:
    """Wait for a run: its id first, progress on a terminal, what to do next on Ctrl-C."""
    from ingest import waiting

    show = waiting.interactive(args.json)
    if show:
        print(f"run {run_id} (later: `ingest runs show {run_id}`)", file=sys.stderr, flush=True)
    try:
        return waiting.wait(client, run_id, args.timeout, show=show, also=also)
    except KeyboardInterrupt:
        print(
            f"\ningest: stopped waiting; run {run_id} goes on: `ingest runs show {run_id}` shows how far it got",
            file=sys.stderr,
            flush=True,
        )
        raise


def _timed_out(progress: RunProgress, args: argparse.Namespace) -> int:
    if progress.finished:
        return EXIT_OK
    print(
        f"ingest: timed out after {args.timeout}s with work still pending "
        f"(`ingest runs show {progress.run_id}` follows it)",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    """Poll every feed now; with --wait, return when every article it caused has finished."""
    from ingest import report
    from ingest.feeds import FeedStore
    from ingest.jobs import Jobs

    client = _client(settings)
    jobs = Jobs(client)
    urls = FeedStore(client, settings).urls()
    if not urls:
        print("no feeds to poll (add one with `ingest feeds add URL`)", file=sys.stderr)
        return EXIT_OK
    dispatcher = _dispatcher(client)
    # First polls `feeds add` sent: their work counts as this poll's (they may have run already).
    adopted = jobs.adopt_first_polls()
    run_id = jobs.new_run("poll")
    jobs.add_run_feeds(run_id, urls)
    for url in urls:
        dispatcher.send_feed_poll(url, run_id)
    if not args.wait:
        print(f"polling {len(urls)} feeds (run {run_id})")
        return EXIT_OK
    progress = _wait(client, run_id, args, also=adopted)
    summary = report.run_summary(progress)
    if args.json:
        _print_json(summary)
    else:
        print(report.format_summary(summary))
    return _timed_out(progress, args)


def cmd_enqueue(settings: Settings, args: argparse.Namespace) -> int:
    """Enqueue URLs by hand; with --wait, print each URL's outcome."""
    from ingest import report
    from ingest.jobs import Jobs
    from ingest.urls import validate_url

    try:
        urls = [validate_url(u) for u in args.urls]  # all or nothing: one bad URL enqueues none
    except InvalidURL as exc:
        raise UsageError(exc.detail) from None
    client = _client(settings)
    jobs = Jobs(client)
    dispatcher = _dispatcher(client)
    run_id = jobs.new_run("refetch" if args.refetch else "enqueue")
    # --refetch: a job of its own even for a URL seen before; a changed page becomes a revision
    version = f"refetch:{run_id}" if args.refetch else None
    results = [jobs.enqueue(dispatcher, u, via="manual", run_id=run_id, version=version) for u in urls]
    if args.wait:
        progress = _wait(client, run_id, args)
        every = {**progress.jobs, **progress.seen}
        rows = [
            report.job_outcome(r.url, every.get(r.job_id) or jobs.job(r.job_id), already_seen=r.status == "done")
            for r in results
        ]
    else:
        rows = [{"url": r.url, "job_id": r.job_id, "status": "queued" if r.is_new else "already_seen"} for r in results]
        progress = None
    for row in rows:
        if args.json:
            _print_json({**row, "run": run_id})
        else:
            print(report.format_outcome(row))
    return _timed_out(progress, args) if progress is not None else EXIT_OK


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    """Re-enqueue dead-lettered URLs (the deadletter entries stay); with --wait, print each outcome."""
    from ingest import report
    from ingest.redisutil import text_map
    from ingest.retry import RetryError, parse_since, retry

    client = _client(settings)
    if args.reason is not None:
        known = sorted(k[len("reason:") :] for k in text_map(client.hgetall(keys.STATS)) if k.startswith("reason:"))
        if args.reason not in known:
            raise UsageError(f"no dead letters with reason {args.reason!r}; reasons seen: {', '.join(known) or 'none'}")
    try:
        since = parse_since(args.since) if args.since is not None else None
        result = retry(
            client,
            _dispatcher(client),
            reason=args.reason,
            since=since,
            urls=args.urls,
            entry_id=args.entry,
            again=args.again,
            dry_run=args.dry_run,
        )
    except RetryError as exc:
        raise UsageError(str(exc)) from None
    summary = result.as_dict()
    if not args.wait or result.run_id is None:
        if args.json:
            _print_json(summary)
        else:
            counts = f"matched={result.matched} already_retried={result.already_retried} invalid={result.invalid}"
            if not result.urls:
                print(
                    f"nothing to retry: {counts}"
                    + (" (--again retries entries taken before)" if result.already_retried else "")
                )
            else:
                verb = "would retry" if args.dry_run else "retrying"
                run = f" (run {result.run_id})" if result.run_id else ""
                print(f"{verb} {len(result.urls)} URL(s){run}: {counts}")
            for url in result.urls:
                print(f"  {url}")
        return EXIT_OK
    progress = _wait(client, result.run_id, args)
    rows = [report.job_outcome(j.get("url", ""), j) for j in progress.jobs.values()]
    for row in rows:
        if args.json:
            _print_json(row)
        else:
            print(report.format_outcome(row))
    return _timed_out(progress, args)


def cmd_runs(settings: Settings, args: argparse.Namespace) -> int:
    """Show a run's state: counts, then every URL with its outcome, already-seen ones included."""
    from ingest import report
    from ingest.jobs import Jobs

    jobs = Jobs(_client(settings))
    if not jobs.exists(args.run_id):
        raise UsageError(f"no run {args.run_id} (runs are kept for a day)")
    state = report.run_state(jobs.progress(args.run_id))
    if args.json:
        _print_json(state)
        return EXIT_OK
    print(report.format_summary(state))
    for row in state["jobs"]:
        print(report.format_outcome(row))
    return EXIT_OK


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    """One item by id or URL, and why: tagging per storyline, the original of a duplicate, a failure's reason."""
    from ingest import explain, report

    shown = explain.explain(_client(settings), settings, args.ref)
    if shown is None:
        ref = args.ref if len(args.ref) <= 200 else args.ref[:200] + "..."
        raise UsageError(f"no item with id or URL {ref!r}")
    if args.json:
        _print_json(shown)
    else:
        print(report.format_explanation(shown))
    return EXIT_OK


# ---- reading ----


def _stream(settings: Settings, client: redis.Redis, name: str) -> str:
    from ingest.streams import resolve

    try:
        return resolve(client, settings.storylines_path, name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_items(settings: Settings, args: argparse.Namespace) -> int:
    """Show the latest items of a stream without consuming them."""
    from ingest import report
    from ingest.consume import latest

    client = _client(settings)
    entries = latest(client, _stream(settings, client, args.stream), args.count)
    for e in entries:
        if args.json:
            _print_json(e.data)
        else:
            print(report.format_item(e))
    return EXIT_OK


def cmd_consume(settings: Settings, args: argparse.Namespace) -> int:
    """Read as a consumer group member, print JSON lines, ack after printing."""
    from ingest.consume import Consumer

    consumer_name = args.consumer or f"{socket.gethostname()}-{os.getpid()}"
    client = _client(settings)
    consumer = Consumer(client, _stream(settings, client, args.stream), args.group, consumer_name, args.min_idle)
    for batch in consumer.batches(args.count, args.block):
        for entry in batch:
            print(json.dumps(entry.data, ensure_ascii=False))
        sys.stdout.flush()  # printed means delivered: ack only after the lines are out
        consumer.ack(batch)
    return EXIT_OK


def cmd_retag(settings: Settings, args: argparse.Namespace) -> int:
    """Re-score stored articles for one storyline; publish those that newly enter it."""
    from ingest.retag import retag
    from ingest.storyline import load_storylines

    by_id = {s.id: s for s in load_storylines(settings.storylines_path)}
    if args.storyline not in by_id:
        raise UsageError(f"no storyline {args.storyline!r}; defined: {', '.join(sorted(by_id)) or 'none'}")
    report = retag(_client(settings), settings, by_id[args.storyline])
    if args.json:
        _print_json(report.as_dict())
    else:
        print(
            f"storyline {report.storyline} (version {report.version}): scanned {report.scanned}, "
            f"newly on {len(report.entered)} (published), no longer on {len(report.left)}, "
            f"still on {report.stayed}"
        )
    return EXIT_OK


def cmd_stats(settings: Settings, args: argparse.Namespace) -> int:
    """Counters, queue depths and feed health."""
    from ingest import report
    from ingest.feeds import FeedStore

    client = _client(settings)
    data = report.stats(client, FeedStore(client, settings).all())
    if args.json:
        _print_json(data)
    else:
        print(report.format_stats(data))
    return EXIT_OK


# ---- parsing ----


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return n


def _non_negative_int(value: str) -> int:
    return 0 if value == "0" else _positive_int(value)


def _add_run_parsers(sub: Any) -> None:
    """Subcommands that follow up on work: retry, runs, show."""
    rty = sub.add_parser("retry", help="re-enqueue dead-lettered URLs (the deadletter entries stay)")
    rty.add_argument("urls", nargs="*", metavar="URL", help="only these URLs (default: every dead letter)")
    rty.add_argument("--reason", help="only dead letters with this reason, e.g. http_404 (default: any)")
    rty.add_argument("--since", metavar="T", help="only dead letters since T: 2025-03-18, 2025-03-18T09:00, 2h, 1d")
    rty.add_argument("--entry", metavar="ID", help="only this deadletter entry (stream entry id)")
    rty.add_argument("--again", action="store_true", help="also entries an earlier retry took (default: skip)")
    rty.add_argument("--dry-run", action="store_true", help="list what would be retried, enqueue nothing")
    rty.add_argument("--wait", action="store_true", help="wait for the outcomes and print them")
    rty.add_argument("--timeout", type=_positive_int, default=300, help="seconds --wait waits at most (default: 300)")
    rty.add_argument("--json", action="store_true", help="JSON output")

    runs = sub.add_parser("runs", help="the state of a poll, enqueue or retry run")
    rsub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    rshow = rsub.add_parser("show", help="counts and every URL's outcome, already-seen ones included")
    rshow.add_argument("run_id", metavar="ID")
    rshow.add_argument("--json", action="store_true", help="JSON output")

    show = sub.add_parser("show", help="one item by id or URL, and why it was tagged or judged a duplicate")
    show.add_argument("ref", metavar="ID|URL")
    show.add_argument("--json", action="store_true", help="JSON output")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="ingest", description="News ingestion with dedup and storyline tagging.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run everything in the foreground (Redis, worker, beat, API)")
    up.add_argument("--concurrency", type=_positive_int)
    w = sub.add_parser("worker", help="run a Celery worker")
    w.add_argument("--concurrency", type=_positive_int)
    sub.add_parser("beat", help="run the scheduler")
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host")
    api.add_argument("--port", type=_positive_int)

    feeds = sub.add_parser("feeds", help="manage feeds")
    fsub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    fadd = fsub.add_parser("add", help="add a feed")
    fadd.add_argument("url")
    fadd.add_argument("--interval", type=_positive_int, help="seconds between polls (default: INGEST_FEED_INTERVAL)")
    fadd.add_argument(
        "--no-check", action="store_true", help="add without fetching it first (a feed that is down for now)"
    )
    fadd.add_argument(
        "--discover", action="store_true", help="URL is a web page: add the feeds it offers (default: refuse pages)"
    )
    flist = fsub.add_parser("list", help="list feeds and their health")
    flist.add_argument("--json", action="store_true")
    frm = fsub.add_parser("remove", help="remove a feed")
    frm.add_argument("url")

    poll = sub.add_parser("poll", help="poll every feed now")
    poll.add_argument("--wait", action="store_true")
    poll.add_argument("--timeout", type=_positive_int, default=600)
    poll.add_argument("--json", action="store_true")

    enq = sub.add_parser("enqueue", help="enqueue article URLs by hand")
    enq.add_argument("urls", nargs="+", metavar="URL")
    enq.add_argument(
        "--refetch", action="store_true", help="fetch again even if seen before (a changed page becomes a revision)"
    )
    enq.add_argument("--wait", action="store_true")
    enq.add_argument("--timeout", type=_positive_int, default=300)
    enq.add_argument("--json", action="store_true")

    items = sub.add_parser("items", help="show items without consuming them")
    items.add_argument("--stream", default="articles", help="articles, duplicates, deadletter or storyline:ID")
    items.add_argument("--count", type=_positive_int, default=10)
    items.add_argument("--json", action="store_true")

    con = sub.add_parser("consume", help="read as a consumer group; prints JSON lines, acks after printing")
    con.add_argument("--group", required=True)
    con.add_argument("--consumer")
    con.add_argument("--stream", default="articles")
    con.add_argument("--count", type=_positive_int)
    con.add_argument("--block", type=_non_negative_int, help="milliseconds to wait for new entries (0: forever)")
    con.add_argument(
        "--min-idle",
        type=_positive_int,
        default=60_000,
        help="reclaim entries another consumer left unacked this many milliseconds",
    )

    rt = sub.add_parser("retag", help="re-score stored articles after a storyline definition changed")
    rt.add_argument("--storyline", required=True, metavar="ID")
    rt.add_argument("--json", action="store_true")

    st = sub.add_parser("stats", help="counters, queue depths, feed health")
    st.add_argument("--json", action="store_true")

    _add_run_parsers(sub)
    return p


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "up": cmd_up,
    "worker": cmd_worker,
    "beat": cmd_beat,
    "api": cmd_api,
    "feeds": cmd_feeds,
    "poll": cmd_poll,
    "enqueue": cmd_enqueue,
    "items": cmd_items,
    "consume": cmd_consume,
    "stats": cmd_stats,
    "retag": cmd_retag,
    "retry": cmd_retry,
    "runs": cmd_runs,
    "show": cmd_show,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ingest` console script."""
    args = build_parser().parse_args(argv)  # exits 2 on bad usage, with argparse's message
    import redis

    from ingest.config import load_settings

    try:
        settings = load_settings()
        return COMMANDS[args.command](settings, args)
    except (UsageError, ConfigError) as exc:
        print(f"ingest: {exc.detail if isinstance(exc, IngestError) else exc}", file=sys.stderr)
        return EXIT_USAGE
    except Unavailable as exc:
        print(f"ingest: {exc.detail}", file=sys.stderr)
        return EXIT_FAILURE
    except redis.ConnectionError as exc:
        print(f"ingest: cannot reach Redis: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away; nothing more to say
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("INGEST_DEBUG"):
            raise
        print(f"ingest: {type(exc).__name__}: {exc} (set INGEST_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
