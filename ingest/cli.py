"""The `ingest` command line (public contract: DESIGN.md). Exit codes: 0 ok, 2 bad usage or input, 1 other."""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
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
    from ingest.feeds import FeedStore
    from ingest.jobs import Dispatcher, RunProgress

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or bad input: exit code 2 with a one-line message."""


def _client(settings: Settings) -> redis.Redis:
    from ingest.redisconn import connect

    return connect(settings)


def _celery(settings: Settings) -> Celery:
    # Celery is imported here, in the composition root's commands, never by the ingest library.
    from ingest.redisconn import url_of
    from workers.app import configure

    return configure(settings, url_of(settings))


def _dispatcher(client: redis.Redis) -> Dispatcher:
    # Commands only send tasks: Celery-format messages written to Redis without loading Celery.
    from workers.sender import RedisDispatcher

    return RedisDispatcher(client)


def _setup_logging(settings: Settings) -> None:
    from ingest import logs

    logs.setup(settings.log_level, settings.log_format)


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
    _setup_logging(settings)
    app = _celery(settings)
    concurrency = args.concurrency or settings.worker_concurrency or os.cpu_count() or 1
    argv = [
        "--quiet",  # no banner: the service's log lines are its only output
        "worker",
        f"--loglevel={settings.log_level}",
        f"--queues={keys.QUEUE_FEEDS},{keys.QUEUE_ARTICLES}",
        f"--concurrency={concurrency}",
        f"--hostname=ingest-{os.getpid()}@{socket.gethostname()}",
        # No gossip, mingle or events: workers coordinate through Redis state, not broadcasts.
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    return _run_celery(app, argv)


def cmd_beat(settings: Settings, args: argparse.Namespace) -> int:
    """Run the scheduler: dispatch polls of due feeds, re-send stale jobs."""
    _setup_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = _celery(settings)
    return _run_celery(app, ["--quiet", "beat", f"--loglevel={settings.log_level}"])


def _run_celery(app: Celery, argv: list[str]) -> int:
    """Run a Celery command and return its exit code; non-zero if it stopped without being asked to.

    app.worker_main and app.start drop the code Celery exits with, so a worker that stopped on an
    "Unrecoverable error" used to exit 0 and neither `ingest up` nor a restart policy saw it die.
    """
    from celery.bin.celery import celery as celery_command
    from celery.signals import worker_shutting_down

    asked = False

    def on_shutdown_request(**_: Any) -> None:
        nonlocal asked
        asked = True

    worker_shutting_down.connect(on_shutdown_request, weak=False)
    celery_command.params[0].default = app
    try:
        code = celery_command.main(args=argv, standalone_mode=False)
    except SystemExit as exc:  # beat leaves through SystemExit on SIGTERM
        code = exc.code
    finally:
        celery_command.params[0].default = None
    code = code if isinstance(code, int) else EXIT_OK if code is None else EXIT_FAILURE
    if code == EXIT_OK and "worker" in argv and not asked:
        print("ingest: the worker stopped without being asked to", file=sys.stderr)
        return EXIT_FAILURE
    return code


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the HTTP API."""
    import uvicorn

    from ingest.api import create_app

    _setup_logging(settings)
    client = _client(settings)
    app = create_app(settings, client, _dispatcher(client))
    uvicorn.run(
        app,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's lines go through the service's one format
        access_log=settings.log_level == "DEBUG",  # a line per request only when asked for
    )
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
        if args.interval or not settings.feed_adaptive:
            every = f"every {args.interval or settings.feed_interval}s"
        else:
            every = (
                f"adaptive: by its entry rate within {settings.feed_min_interval}-{settings.feed_max_interval}s,"
                f" every {settings.feed_interval}s while its entries carry no dates"
            )
        to_add = [url] if args.no_check else _check_feed(settings, client, url, args.discover)
        for feed_url in to_add:
            try:
                new = store.add(feed_url, args.interval)
            except InvalidURL as exc:
                raise UsageError(exc.detail) from None
            if new:
                # Whoever polls it first (the scheduler, at once), the next `poll --wait` counts that work.
                Jobs(client).open_first_poll(feed_url)
            print(f"{'added' if new else 'updated'} {feed_url} ({every})")
    elif args.feeds_command == "import":
        _import_opml(store, args.file)
    elif args.feeds_command == "export":
        from ingest.feeds import opml

        listed = [opml.Outline(f.url, f.record.get("title") or None) for f in store.all()]
        sys.stdout.write(opml.write(listed))
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


