"""The HTTP API (FastAPI): enqueue URLs, manage feeds, read items, health."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ingest import __version__, report
from ingest.config import Settings
from ingest.consume import Entry, after
from ingest.errors import InvalidURL
from ingest.feeds import FeedStore
from ingest.jobs import Dispatcher, Jobs
from ingest.urls import MAX_URL_LENGTH, validate_url

MAX_URLS_PER_CALL = 1000
MAX_FEED_INTERVAL = 365 * 24 * 3600
# What the schema says of a URL; validate_url (the one check every URL passes) decides the rest.
URL_PATTERN = r"^\s*[hH][tT][tT][pP][sS]?://[^\s/?#]+"
URL_DESCRIPTION = (
    "absolute http(s) URL with a host; refused (422): other schemes, whitespace or control characters, "
    f"an invalid host or [IPv6] literal, port 0, more than {MAX_URL_LENGTH} characters"
)
# The pattern is documentation: validate_url enforces it, and more, with a message naming the problem.
Url = Annotated[
    str,
    Field(
        max_length=MAX_URL_LENGTH,
        description=URL_DESCRIPTION,
        json_schema_extra={"format": "uri", "pattern": URL_PATTERN},
    ),
]
# Redis stream entry ids are two unsigned 64-bit numbers.
_U64_MAX = 2**64 - 1


class Error(BaseModel):
    """The body of every error but 422: what went wrong, for a person."""

    detail: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error statuses answered with an Error body."""
    return {code: {"model": Error} for code in codes}


