"""What the CLI and API report: run summaries, job outcomes, stats, and their one-line text forms."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ingest import keys
from ingest.redisutil import text_map

if TYPE_CHECKING:  # types only: client commands import this module and must start fast
    import redis

    from ingest.consume import Entry
    from ingest.feeds import FeedInfo
    from ingest.jobs import RunProgress


def run_summary(progress: RunProgress) -> dict[str, Any]:
    """Counts of a run: new, duplicates, failed, already seen, per storyline, feeds."""
    c = progress.counters
    storylines = {k.split(":", 1)[1]: int(v) for k, v in c.items() if k.startswith("storyline:")}
    return {
        "run": progress.run_id,
        "finished": progress.finished,
        "new": progress.count("article"),
        "duplicates": progress.count("duplicate"),
        "failed": progress.count("deadletter"),
        "already_seen": int(c.get("already_seen", 0)),
        "pending": progress.pending,
        "storylines": storylines,
        "feeds": {k[len("feeds_") :]: int(v) for k, v in c.items() if k.startswith("feeds_")},
        "feeds_pending": progress.feeds_left,
        "entries_skipped": {k[len("skipped:") :]: int(v) for k, v in c.items() if k.startswith("skipped:")},
    }


def run_state(progress: RunProgress) -> dict[str, Any]:
    """A run as `ingest runs show` and GET /v1/runs/{id} give it: summary, then every URL's outcome."""
    state = run_summary(progress)
    state["kind"] = progress.counters.get("kind") or None
    created = progress.counters.get("created")
    state["created"] = float(created) if created else None
    state["jobs"] = [job_outcome(j.get("url", ""), j) for j in progress.jobs.values()] + [
        job_outcome(j.get("url", ""), j, already_seen=True) for j in progress.seen.values()
    ]
    return state


def format_summary(s: dict[str, Any]) -> str:
    """Human form of a run summary."""
    lines = [
        f"new={s['new']} duplicates={s['duplicates']} failed={s['failed']} already_seen={s['already_seen']}"
        + (f" pending={s['pending']}" if s["pending"] else ""),
    ]
    if s["feeds"]:
        lines.append("feeds: " + " ".join(f"{k}={v}" for k, v in sorted(s["feeds"].items())))
    if s.get("entries_skipped"):
        lines.append("entries not enqueued: " + " ".join(f"{k}={v}" for k, v in sorted(s["entries_skipped"].items())))
    for sid, n in sorted(s["storylines"].items()):
        lines.append(f"storyline {sid}: {n} new")
    return "\n".join(lines)


def job_outcome(url: str, job: dict[str, str], already_seen: bool = False) -> dict[str, Any]:
    """The outcome of one job, as `enqueue --wait` prints it."""
    row: dict[str, Any] = {
        "url": url,
        "outcome": job.get("outcome") or job.get("state") or "unknown",
        "already_seen": already_seen,
        "item_id": job.get("item_id") or None,
    }
    if job.get("state") != "done":
        row["outcome"] = "pending"
    if job.get("storylines"):
        row["storylines"] = job["storylines"].split(",")
    claim = json.loads(job["claim"]) if job.get("claim") else {}
    if claim.get("dup"):
        row["duplicate"] = claim["dup"]
    if job.get("outcome") == "deadletter":
        row["reason"], row["detail"] = job.get("reason"), job.get("detail")
    return row


def format_outcome(row: dict[str, Any]) -> str:
    """One line per URL: outcome and what explains it."""
    parts = [row.get("status") or row["outcome"]]
    if row.get("item_id"):
        parts.append(row["item_id"])
    if row.get("duplicate"):
        d = row["duplicate"]
        parts.append(f"of {d['of']} ({d['method']} {float(d['score']):.2f})")
    if row.get("storylines"):
        parts.append("storylines=" + ",".join(row["storylines"]))
    if row.get("reason"):
        parts.append(f"{row['reason']}: {row.get('detail') or ''}".strip())
    if row.get("already_seen"):
        parts.append("(already seen)")
    return f"{row['url']}  " + "  ".join(parts)


