"""The storyline view (home page): articles per day by language or outlet, labels over time, the
filtered article list, and its export as CSV or JSON Lines. Reads only the indexes of indexes.py."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, StreamingResponse

from ingest import keys
from ingest.redisutil import text, text_map
from ingest.web import charts
from ingest.web.indexes import article_time, day_of, outlet_of
from ingest.web.pages import Web, web_of

router = APIRouter()
PAGE = 50
DEFAULT_DAYS = 60
MAX_DAYS = 366
MAX_DAYS_READ = 5000  # days with articles considered for the default span (about 14 years)
TEXT_SCAN_LIMIT = 2000  # a text filter reads at most this many of the newest matching articles
MENU_SIZE = 200  # languages and outlets offered in the filter menus, largest first
MAX_LABELS = 40
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


@dataclass(frozen=True)
class Filters:
    """What the article list is narrowed to."""

    label: str = ""
    lang: str = ""
    outlet: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    q: str = ""

    def facets(self) -> list[str]:
        """The facet indexes these filters select."""
        return [
            f for f, v in (("label:", self.label), ("lang:", self.lang), ("outlet:", self.outlet)) if v for f in [f + v]
        ]

    def score_range(self) -> tuple[float | str, float | str]:
        """Article-time bounds for ZRANGEBYSCORE."""
        lo: float | str = "-inf"
        hi: float | str = "+inf"
        if self.since:
            lo = dt.datetime.combine(self.since, dt.time(), dt.UTC).timestamp()
        if self.until and self.until < dt.date.max:
            hi = dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp() - 0.001
        return lo, hi

    def query(self, **extra: str) -> dict[str, str]:
        """The filters as query parameters (for links that keep them)."""
        params = {
            "label": self.label,
            "lang": self.lang,
            "outlet": self.outlet,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "q": self.q,
            **extra,
        }
        return {k: v for k, v in params.items() if v}


def _day(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name} must be a date YYYY-MM-DD") from None


def filters(
    label: Annotated[str, Query(max_length=200)] = "",
    lang: Annotated[str, Query(max_length=20)] = "",
    outlet: Annotated[str, Query(max_length=300)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
) -> Filters:
    """Filters from the query string (422 naming the bad one)."""
    f = Filters(label.strip(), lang.strip(), outlet.strip(), _day(since, "since"), _day(until, "until"), q.strip())
    if f.since and f.until and f.since > f.until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since is after until")
    return f


def known_storyline(web: Web, sid: str) -> None:
    """404 naming the storyline when it is not defined."""
    if sid not in {s.id for s in web.storylines}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no storyline {sid!r}")


def busiest_window(days: list[tuple[int, int]], width: int) -> tuple[int, int]:
    """First and last day ordinal of the span of at most `width` days holding the most articles.

    `days` are (ordinal, articles), oldest first. Undated articles are counted on the day they were
    fetched, so the newest day with articles can be today while the story happened months ago:
    the busiest span, not the newest, is what the timeline opens on.
    """
    best = (days[-1][0], days[-1][0])
    best_sum = running = lo = 0
    for ordinal, n in days:
        running += n
        while ordinal - days[lo][0] >= width:
            running -= days[lo][1]
            lo += 1
        if running >= best_sum:  # ties go to the later span
            best_sum, best = running, (days[lo][0], ordinal)
    return best


def day_range(web: Web, sid: str, f: Filters) -> tuple[list[str], tuple[str, str] | None]:
    """The days the timeline shows (the filter's range, else the busiest 60 days), and every day's span."""
    days_key = keys.web_days(sid)
    seen = cast(list[Any], web.redis.zrange(days_key, -MAX_DAYS_READ, -1, withscores=True))
    if not seen:
        return [], None
    ordinals = [int(score) for _day, score in seen]
    span = (dt.date.fromordinal(ordinals[0]).isoformat(), dt.date.fromordinal(ordinals[-1]).isoformat())
    if f.since or f.until:
        first = f.since or dt.date.fromordinal(ordinals[0])
        last = f.until or dt.date.fromordinal(ordinals[-1])
    else:
        pipe = web.redis.pipeline(transaction=False)
        for day, _score in seen:
            pipe.hget(keys.web_day(sid, text(day)), "n")
        counts = [int(n or 0) for n in pipe.execute()]
        lo, hi = busiest_window(list(zip(ordinals, counts, strict=True)), DEFAULT_DAYS)
        first, last = dt.date.fromordinal(lo), dt.date.fromordinal(hi)
    if first > last:  # a range that ends before the first article (or starts after the last)
        return [], span
    if (last - first).days >= MAX_DAYS:
        first = last - dt.timedelta(days=MAX_DAYS - 1)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)], span


def timeline(web: Web, sid: str, days: list[str], by: str) -> tuple[charts.Chart, charts.Chart, dict[str, list[str]]]:
    """The stacked per-day chart, the label strips, and the values for the filter menus.

    The series are the storyline's largest languages or outlets over all its articles (kept as
    running totals), so a day is read with one HMGET of a few fields however many outlets it has.
    """
    pipe = web.redis.pipeline(transaction=False)
    for kind, top in (("lang", MENU_SIZE), ("outlet", MENU_SIZE), ("label", MAX_LABELS)):
        pipe.zrevrange(keys.web_totals(sid, kind), 0, top - 1)
    langs, outlets, labels = ([text(x) for x in found] for found in pipe.execute())
    kind, names = ("lang", langs) if by == "language" else ("outlet", outlets)
    series = names[: charts.COLOURS - 1]
    fields = ["n", *(f"{kind}:{n}" for n in series), *(f"label:{x}" for x in labels)]
    for day in days:
        pipe.hmget(keys.web_day(sid, day), fields)
    columns: list[dict[str, int]] = []
    label_rows = {x: [0] * len(days) for x in labels}
    for i, values in enumerate(pipe.execute()):
        counts = [int(v) if v else 0 for v in values]
        col = dict(zip(series, counts[1 : 1 + len(series)], strict=True))
        rest = counts[0] - sum(col.values())
        if rest > 0:
            col["other"] = rest
        columns.append(col)
        for x, n in zip(labels, counts[1 + len(series) :], strict=True):
            label_rows[x][i] = n
    short = [d[5:] for d in days]
    menus = {"lang": langs, "outlet": outlets, "label": labels}
    return (
        charts.stacked(short, columns, by),
        charts.heat(short, {k: v for k, v in label_rows.items() if any(v)}),
        menus,
    )


def _entries(web: Web, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    pipe = web.redis.pipeline(transaction=False)
    for eid in ids:
        pipe.xrange(keys.ARTICLES, eid, eid)
    out = []
    for eid, found in zip(ids, pipe.execute(), strict=True):
        if found:  # trimmed from the stream since it was indexed
            out.append((eid, json.loads(found[0][1][b"data"])))
    return out


def _candidates(web: Web, sid: str, f: Filters, offset: int, count: int) -> list[str]:
    """Entry ids matching the indexed filters, newest first."""
    lo, hi = f.score_range()
    chosen = f.facets()
    if len(chosen) <= 1:
        key = keys.web_items(sid, chosen[0] if chosen else "")
        return [text(x) for x in web.redis.zrevrangebyscore(key, hi, lo, start=offset, num=count)]
    both = cast(list[Any], web.redis.zinter([keys.web_items(sid, c) for c in chosen], aggregate="MAX", withscores=True))
    lo_f = float(lo) if lo != "-inf" else float("-inf")
    hi_f = float(hi) if hi != "+inf" else float("inf")
    hits = sorted(((float(s), text(m)) for m, s in both if lo_f <= float(s) <= hi_f), reverse=True)
    return [m for _s, m in hits[offset : offset + count]]


def matches(data: dict[str, Any], q: str) -> bool:
    """Whether an article's title or text contains the text filter (case-insensitive)."""
    needle = q.casefold()
    return needle in (data.get("title") or "").casefold() or needle in (data.get("text") or "").casefold()


