"""Retrying dead letters: send dead-lettered URLs through the pipeline again, as a run of their own.

The deadletter entries stay where they are (a stream is a log); each retried URL gets a new job
whose id carries the retry's run id, so the URL's 90-day "already seen" memory does not stop it,
for that URL only. Each deadletter entry is retried at most once (unless asked again): a URL that
fails again has a new deadletter entry, which can be retried in turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis

from ingest import keys
from ingest.errors import InvalidURL
from ingest.jobs import Dispatcher, Jobs
from ingest.models import Via
from ingest.redisutil import text
from ingest.urls import canonicalize, validate_url

_BATCH = 500


class RetryError(ValueError):
    """A retry request that names something that does not exist or cannot be read."""


@dataclass
class RetryResult:
    """What a retry did."""

    run_id: str | None  # None when nothing was enqueued (or on a dry run)
    matched: int = 0  # deadletter entries that passed the filters
    enqueued: int = 0  # URLs given a new job
    already_retried: int = 0  # matching entries an earlier retry took (pass again=True to retry them)
    invalid: int = 0  # matching entries whose URL cannot be fetched at all (e.g. a broken feed link)
    urls: list[str] = field(default_factory=list)  # the URLs enqueued (or that would be, on a dry run)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def parse_since(value: str, now: datetime | None = None) -> float:
    """A point in time as unix seconds: ISO 8601 (date or date and time, UTC unless given) or an age: 30m, 2h, 1d."""
    value = value.strip()
    now = now or datetime.now(UTC)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    try:
        if len(value) > 1 and value[-1] in units and re.fullmatch(r"[0-9]+(\.[0-9]+)?", value[:-1]):
            return max(0.0, (now - timedelta(seconds=float(value[:-1]) * units[value[-1]])).timestamp())
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return max(0.0, (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp())
    except (ValueError, OverflowError):
        raise RetryError(
            f"cannot read time {value!r}: give an ISO 8601 date or time (2025-03-18, 2025-03-18T09:00) "
            "or an age (30m, 2h, 1d)"
        ) from None


def _entries(client: redis.Redis, start: str, end: str = "+") -> Iterator[tuple[str, dict[str, Any]]]:
    """Deadletter entries from start to end, oldest first, read in batches."""
    while True:
        rows = cast(list[Any], client.xrange(keys.DEADLETTER, start, end, count=_BATCH))
        for eid, fields in rows:
            try:
                data = json.loads(fields.get(b"data", fields.get("data", b"{}")))
            except ValueError:
                continue
            if isinstance(data, dict):
                yield text(eid), data
        if len(rows) < _BATCH:
            return
        start = "(" + text(rows[-1][0])


def _canonical(url: str) -> str:
    try:
        return canonicalize(validate_url(url))
    except InvalidURL:
        return url.strip()


def _matching(
    client: redis.Redis, reason: str | None, since: float | None, urls: Sequence[str], entry_id: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """Deadletter entries that pass every filter; RetryError when a named URL or entry has none."""
    wanted = {_canonical(u): u for u in urls}
    if entry_id is not None:
        start = end = entry_id
    else:
        start, end = (f"{int(since * 1000)}-0" if since is not None else "-"), "+"
    try:
        scanned = list(_entries(client, start, end))
    except redis.ResponseError:
        raise RetryError(f"not a stream entry id: {entry_id!r} (ids look like 1742284800000-0)") from None
    if entry_id is not None and not scanned:
        raise RetryError(f"no dead letter with entry id {entry_id}")
    matches: list[tuple[str, dict[str, Any]]] = []
    found: set[str] = set()
    for eid, data in scanned:
        if reason is not None and data.get("reason") != reason:
            continue
        if wanted:
            canonical = _canonical(str(data.get("url") or ""))
            if canonical not in wanted:
                continue
            found.add(canonical)
        matches.append((eid, data))
    missing = [u for c, u in wanted.items() if c not in found]
    if missing:
        raise RetryError(f"no dead letter for {', '.join(missing)}")
    return matches


def retry(
    client: redis.Redis,
    dispatcher: Dispatcher,
    *,
    reason: str | None = None,
    since: float | None = None,
    urls: Sequence[str] = (),
    entry_id: str | None = None,
    again: bool = False,
    dry_run: bool = False,
) -> RetryResult:
    """Re-enqueue the dead letters that match every filter given (none: all of them); the entries stay.

    RetryError when a named URL or entry id has no dead letter: then nothing is enqueued.
    """
    matches = _matching(client, reason, since, urls, entry_id)
    result = RetryResult(run_id=None, matched=len(matches))
    taken = client.hmget(keys.DEADLETTER_RETRIED, [eid for eid, _ in matches]) if matches else []
    todo: list[tuple[str, str, Via, str | None]] = []
    queued: set[str] = set()
    twins: list[str] = []  # entries of a URL already in todo: retried by the same job
    for (eid, data), prior in zip(matches, taken, strict=True):
        if prior is not None and not again:
            result.already_retried += 1
            continue
        try:
            url = validate_url(str(data.get("url") or ""))
        except InvalidURL:
            result.invalid += 1
            continue
        canonical = canonicalize(url)
        if canonical in queued:  # the same URL dead-lettered twice: one new job
            twins.append(eid)
            continue
        queued.add(canonical)
        source = data.get("source") or {}
        via: Via = "feed" if source.get("via") == "feed" else "manual"
        todo.append((eid, url, via, source.get("feed_url") or None))
    result.urls = [url for _, url, _, _ in todo]
    if dry_run or not todo:
        return result

    jobs = Jobs(client)
    run_id = jobs.new_run("retry")
    result.run_id = run_id
    for eid, url, via, feed_url in todo:
        # A version of its own makes a new job: the URL's earlier job (done, remembered for
        # seen_ttl_days) would otherwise answer "already seen".
        jobs.enqueue(dispatcher, url, via=via, feed_url=feed_url, run_id=run_id, version=f"retry:{run_id}")
        client.hset(keys.DEADLETTER_RETRIED, eid, run_id)
        result.enqueued += 1
    if twins:
        client.hset(keys.DEADLETTER_RETRIED, mapping=dict.fromkeys(twins, run_id))
    return result


def refetch(client: redis.Redis, dispatcher: Dispatcher, urls: Sequence[str], run_id: str) -> list[str]:
    """Enqueue URLs again even if seen before (a changed page becomes a revision); returns their job ids."""
    jobs = Jobs(client)
    return [
        jobs.enqueue(dispatcher, url, via="manual", run_id=run_id, version=f"refetch:{run_id}").job_id for url in urls
    ]
