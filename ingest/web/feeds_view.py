"""The feeds view: health of every feed (paged), and add / remove / poll now / retry."""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse

from ingest import keys
from ingest.errors import InvalidURL
from ingest.feeds import FeedInfo, FeedStore
from ingest.redisutil import text, text_map
from ingest.report import feed_health
from ingest.web.pages import back, field_text, web_of

router = APIRouter()
PAGE = 100


def next_poll_reason(h: dict[str, Any], record: dict[str, str]) -> str:
    """Why the next poll is when it is, in words (the feed store's own reason when it records one)."""
    if record.get("next_reason"):
        return record["next_reason"]
    if h["status"] == "never_polled":
        return "new feed: polled as soon as a scheduler runs"
    if h["consecutive_failures"]:
        return f"backing off after {h['consecutive_failures']} failed polls in a row"
    return f"every {h['interval']} s"


def entries_per_day(record: dict[str, str], entries_new: int) -> float | None:
    """New entries per day since the feed was added (over at least one day, so a new feed's backlog is not a rate)."""
    try:
        days = max((time.time() - float(record.get("added", ""))) / 86400, 1.0)
    except ValueError:
        return None
    return round(entries_new / days, 1)


def page_of(web_redis: Any, store: FeedStore, start: int, count: int) -> list[dict[str, Any]]:
    """One page of feeds in schedule order with their health (one round trip for the records)."""
    due = cast(list[Any], web_redis.zrange(keys.FEEDS_DUE, start, start + count - 1, withscores=True))
    pipe = web_redis.pipeline(transaction=False)
    for raw_url, _ in due:
        pipe.hgetall(keys.feed(text(raw_url)))
    rows = []
    for (raw_url, score), rec_raw in zip(due, pipe.execute(), strict=True):
        rec = text_map(rec_raw)
        info = FeedInfo(text(raw_url), int(rec.get("interval", store.settings.feed_interval)), float(score), rec)
        h = feed_health(info)
        h["why"] = next_poll_reason(h, rec)
        h["title"] = rec.get("title") or ""
        h["broken"] = rec.get("broken") == "1"
        h["per_day"] = entries_per_day(rec, h["entries_new"])
        h["last_polled"] = rec.get("last_polled")
        rows.append(h)
    return rows


@router.get("/feeds", response_class=HTMLResponse, include_in_schema=False)
def feeds_page(request: Request, page: Annotated[int, Query(ge=1, le=100000)] = 1) -> HTMLResponse:
    """Every feed's health, a page at a time."""
    web = web_of(request)
    web.readable(request)
    store = FeedStore(web.redis, web.settings)
    total = int(web.redis.zcard(keys.FEEDS_DUE))
    rows = page_of(web.redis, store, (page - 1) * PAGE, PAGE)
    return web.render(
        request, "feeds.html", "feeds", rows=rows, total=total, page=page, more=page * PAGE < total, now=time.time()
    )


def _feed_url(form_url: str, web_redis: Any) -> str:
    if web_redis.zscore(keys.FEEDS_DUE, form_url) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no feed {form_url}")
    return form_url


@router.post("/feeds/add", include_in_schema=False)
async def add_feed(request: Request) -> RedirectResponse:
    """Add a feed (or change its interval)."""
    web = web_of(request)
    form = await web.form(request)
    url = field_text(form, "url")
    raw_interval = form.get("interval")
    interval = None
    if isinstance(raw_interval, str) and raw_interval.strip():
        if not raw_interval.strip().isdigit() or int(raw_interval) < 10:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "interval must be a whole number of seconds, at least 10"
            )
        interval = int(raw_interval)
    try:
        created = FeedStore(web.redis, web.settings).add(url, interval)
    except InvalidURL as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"bad feed URL: {exc.detail}") from None
    return back("/feeds", "feed added" if created else "feed updated")


@router.post("/feeds/remove", include_in_schema=False)
async def remove_feed(request: Request) -> RedirectResponse:
    """Remove a feed and its schedule."""
    web = web_of(request)
    form = await web.form(request)
    url = _feed_url(field_text(form, "url"), web.redis)
    FeedStore(web.redis, web.settings).remove(url)
    return back("/feeds", "feed removed")


@router.post("/feeds/poll", include_in_schema=False)
async def poll_feed(request: Request) -> RedirectResponse:
    """Poll a feed now; a failing feed's back-off is reset so it is polled on schedule again after."""
    web = web_of(request)
    form = await web.form(request)
    url = _feed_url(field_text(form, "url"), web.redis)
    if form.get("retry"):
        web.redis.hset(keys.feed(url), "failures", 0)
    web.dispatcher.send_feed_poll(url, None)
    return back("/feeds", "poll queued" if not form.get("retry") else "retry queued")