def _import_opml(store: FeedStore, path: str) -> None:
    """Add every feed of an OPML file (all or nothing: one unusable URL imports none)."""
    from ingest.feeds import opml

    try:
        with open(path, "rb") as fh:
            data = fh.read(50 * 1024 * 1024)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        outlines = opml.read(data, path)
    except opml.OPMLError as exc:
        raise UsageError(str(exc)) from None
    added = sum(store.add(o.url, title=o.title) for o in outlines)
    print(f"imported {len(outlines)} feeds from {path} ({added} new, {len(outlines) - added} already there)")


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
    run_id = jobs.new_run("poll")
    jobs.add_run_feeds(run_id, urls)
    dispatcher.send_feed_polls(urls, run_id)  # one round trip; the workers start while this goes on
    # First polls `feeds add` sent: their work counts as this poll's (they may have run already).
    adopted = jobs.adopt_first_polls()
    if not args.wait:
        print(f"polling {len(urls)} feeds (run {run_id})")
        return EXIT_OK
    progress = _wait(client, run_id, args, also=adopted)
    summary = report.run_summary(progress)
    if args.json:
        _print_json(summary)
    else:
        print(report.format_summary(summary))
    if not progress.finished:
        return _timed_out(progress, args)
    failed = int(summary["feeds"].get("error", 0))
    if failed:
        store = FeedStore(client, settings)
        errors = [
            f"{f.url} ({f.record.get('last_error')})" for f in store.all() if f.record.get("last_status") == "error"
        ]
        detail = "; ".join(errors[:3]) + (f" and {len(errors) - 3} more" if len(errors) > 3 else "")
        print(f"ingest: {failed} of {len(urls)} feed polls failed: {detail}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


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


def _stream(name: str, client: redis.Redis, settings: Settings) -> str:
    from ingest.consumer import UnknownStream, stream_key

    try:
        return stream_key(name, client, settings)
    except UnknownStream as exc:
        raise UsageError(str(exc)) from None


def cmd_items(settings: Settings, args: argparse.Namespace) -> int:
    """Show the latest items of a stream without consuming them."""
    from ingest import report
    from ingest.consume import latest

    client = _client(settings)
    entries = latest(client, _stream(args.stream, client, settings), args.count)
    for e in entries:
        if args.json:
            _print_json(e.data)
        else:
            print(report.format_item(e))
    return EXIT_OK


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def cmd_consume(settings: Settings, args: argparse.Namespace) -> int:
    """Read as a consumer group member, print JSON lines, ack after printing."""
    from ingest.consume import Consumer

    consumer_name = args.consumer or f"{socket.gethostname()}-{os.getpid()}"
    from ingest.redisconn import MAX_BLOCK_MS, connect_blocking

    # The socket waits as long as one blocking read (a long --block is cut into reads of MAX_BLOCK_MS).
    client = connect_blocking(settings, MAX_BLOCK_MS if args.block is not None else 0)
    stream = _stream(args.stream, client, settings)

    def say(msg: str) -> None:
        print(f"ingest consume: {msg}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, systemd and docker stop: same clean exit as Ctrl-C
    try:
        # --block 0 waits forever, so it also waits out a Redis restart however long it takes.
        consumer = Consumer(
            client,
            stream,
            args.group,
            consumer_name,
            args.min_idle,
            reconnect_for=None if args.block == 0 else 60.0,
            on_reconnect=say,
        )
        for batch in consumer.batches(args.count, args.block):
            for entry in batch:
                print(json.dumps(entry.data, ensure_ascii=False))
            sys.stdout.flush()  # printed means delivered: ack only after the lines are out
            consumer.ack(batch)
    except KeyboardInterrupt:
        return EXIT_OK  # what was printed is acked; what was not stays pending for this consumer name
    return EXIT_OK


def cmd_redis_url(settings: Settings, args: argparse.Namespace) -> int:
    """Print the Redis URL the service uses, for redis-cli -u and other clients."""
    from ingest.redisconn import url_of

    print(url_of(settings))
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


# Redis takes counts and BLOCK milliseconds as signed 64-bit numbers; nothing sensible is near that.
MAX_INT_ARG = 2**31 - 1


def _positive_int(value: str, limit: int = MAX_INT_ARG) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    if n > limit:
        raise argparse.ArgumentTypeError(f"must be at most {limit}: {value!r}")
    return n


def _non_negative_int(value: str) -> int:
    return 0 if value.strip() == "0" else _positive_int(value)


def _port(value: str) -> int:
    return _positive_int(value, 65535)


class _Formatter(argparse.HelpFormatter):
    """Shows each option's default after its text (defaults that come from settings say so in the text)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.default not in (None, False, argparse.SUPPRESS)
            and "%(default)" not in text
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def _sub(sub: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)
    return parser


def _add_run_parsers(sub: Any) -> None:
    """Subcommands that follow up on work: retry, runs, show."""
    rty = _sub(sub, "retry", "re-enqueue dead-lettered URLs (the deadletter entries stay)")
    rty.add_argument("urls", nargs="*", metavar="URL", help="only these URLs (default: every dead letter)")
    rty.add_argument("--reason", help="only dead letters with this reason, e.g. http_404 (default: any)")
    rty.add_argument(
        "--since",
        metavar="T",
        help="only dead letters since T: 2025-03-18, 2025-03-18T09:00, 2h, 1d (default: any time)",
    )
    rty.add_argument(
        "--entry",
        metavar="ID",
        help="only this deadletter entry (stream entry id; default: every entry matching the other filters)",
    )
    rty.add_argument("--again", action="store_true", help="also entries an earlier retry took (default: skip)")
    rty.add_argument("--dry-run", action="store_true", help="list what would be retried, enqueue nothing")
    rty.add_argument("--wait", action="store_true", help="wait for the outcomes and print them")
    rty.add_argument("--timeout", type=_positive_int, default=300, metavar="S", help="seconds --wait waits at most")
    rty.add_argument("--json", action="store_true", help="JSON output")

    runs = _sub(sub, "runs", "the state of a poll, enqueue or retry run")
    rsub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    rshow = _sub(rsub, "show", "counts and every URL's outcome, already-seen ones included")
    rshow.add_argument("run_id", metavar="ID")
    rshow.add_argument("--json", action="store_true", help="JSON output")

    show = _sub(sub, "show", "one item by id or URL, and why it was tagged or judged a duplicate")
    show.add_argument("ref", metavar="ID|URL")
    show.add_argument("--json", action="store_true", help="JSON output")


def _add_feed_parsers(sub: Any) -> None:
    """Subcommands that manage feeds."""
    feeds = _sub(sub, "feeds", "manage feeds (stored in Redis)")
    fsub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    fadd = _sub(fsub, "add", "add a feed, or change its interval")
    fadd.add_argument("url", help="URL of an RSS, Atom or JSON feed, or a news sitemap")
    fadd.add_argument(
        "--interval",
        type=_positive_int,
        metavar="SECONDS",
        help="seconds between polls (default: INGEST_FEED_INTERVAL, 300)",
    )
    fadd.add_argument(
        "--no-check", action="store_true", help="add without fetching it first (a feed that is down for now)"
    )
    fadd.add_argument(
        "--discover", action="store_true", help="URL is a web page: add the feeds it offers (default: refuse pages)"
    )
    flist = _sub(fsub, "list", "list feeds and their health")
    flist.add_argument("--json", action="store_true", help="one JSON object per feed")
    frm = _sub(fsub, "remove", "remove a feed")
    frm.add_argument("url", help="URL of the feed, as added")
    fimp = _sub(fsub, "import", "add the feeds of an OPML file")
    fimp.add_argument("file", metavar="FILE.opml", help="OPML file, as every feed reader exports")
    _sub(fsub, "export", "print the feed list as OPML")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(
        prog="ingest", description="News ingestion with dedup and storyline tagging.", formatter_class=_Formatter
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cpus = "INGEST_WORKER_CONCURRENCY, else the number of CPUs"

    up = _sub(sub, "up", "run everything in the foreground (Redis, worker, beat, API); Ctrl-C stops it")
    up.add_argument(
        "--concurrency", type=lambda v: _positive_int(v, 1024), metavar="N", help=f"worker processes (default: {cpus})"
    )
    w = _sub(sub, "worker", "run a Celery worker (feed polls first, then articles)")
    w.add_argument(
        "--concurrency", type=lambda v: _positive_int(v, 1024), metavar="N", help=f"worker processes (default: {cpus})"
    )
    _sub(sub, "beat", "run the scheduler: polls due feeds, re-sends jobs whose message was lost")
    api = _sub(sub, "api", "serve the HTTP API")
    api.add_argument("--host", help="address to listen on (default: INGEST_API_HOST, 127.0.0.1)")
    api.add_argument("--port", type=_port, help="port to listen on (default: INGEST_API_PORT, 8000)")

    _add_feed_parsers(sub)

    poll = _sub(sub, "poll", "poll every feed now")
    poll.add_argument("--wait", action="store_true", help="return when every article the poll caused has finished")
    poll.add_argument("--timeout", type=_positive_int, default=600, metavar="S", help="seconds --wait waits at most")
    poll.add_argument("--json", action="store_true", help="print the summary as JSON")

    enq = _sub(sub, "enqueue", "enqueue article URLs by hand")
    enq.add_argument("urls", nargs="+", metavar="URL", help="absolute http(s) URLs of articles")
    enq.add_argument(
        "--refetch", action="store_true", help="fetch again even if seen before (a changed page becomes a revision)"
    )
    enq.add_argument("--wait", action="store_true", help="wait for the outcomes and print one line per URL")
    enq.add_argument("--timeout", type=_positive_int, default=300, metavar="S", help="seconds --wait waits at most")
    enq.add_argument("--json", action="store_true", help="print one JSON object per URL")

    streams = "articles, duplicates, deadletter or storyline:ID"
    items = _sub(sub, "items", "show the latest items without consuming them")
    items.add_argument("--stream", default="articles", help=f"stream to read: {streams}")
    items.add_argument("--count", type=_positive_int, default=10, metavar="N", help="how many of the latest items")
    items.add_argument("--json", action="store_true", help="print each item's JSON document")

    con = _sub(sub, "consume", "read as a consumer group; prints JSON lines, acks after printing")
    con.add_argument("--group", required=True, help="consumer group (created at the start of the stream if new)")
    con.add_argument("--consumer", help="name in the group (default: HOSTNAME-PID)")
    con.add_argument("--stream", default="articles", help=f"stream to read: {streams}")
    con.add_argument("--count", type=_positive_int, metavar="N", help="stop after N items (default: no limit)")
    con.add_argument(
        "--block",
        type=_non_negative_int,
        metavar="MS",
        help="milliseconds to wait for new entries, 0: forever (default: stop when caught up)",
    )
    con.add_argument(
        "--min-idle",
        type=_positive_int,
        default=60_000,
        metavar="MS",
        help="reclaim entries another consumer left unacked this many milliseconds",
    )

    rt = _sub(sub, "retag", "re-score stored articles after a storyline definition changed")
    rt.add_argument("--storyline", required=True, metavar="ID", help="id of the storyline to re-score")
    rt.add_argument("--json", action="store_true", help="print the report as JSON")

    st = _sub(sub, "stats", "counters, queue depths, feed health")
    st.add_argument("--json", action="store_true", help="print the statistics as JSON")

    _sub(sub, "redis-url", "print the Redis URL the service uses (for redis-cli -u and other clients)")

    _add_run_parsers(sub)
    _storyline_parser(sub)
    return p


def _storyline_parser(sub: Any) -> None:
    """Storyline tools."""
    sl = _sub(sub, "storyline", "storyline tools")
    slsub = sl.add_subparsers(dest="storyline_command", required=True, metavar="ACTION")
    sev = _sub(slsub, "eval", "score a labelled JSONL file: precision, recall, F1 per language, every error explained")
    sev.add_argument("file", metavar="FILE.jsonl", help="one labelled article per line (fixture or corpus format)")
    sev.add_argument("--storyline", metavar="ID", help="default: the one the file is named after (ID[.set].jsonl)")
    sev.add_argument("--ignore-dates", action="store_true", help="score every article as if undated")
    sev.add_argument("--json", action="store_true", help="print the result as JSON")


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
    "redis-url": cmd_redis_url,
    "retry": cmd_retry,
    "runs": cmd_runs,
    "show": cmd_show,
    "storyline": cmd_storyline,
}


def entry() -> None:
    """The `ingest` console script: main() with the interpreter's garbage collector kept out of the way."""
    # Start-up allocates hundreds of thousands of objects (redis-py, pydantic) that live until
    # exit: collecting them while importing, and again while tearing down, is wasted work (about
    # 50 ms of a 270 ms client command). Cyclic garbage of the command itself is still collected.
    gc.disable()
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ingest` console script."""
    args = build_parser().parse_args(argv)  # exits 2 on bad usage, with argparse's message
    import redis

    from ingest.config import load_settings

    try:
        settings = load_settings()
        gc.enable()  # off through start-up when run as a command (entry()); commands may run for days
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
