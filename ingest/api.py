"""The HTTP API (FastAPI): enqueue URLs, manage feeds, read items, health."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, status
from pydantic import BaseModel, Field, field_validator

from ingest import __version__, report
from ingest.config import Settings
from ingest.consume import after
from ingest.errors import InvalidURL
from ingest.feeds import FeedStore
from ingest.jobs import Dispatcher, Jobs
from ingest.urls import validate_url

MAX_URLS_PER_CALL = 1000


def _valid_url(url: str) -> str:
    try:
        return validate_url(url)
    except InvalidURL as exc:
        raise ValueError(exc.detail) from None


class UrlsIn(BaseModel):
    """POST /v1/urls body."""

    urls: list[str] = Field(min_length=1, max_length=MAX_URLS_PER_CALL)

    @field_validator("urls")
    @classmethod
    def _check(cls, urls: list[str]) -> list[str]:
        return [_valid_url(u) for u in urls]


class FeedIn(BaseModel):
    """POST /v1/feeds body."""

    url: str
    interval: int | None = Field(default=None, ge=10, description="seconds between polls")
    check: bool = Field(default=True, description="fetch and parse the URL first; false adds a feed that is down")

    @field_validator("url")
    @classmethod
    def _check(cls, url: str) -> str:
        return _valid_url(url)


class RetryIn(BaseModel):
    """POST /v1/retry body: dead letters matching every filter given are re-enqueued (none: all of them)."""

    reason: str | None = Field(default=None, max_length=100, description="only this reason, e.g. http_404")
    since: str | None = Field(default=None, max_length=64, description="ISO 8601 date or time, or an age: 2h, 1d")
    urls: list[str] = Field(default_factory=list, max_length=MAX_URLS_PER_CALL, description="only these URLs")
    entry_id: str | None = Field(default=None, pattern=r"^\d+-\d+$", description="only this deadletter entry")
    again: bool = Field(default=False, description="also entries an earlier retry took")
    dry_run: bool = Field(default=False, description="say what would be retried, enqueue nothing")

    @field_validator("urls")
    @classmethod
    def _check(cls, urls: list[str]) -> list[str]:
        return [_valid_url(u) for u in urls]


class Problem(BaseModel):
    """A request the service cannot act on, and why."""

    detail: str


def _feed_problem(settings: Settings, client: redis.Redis, url: str) -> str | None:
    """Why url cannot be added as a feed (fetched and parsed now), or None when it is a feed."""
    from ingest import discover
    from ingest.errors import IngestError
    from ingest.fetch import Fetcher

    with Fetcher(settings, client) as fetcher:
        try:
            found = discover.check(fetcher, url)
        except IngestError as exc:
            return f"cannot fetch {url}: {exc.reason}: {exc.detail} (send check: false to add it anyway)"
    if found.is_feed:
        return None
    if found.html and found.feeds:
        return f"{url} is a web page, not a feed; it offers: {' '.join(found.feeds)}"
    if found.html:
        return f"{url} is a web page, not a feed, and offers none"
    return f"{url} is not a feed: {found.problem} (send check: false to add it anyway)"


def create_app(settings: Settings, client: redis.Redis, dispatcher: Dispatcher) -> FastAPI:
    """Build the API around a Redis client and a dispatcher (both injected: tests pass real ones)."""
    app = FastAPI(title="storyline-ingest", version=__version__)
    jobs = Jobs(client)
    feeds = FeedStore(client, settings)

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        """Write calls need `Authorization: Bearer <INGEST_API_TOKEN>` when a token is configured."""
        if settings.api_token is None:
            return
        expected = f"Bearer {settings.api_token}"
        if authorization is None or not secrets.compare_digest(authorization.encode(), expected.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    writer = [Depends(require_token)]

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness and Redis reachability."""
        try:
            client.ping()
        except redis.RedisError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis unreachable: {exc}") from None
        return {"status": "ok", "redis": "ok", "version": __version__}

    @app.post("/v1/urls", status_code=status.HTTP_202_ACCEPTED, dependencies=writer)
    def enqueue(body: UrlsIn) -> dict[str, Any]:
        """Enqueue article URLs; poll GET /v1/runs/{run} for their outcomes."""
        run_id = jobs.new_run("enqueue")
        results = [jobs.enqueue(dispatcher, u, via="manual", run_id=run_id) for u in body.urls]
        return {
            "run": run_id,
            "jobs": [
                {"url": r.url, "job_id": r.job_id, "status": "queued" if r.is_new else "already_seen"} for r in results
            ],
        }

    @app.get("/v1/runs/{run_id}", responses={404: {"model": Problem}})
    def run(run_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
        """Progress and outcomes of a run: counts, then every URL, already-seen ones included."""
        if not jobs.exists(run_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id} (runs are kept for a day)")
        return report.run_state(jobs.progress(run_id))

    _follow_up_routes(app, settings, client, dispatcher, writer)

    @app.get("/v1/items")
    def items(
        stream: Annotated[str, Query(description="articles, duplicates, deadletter or storyline:ID")] = "articles",
        after_id: Annotated[str | None, Query(alias="after", pattern=r"^\d+-\d+$")] = None,
        count: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        """Entries after an entry id (oldest first); pass `next` back as `after` to page."""
        from ingest.streams import resolve

        try:
            key = resolve(client, settings.storylines_path, stream)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        entries = after(client, key, after_id, count)
        return {
            "stream": stream,
            "items": [{"entry_id": e.entry_id, "item": e.data} for e in entries],
            "next": entries[-1].entry_id if entries else after_id,
        }

    @app.get("/v1/feeds")
    def list_feeds() -> dict[str, Any]:
        """Feeds with their schedule and health."""
        return {"feeds": [report.feed_health(f) for f in feeds.all()]}

    @app.post(
        "/v1/feeds", status_code=status.HTTP_201_CREATED, dependencies=writer, responses={400: {"model": Problem}}
    )
    def add_feed(body: FeedIn) -> dict[str, Any]:
        """Add a feed (or change its interval); it is fetched and parsed first unless check is false.

        A web page is refused with the feeds it offers in the message; `run` counts the feed's first poll.
        """
        interval = body.interval or settings.feed_interval
        if body.check:
            problem = _feed_problem(settings, client, body.url)
            if problem:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, problem)
        created = feeds.add(body.url, body.interval)
        run_id = jobs.open_first_poll(body.url) if created else None
        return {"url": body.url, "interval": interval, "created": created, "run": run_id}

    @app.get("/v1/stats")
    def stats() -> dict[str, Any]:
        """Counters, queue depths, stream lengths, feed health."""
        return report.stats(client, feeds.all())

    return app


def _follow_up_routes(
    app: FastAPI, settings: Settings, client: redis.Redis, dispatcher: Dispatcher, writer: list[Any]
) -> None:
    """Routes that follow up on work: retry dead letters, explain an item, list living workers."""
    cache: dict[str, Any] = {}  # storyline definitions, loaded on first use

    @app.post(
        "/v1/retry", status_code=status.HTTP_202_ACCEPTED, dependencies=writer, responses={400: {"model": Problem}}
    )
    def retry_dead_letters(body: RetryIn) -> dict[str, Any]:
        """Re-enqueue dead-lettered URLs (the entries stay); follow the run with GET /v1/runs/{run}."""
        from ingest.retry import RetryError, parse_since, retry

        try:
            since = parse_since(body.since) if body.since is not None else None
            result = retry(
                client,
                dispatcher,
                reason=body.reason,
                since=since,
                urls=body.urls,
                entry_id=body.entry_id,
                again=body.again,
                dry_run=body.dry_run,
            )
        except RetryError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        return result.as_dict()

    @app.get("/v1/items/{item_id}", responses={404: {"model": Problem}})
    def item(item_id: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
        """One item (or dead letter) by id, and why: tagging per storyline, a duplicate's original."""
        from ingest.explain import explain

        if "storylines" not in cache:
            from ingest.storyline import load_storylines

            cache["storylines"] = load_storylines(settings.storylines_path)
        shown = explain(client, settings, item_id, cache["storylines"])
        if shown is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item {item_id}")
        return shown

    @app.get("/v1/workers")
    def workers() -> dict[str, Any]:
        """Workers alive now (each writes a heartbeat every few seconds)."""
        from ingest.heartbeat import workers_alive

        return {"workers": [w.as_dict() for w in workers_alive(client)]}
