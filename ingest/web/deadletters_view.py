"""The dead letters view: counts by reason per hour, the entries (all or one reason), and retry."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse

from ingest import keys
from ingest.redisutil import text, text_map
from ingest.retry import RetryError
from ingest.retry import retry as retry_deadletters
from ingest.web import charts
from ingest.web.pages import back, field_text, web_of

router = APIRouter()
PAGE = 50
HOURS = 48
REASON = r"^[a-z0-9_]{1,64}$"


def per_hour(client: Any, hours: int = HOURS) -> tuple[list[str], list[dict[str, int]]]:
    """Dead letters per UTC hour by reason, oldest first."""
    now = dt.datetime.fromtimestamp(time.time(), dt.UTC).replace(minute=0, second=0, microsecond=0)
    span = [now - dt.timedelta(hours=h) for h in range(hours - 1, -1, -1)]
    pipe = client.pipeline(transaction=False)
    for hour in span:
        pipe.hgetall(keys.web_dead_hour(hour.strftime("%Y-%m-%dT%H")))
    cols = [{k: int(v) for k, v in text_map(h).items()} for h in pipe.execute()]
    return [h.strftime("%d %H:00") for h in span], cols


def totals(client: Any) -> dict[str, int]:
    """Dead letters by reason since the start (the counters `ingest stats` shows)."""
    counters = text_map(client.hgetall(keys.STATS))
    return {k[len("reason:") :]: int(v) for k, v in counters.items() if k.startswith("reason:")}


def entries(client: Any, reason: str, page: int) -> tuple[list[dict[str, Any]], bool]:
    """One page of dead letters, newest first, of one reason or of all."""
    start = (page - 1) * PAGE
    if reason:
        ids = [text(x) for x in client.zrevrange(keys.web_dead_reason(reason), start, start + PAGE)]
        pipe = client.pipeline(transaction=False)
        for eid in ids:
            pipe.xrange(keys.DEADLETTER, eid, eid)
        found = [f[0] for f in pipe.execute() if f]
    else:
        # the newest page is one range read; deeper pages walk back one range per page
        found, upper = [], "+"
        for _ in range(page):
            found = client.xrevrange(keys.DEADLETTER, upper, "-", count=PAGE + 1)
            if len(found) <= PAGE:
                break
            upper = text(found[PAGE][0])
    taken = client.hmget(keys.DEADLETTER_RETRIED, [text(eid) for eid, _ in found]) if found else []
    rows = []
    for (eid, fields), retried in zip(found, taken, strict=True):
        d = json.loads(fields[b"data"])
        rows.append({**d, "entry_id": text(eid), "retried_by": text(retried) if retried else ""})
    return rows[:PAGE], len(rows) > PAGE


@router.get("/deadletters", response_class=HTMLResponse, include_in_schema=False)
def deadletters_page(
    request: Request,
    reason: Annotated[str, Query(pattern=r"^[a-z0-9_]{0,64}$")] = "",
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> HTMLResponse:
    """What failed, why, and when."""
    web = web_of(request)
    web.readable(request)
    labels, cols = per_hour(web.redis)
    rows, more = entries(web.redis, reason, page)
    return web.render(
        request,
        "deadletters.html",
        "deadletters",
        chart=charts.stacked(labels, cols, "reason", unit="dead letters"),
        totals=sorted(totals(web.redis).items(), key=lambda kv: (-kv[1], kv[0])),
        rows=rows,
        reason=reason,
        page=page,
        more=more,
    )


@router.post("/deadletters/retry", include_in_schema=False)
async def retry(request: Request) -> RedirectResponse:
    """Re-enqueue one dead-lettered URL, or every URL of one reason (the entries stay)."""
    web = web_of(request)
    form = await web.form(request)
    reason = form.get("reason")
    try:
        if isinstance(reason, str) and reason:
            if not re.fullmatch(REASON, reason):
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "reason must be a code such as http_404")
            done = retry_deadletters(web.redis, web.dispatcher, reason=reason)
            note = f" ({done.already_retried} retried before)" if done.already_retried else ""
            return back("/deadletters", f"{done.enqueued} URLs of {reason} re-enqueued{note}", reason=reason)
        eid = field_text(form, "entry_id", 64)
        if not re.fullmatch(r"\d{1,20}-\d{1,20}", eid):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "entry_id must be a stream entry id")
        # one entry asked for by hand: retried even if an earlier retry took it
        done = retry_deadletters(web.redis, web.dispatcher, entry_id=eid, again=True)
    except RetryError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return back("/deadletters", f"re-enqueued as run {done.run_id}" if done.enqueued else "nothing to retry")