def format_item(e: Entry) -> str:
    """One line per stream entry."""
    d = e.data
    if "reason" in d and "text" not in d:
        return f"{e.entry_id}  {d.get('reason')}  {d.get('url')}  {d.get('detail', '')}"
    on = [s["id"] for s in d.get("storylines", []) if s.get("on_storyline")]
    dup = d.get("duplicate")
    tag = f" [dup of {dup['of']} {dup['method']}]" if dup else ""
    return f"{e.entry_id}  {d.get('id')}  {','.join(on) or '-'}{tag}  {(d.get('title') or '')[:80]}  {d.get('url')}"


def _status(r: dict[str, str]) -> str:
    if r.get("broken"):
        return "broken"
    if r.get("last_status"):
        return r["last_status"]
    return "polling" if r.get("poll_started") else "never_polled"


def feed_health(info: FeedInfo) -> dict[str, Any]:
    """A feed's schedule and health: status (ok, not_modified, partial, error, broken, polling...)."""
    r = info.record
    last_entries = json.loads(r["last_entries"]) if r.get("last_entries") else None
    return {
        "url": info.url,
        "title": r.get("title") or None,
        "interval": info.interval,
        "interval_mode": "fixed" if r.get("interval") else "adaptive",
        "next_poll_in_s": round(info.next_due - time.time(), 1) if info.next_due else None,
        "next_poll_at": (
            datetime.fromtimestamp(info.next_due, UTC).isoformat(timespec="seconds") if info.next_due else None
        ),
        "next_poll_reason": r.get("next_reason") or None,
        "status": _status(r),
        "broken": bool(r.get("broken")),
        "consecutive_failures": int(r.get("failures", 0)),
        "errors_total": int(r.get("errors_total", 0)),
        "polls": int(r.get("polls", 0)),
        "entries_new": int(r.get("entries_new", 0)),
        "entries_skipped": {k[len("skipped:") :]: int(v) for k, v in r.items() if k.startswith("skipped:")},
        "last_poll_entries": last_entries,
        "backlog": int(r.get("backlog") or 0),
        "polling_since": (
            float(r["poll_started"])
            if r.get("poll_started") and float(r["poll_started"]) > float(r.get("last_polled") or 0)
            else None
        ),
        "last_ok": float(r["last_ok"]) if r.get("last_ok") else None,
        "last_error": r.get("last_error") or None,
        "last_problem": r.get("last_problem") or None,
    }


def feeds_table(infos: list[FeedInfo]) -> str:
    """Human table of feeds."""
    rows = []
    for info in infos:
        h = feed_health(info)
        err = f"  last_error={h['last_error']}" if h["consecutive_failures"] else ""
        skipped = sum(h["entries_skipped"].values())
        rows.append(
            f"{h['status']:<13} every {h['interval']}s ({h['interval_mode']})  new={h['entries_new']:<5} "
            + (f"skipped={skipped} " if skipped else "")
            + (f"backlog={h['backlog']} " if h["backlog"] else "")
            + f"failures={h['consecutive_failures']}  next={h['next_poll_at']} ({h['next_poll_reason'] or 'due'})"
            + f"  {info.url}{err}"
        )
    return "\n".join(rows)


def _hash(client: redis.Redis, key: str) -> dict[str, int]:
    return {k: int(v) for k, v in text_map(client.hgetall(key)).items()}


