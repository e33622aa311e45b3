"""The `ingest` command line (public contract: DESIGN.md). Exit codes: 0 ok, 2 bad usage or input, 1 other."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import redis

from ingest import keys, logs, report
from ingest.config import Settings, load_settings
from ingest.consume import Consumer, latest
from ingest.embedded import resolve_url
from ingest.errors import ConfigError, IngestError, InvalidURL, Unavailable
from ingest.feeds import FeedStore
from ingest.jobs import Dispatcher, Jobs
from ingest.urls import validate_url

if TYPE_CHECKING:
    from celery import Celery

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or bad input: exit code 2 with a one-line message."""


def _client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(resolve_url(settings.redis_url, settings.data_dir))


def _celery(settings: Settings) -> Celery:
    # Celery is imported here, in the composition root's commands, never by the ingest library.
    from workers.app import configure

    return configure(settings, resolve_url(settings.redis_url, settings.data_dir))


def _dispatcher(settings: Settings) -> Dispatcher:
    from workers.dispatch import CeleryDispatcher

    return CeleryDispatcher(_celery(settings))


def _setup_logging() -> None:
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
    app = create_app(settings, client, _dispatcher(settings))
    uvicorn.run(app, host=args.host or settings.api_host, port=args.port or settings.api_port, log_level="info")
    return EXIT_OK


# ---- feeds ----


def cmd_feeds(settings: Settings, args: argparse.Namespace) -> int:
    """Add, list or remove feeds."""
    store = FeedStore(_client(settings), settings)
    if args.feeds_command == "add":
        try:
            new = store.add(args.url, args.interval)
        except InvalidURL as exc:
            raise UsageError(exc.detail) from None
        print(f"{'added' if new else 'updated'} {args.url} (every {args.interval or settings.feed_interval}s)")
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


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    """Poll every feed now; with --wait, return when every article it caused has finished."""
    client = _client(settings)
    jobs = Jobs(client)
    urls = FeedStore(client, settings).urls()
    if not urls:
        print("no feeds to poll (add one with `ingest feeds add URL`)", file=sys.stderr)
        return EXIT_OK
    dispatcher = _dispatcher(settings)
    run_id = jobs.new_run("poll")
    jobs.add_run_feeds(run_id, urls)
    for url in urls:
        dispatcher.send_feed_poll(url, run_id)
    if not args.wait:
        print(f"polling {len(urls)} feeds (run {run_id})")
        return EXIT_OK
    progress = jobs.wait(run_id, args.timeout)
    summary = report.run_summary(progress)
    if args.json:
        _print_json(summary)
    else:
        print(report.format_summary(summary))
    if not progress.finished:
        print(f"ingest: timed out after {args.timeout}s with work still pending", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_enqueue(settings: Settings, args: argparse.Namespace) -> int:
    """Enqueue URLs by hand; with --wait, print each URL's outcome."""
    try:
        urls = [validate_url(u) for u in args.urls]  # all or nothing: one bad URL enqueues none
    except InvalidURL as exc:
        raise UsageError(exc.detail) from None
    client = _client(settings)
    jobs = Jobs(client)
    dispatcher = _dispatcher(settings)
    run_id = jobs.new_run("enqueue")
    results = [jobs.enqueue(dispatcher, u, via="manual", run_id=run_id) for u in urls]
    if args.wait:
        progress = jobs.wait(run_id, args.timeout)
        rows = [report.job_outcome(r.url, jobs.job(r.job_id), already_seen=r.status == "done") for r in results]
    else:
        rows = [{"url": r.url, "job_id": r.job_id, "status": "queued" if r.is_new else "already_seen"} for r in results]
        progress = None
    for row in rows:
        if args.json:
            _print_json(row)
        else:
            print(report.format_outcome(row))
    if progress is not None and not progress.finished:
        print(f"ingest: timed out after {args.timeout}s with work still pending", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


# ---- reading ----


def _stream(name: str) -> str:
    try:
        return keys.stream_for(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_items(settings: Settings, args: argparse.Namespace) -> int:
    """Show the latest items of a stream without consuming them."""
    entries = latest(_client(settings), _stream(args.stream), args.count)
    for e in entries:
        if args.json:
            _print_json(e.data)
        else:
            print(report.format_item(e))
    return EXIT_OK


def cmd_consume(settings: Settings, args: argparse.Namespace) -> int:
    """Read as a consumer group member, print JSON lines, ack after printing."""
    consumer_name = args.consumer or f"{socket.gethostname()}-{os.getpid()}"
    consumer = Consumer(_client(settings), _stream(args.stream), args.group, consumer_name, args.min_idle)
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


def cmd_storyline(settings: Settings, args: argparse.Namespace) -> int:
    """Storyline tools: `eval` scores a labelled JSONL file per language, with every error explained."""
    from pathlib import Path

    from ingest.evaluate import evaluate, read_rows, storyline_for
    from ingest.storyline import load_storylines

    path = Path(args.file)
    rows = read_rows(path)
    storyline = storyline_for(path, load_storylines(settings.storylines_path), args.storyline)
    result = evaluate(storyline, rows, str(path), ignore_dates=args.ignore_dates)
    if args.json:
        _print_json(result.as_dict())
    else:
        print(result.format())
    return EXIT_OK


def cmd_stats(settings: Settings, args: argparse.Namespace) -> int:
    """Counters, queue depths and feed health."""
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
    fadd.add_argument("--interval", type=_positive_int, help="seconds between polls")
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
    _storyline_parser(sub)
    return p


def _storyline_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sl = sub.add_parser("storyline", help="storyline tools")
    slsub = sl.add_subparsers(dest="storyline_command", required=True, metavar="ACTION")
    sev = slsub.add_parser(
        "eval", help="score a labelled JSONL file: precision, recall, F1 per language, every error explained"
    )
    sev.add_argument("file", metavar="FILE.jsonl")
    sev.add_argument("--storyline", metavar="ID", help="default: the one the file is named after (ID[.set].jsonl)")
    sev.add_argument("--ignore-dates", action="store_true", help="score every article as if undated")
    sev.add_argument("--json", action="store_true")


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
    "storyline": cmd_storyline,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ingest` console script."""
    args = build_parser().parse_args(argv)  # exits 2 on bad usage, with argparse's message
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