def select(
    web: Web, sid: str, f: Filters, offset: int, count: int
) -> tuple[list[tuple[str, dict[str, Any]]], bool, int]:
    """One page of matching articles, whether more follow, and how many were read for the text filter."""
    if not f.q:
        found = _entries(web, _candidates(web, sid, f, offset, count + 1))
        return found[:count], len(found) > count, 0
    out: list[tuple[str, dict[str, Any]]] = []
    skipped = scanned = 0
    batch = 200
    while scanned < TEXT_SCAN_LIMIT:
        ids = _candidates(web, sid, f, scanned, batch)
        if not ids:
            break
        scanned += len(ids)
        for eid, data in _entries(web, ids):
            if not matches(data, f.q):
                continue
            if skipped < offset:
                skipped += 1
            elif len(out) < count:
                out.append((eid, data))
            else:
                return out, True, scanned
    return out, False, scanned


def row(sid: str, eid: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the list and the CSV show of an article."""
    tag: dict[str, Any] = next((t for t in data.get("storylines", []) if t.get("id") == sid), {})
    published = data.get("published_at")
    fetched = data.get("fetched_at") or "1970-01-01T00:00:00+00:00"
    ts = article_time(dt.datetime.fromisoformat(published) if published else None, dt.datetime.fromisoformat(fetched))
    return {
        "entry_id": eid,
        "id": data.get("id", ""),
        "title": data.get("title") or "(no title)",
        "outlet": outlet_of(data.get("canonical_url") or data.get("url") or ""),
        "day": day_of(ts),
        "dated": bool(published),
        "language": data.get("language") or "und",
        "score": tag.get("score", 0.0),
        "labels": tag.get("labels", []),
        "url": data.get("canonical_url") or data.get("url") or "",
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(
    request: Request,
    f: Annotated[Filters, Depends(filters)],
    by: Annotated[str, Query(pattern="^(language|outlet)$")] = "language",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> HTMLResponse:
    """The view of the storyline with the most articles (the same filters as /storylines/{id})."""
    web = web_of(request)
    web.readable(request)
    if not web.storylines:
        return web.render(request, "storyline.html", "storyline", storyline=None, storylines=[])
    # the busiest storyline first: a young definition does not hide the one being followed
    counts = text_map(web.redis.hgetall(keys.STATS_STORYLINE))
    first = max(web.storylines, key=lambda s: int(counts.get(s.id, 0)))
    return storyline_page(request, first.id, f, by, page)


@router.get("/storylines/{sid}", response_class=HTMLResponse, include_in_schema=False)
def storyline_page(
    request: Request,
    sid: str,
    f: Annotated[Filters, Depends(filters)],
    by: Annotated[str, Query(pattern="^(language|outlet)$")] = "language",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> HTMLResponse:
    """Timeline, labels over time and the filtered article list of one storyline."""
    web = web_of(request)
    web.readable(request)
    known_storyline(web, sid)
    days, span = day_range(web, sid, f)
    bars, strips, menus = timeline(web, sid, days, by)
    found, more, scanned = select(web, sid, f, (page - 1) * PAGE, PAGE)
    total = int(web.redis.zcard(keys.web_items(sid)))
    return web.render(
        request,
        "storyline.html",
        "storyline",
        storyline=sid,
        storylines=[s.id for s in web.storylines],
        by=by,
        f=f,
        page=page,
        more=more,
        scanned=scanned,
        scan_limit=TEXT_SCAN_LIMIT,
        total=total,
        rows=[row(sid, eid, d) for eid, d in found],
        days=days,
        span=span,
        bars=bars,
        strips=strips,
        menus=menus,
    )


def _all(web: Web, sid: str, f: Filters) -> Iterator[tuple[str, dict[str, Any]]]:
    offset = 0
    while True:
        found, more, _ = select(web, sid, f, offset, 500)
        yield from found
        if not more:
            return
        offset += len(found)


CSV_COLUMNS = ("entry_id", "id", "day", "dated", "title", "outlet", "language", "score", "labels", "url")


def _csv_cell(value: object) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula: a hostile title must stay text.
    s = ";".join(value) if isinstance(value, list) else str(value)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


@router.get("/storylines/{sid}/export.{fmt}", include_in_schema=False)
def export(request: Request, sid: str, fmt: str, f: Annotated[Filters, Depends(filters)]) -> StreamingResponse:
    """The filtered list as CSV (one row per article) or JSON Lines (the published items)."""
    web = web_of(request)
    web.readable(request)
    known_storyline(web, sid)
    if fmt not in ("csv", "jsonl"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no export format {fmt!r}: use csv or jsonl")

    def lines() -> Iterator[str]:
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(CSV_COLUMNS)
            yield buf.getvalue()
        for eid, data in _all(web, sid, f):
            if fmt == "jsonl":
                yield json.dumps({"entry_id": eid, "item": data}, ensure_ascii=False) + "\n"
            else:
                buf = io.StringIO()
                r = row(sid, eid, data)
                csv.writer(buf).writerow([_csv_cell(r[c]) for c in CSV_COLUMNS])
                yield buf.getvalue()

    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    name = f"{sid}.{fmt}"
    return StreamingResponse(
        lines(), media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