def stats(client: redis.Redis, feeds: list[FeedInfo]) -> dict[str, Any]:
    """Counters, queue depths, stream lengths and feed health."""
    counters = _hash(client, keys.STATS)
    reasons = {k[len("reason:") :]: v for k, v in counters.items() if k.startswith("reason:")}
    counters = {k: v for k, v in counters.items() if not k.startswith("reason:")}
    queues = {q: client.llen(keys.CELERY_PREFIX + q) for q in (keys.QUEUE_FEEDS, keys.QUEUE_ARTICLES)}
    streams = {
        name: client.xlen(key)
        for name, key in (("articles", keys.ARTICLES), ("duplicates", keys.DUPLICATES), ("deadletter", keys.DEADLETTER))
    }
    storylines = _hash(client, keys.STATS_STORYLINE)
    for sid in storylines:
        streams[f"storyline:{sid}"] = client.xlen(keys.storyline_stream(sid))
    health = [feed_health(f) for f in feeds]
    return {
        "counters": counters,
        "deadletter_reasons": reasons,
        "storylines": storylines,
        "queues": {
            **queues,
            "unacked": client.hlen(keys.CELERY_PREFIX + "unacked"),
            "jobs_in_flight": client.zcard(keys.INFLIGHT),
        },
        "streams": streams,
        "feeds": {
            "total": len(health),
            "failing": sum(1 for h in health if h["consecutive_failures"]),
            "broken": sum(1 for h in health if h["broken"]),
            "list": health,
        },
    }


def format_stats(s: dict[str, Any]) -> str:
    """Human form of stats."""

    def kv(d: dict[str, Any]) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(d.items())) or "-"

    lines = [
        f"counters:   {kv(s['counters'])}",
        f"queues:     {kv(s['queues'])}",
        f"streams:    {kv(s['streams'])}",
        f"storylines: {kv(s['storylines'])}",
        f"deadletter: {kv(s['deadletter_reasons'])}",
        f"feeds:      total={s['feeds']['total']} failing={s['feeds']['failing']} broken={s['feeds']['broken']}",
    ]
    for h in s["feeds"]["list"]:
        if h["consecutive_failures"]:
            state = "broken" if h["broken"] else "failing"
            lines.append(f"  {state} x{h['consecutive_failures']}: {h['url']}  {h['last_error']}")
    return "\n".join(lines)


def format_explanation(shown: dict[str, Any]) -> str:
    """Human form of `ingest show`: the item, then why."""
    d = shown["item"]
    lines = [f"{d.get('id')}  in {shown['stream']} (entry {shown['entry_id']})"]
    for k in ("title", "url", "canonical_url", "language", "published_at", "fetched_at", "failed_at"):
        if d.get(k):
            lines.append(f"  {k}: {d[k]}")
    if "deadletter" in shown:
        dl = shown["deadletter"]
        lines.append(f"dead letter: {dl['reason']}: {dl['detail']}")
        lines.append(
            f"  retried by run {dl['retried_by_run']}"
            if dl["retried_by_run"]
            else f"  retry it with `ingest retry --entry {shown['entry_id']}`"
        )
        return "\n".join(lines)
    for s in shown.get("storylines", []):
        verdict = "ON" if s["on_storyline"] else "off"
        cmp = ">=" if s["raw"] >= s["threshold"] else "<"
        lines.append(
            f"storyline {s['id']}: {verdict}  score {s['score']:.3f}  "
            f"raw {s['raw']:.2f} {cmp} threshold {s['threshold']}"
        )
        for c in s["contributions"]:
            lines.append(f"  {c['weight']:+7.3f}  {c['rule']}")
        for e in s["evidence"]:
            lines.append(f"  evidence: {e}")
        pub = s.get("published")
        if pub and pub.get("on_storyline") != s["on_storyline"]:
            lines.append(
                f"  (published as {'on' if pub.get('on_storyline') else 'off'}, definition {pub.get('version')})"
            )
    dup = shown.get("duplicate")
    if dup:
        lines.append(f"duplicate of {dup['of']} ({dup['method']}, score {float(dup['score']):.2f})")
        orig = dup.get("original")
        if orig:
            lines.append(f"  original: {orig.get('title') or '(no title)'}  {orig.get('url') or orig['id']}")
        else:
            lines.append("  original: no longer in the streams")
        if dup.get("shared_passage"):
            lines.append(f"  shared passage: {dup['shared_passage']}")
    return "\n".join(lines)