def _unprocessable(where: str, name: str, value: object, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own validation errors (the schema documents that shape)."""
    return RequestValidationError([{"type": "value_error", "loc": (where, name), "msg": message, "input": value}])


def check_stream_id(value: str) -> str:
    """Return value if Redis accepts it as an exclusive start id, else raise ValueError."""
    ms, _, seq = value.partition("-")
    if not (ms.isascii() and ms.isdigit() and seq.isascii() and seq.isdigit()):
        raise ValueError(f"not a stream entry id (MS-SEQ): {value!r}")
    if int(ms) > _U64_MAX or int(seq) > _U64_MAX:
        raise ValueError(f"stream entry id out of range (each part at most {_U64_MAX}): {value!r}")
    if int(ms) == _U64_MAX and int(seq) == _U64_MAX:
        raise ValueError("nothing can come after the largest stream entry id")
    return value


def _valid_url(url: str) -> str:
    try:
        return validate_url(url)
    except InvalidURL as exc:
        raise ValueError(exc.detail) from None


class UrlsIn(BaseModel):
    """POST /v1/urls body."""

    urls: list[Url] = Field(min_length=1, max_length=MAX_URLS_PER_CALL)

    @field_validator("urls")
    @classmethod
    def _check(cls, urls: list[str]) -> list[str]:
        return [_valid_url(u) for u in urls]


class FeedIn(BaseModel):
    """POST /v1/feeds body."""

    url: Url
    interval: int | None = Field(
        default=None, ge=10, le=MAX_FEED_INTERVAL, strict=True, description="seconds between polls"
    )
    check: StrictBool = Field(default=True, description="fetch and parse the URL first; false adds a feed that is down")

    @field_validator("url")
    @classmethod
    def _check(cls, url: str) -> str:
        return _valid_url(url)


class RetryIn(BaseModel):
    """POST /v1/retry body: dead letters matching every filter given are re-enqueued (none: all of them)."""

    reason: str | None = Field(default=None, max_length=100, description="only this reason, e.g. http_404")
    since: str | None = Field(default=None, max_length=64, description="ISO 8601 date or time, or an age: 2h, 1d")
    urls: list[Url] = Field(default_factory=list, max_length=MAX_URLS_PER_CALL, description="only these URLs")
    entry_id: str | None = Field(default=None, pattern=r"^\d+-\d+$", description="only this deadletter entry")
    again: StrictBool = Field(default=False, description="also entries an earlier retry took")
    dry_run: StrictBool = Field(default=False, description="say what would be retried, enqueue nothing")

    @field_validator("urls")
    @classmethod
    def _check(cls, urls: list[str]) -> list[str]:
        return [_valid_url(u) for u in urls]


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


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """HTTP errors as {"detail": ...}, with a correct Allow header on 405."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        # Starlette names only the methods of the first route matching the path; a path served
        # by several routes (GET and POST /v1/feeds) allows all of theirs.
        allowed: set[str] = set()
        for route in request.app.router.routes:
            match, _ = route.matches(request.scope)
            if match != Match.NONE:
                allowed |= getattr(route, "methods", None) or set()
        headers["Allow"] = ", ".join(sorted(allowed))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def _read_items(client: redis.Redis, settings: Settings, stream: str, after_id: str | None, count: int) -> list[Entry]:
    """GET /v1/items: check the parameters as Redis would (422 naming the one refused), then read."""
    from ingest.consumer import UnknownStream, stream_key

    try:
        key = stream_key(stream, client, settings)
    except UnknownStream as exc:
        raise _unprocessable("query", "stream", stream, str(exc)) from None
    if after_id is not None:
        try:
            check_stream_id(after_id)
        except ValueError as exc:
            raise _unprocessable("query", "after", after_id, str(exc)) from None
    try:
        return after(client, key, after_id, count)
    except redis.ResponseError as exc:  # e.g. the key exists but holds no stream
        raise _unprocessable("query", "stream", stream, f"cannot read {stream!r}: {exc}") from None


async def _redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Redis away (a restart, a network blip) is a 503 the client can retry, not a 500."""
    return JSONResponse({"detail": f"redis unavailable: {exc}"}, status_code=503, headers={"Retry-After": "5"})


def create_app(settings: Settings, client: redis.Redis, dispatcher: Dispatcher) -> FastAPI:
    """Build the API around a Redis client and a dispatcher (both injected: tests pass real ones)."""
    # docs_url/redoc_url off: ingest.web serves both from local files instead of a CDN.
    # 503 on every call: Redis (state and broker) unreachable, e.g. while it restarts.
    app = FastAPI(title="storyline-ingest", version=__version__, docs_url=None, redoc_url=None, responses=_errors(503))
    jobs = Jobs(client)

    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(redis.ConnectionError, _redis_unavailable)
    app.add_exception_handler(redis.TimeoutError, _redis_unavailable)

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
    # 400: a body that is not JSON at all (FastAPI answers that before validation).
    writer_errors = _errors(400, 401) if settings.api_token is not None else _errors(400)

    @app.get("/healthz", responses=_errors(503))
    def healthz() -> dict[str, str]:
        """Liveness and Redis reachability."""
        try:
            client.ping()
        except redis.RedisError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis unreachable: {exc}") from None
        return {"status": "ok", "redis": "ok", "version": __version__}

    @app.post("/v1/urls", status_code=status.HTTP_202_ACCEPTED, dependencies=writer, responses=writer_errors)
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

    @app.get("/v1/runs/{run_id}", responses=_errors(404))
    def run(run_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
        """Progress and outcomes of a run: counts, then every URL, already-seen ones included."""
        if not jobs.exists(run_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id} (runs are kept for a day)")
        return report.run_state(jobs.progress(run_id))

    _follow_up_routes(app, settings, client, dispatcher, writer, writer_errors)

    @app.get("/v1/items")
    def items(
        stream: Annotated[str, Query(description="articles, duplicates, deadletter or storyline:ID")] = "articles",
        after_id: Annotated[
            str | None,
            Query(
                alias="after",
                pattern=r"^\d{1,20}-\d{1,20}$",
                description="a stream entry id MS-SEQ (each part an unsigned 64-bit number)",
            ),
        ] = None,
        count: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        """Entries after an entry id (oldest first); pass `next` back as `after` to page."""
        entries = _read_items(client, settings, stream, after_id, count)
        return {
            "stream": stream,
            "items": [{"entry_id": e.entry_id, "item": e.data} for e in entries],
            "next": entries[-1].entry_id if entries else after_id,
        }

    @app.get("/v1/feeds")
    def list_feeds() -> dict[str, Any]:
        """Feeds with their schedule and health."""
        return {"feeds": [report.feed_health(f) for f in feeds.all()]}

    @app.post("/v1/feeds", status_code=status.HTTP_201_CREATED, dependencies=writer, responses=writer_errors)
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

    from ingest.web.routes import mount

    mount(app, settings, client, dispatcher)
    return app


def _follow_up_routes(
    app: FastAPI,
    settings: Settings,
    client: redis.Redis,
    dispatcher: Dispatcher,
    writer: list[Any],
    writer_errors: dict[int | str, dict[str, Any]],
) -> None:
    """Routes that follow up on work: retry dead letters, explain an item, list living workers."""
    cache: dict[str, Any] = {}  # storyline definitions, loaded on first use

    @app.post("/v1/retry", status_code=status.HTTP_202_ACCEPTED, dependencies=writer, responses=writer_errors)
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

    @app.get("/v1/items/{item_id}", responses=_errors(404))
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
