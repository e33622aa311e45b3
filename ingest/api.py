"""The HTTP API (FastAPI): enqueue URLs, manage feeds, read items, health."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, Header, HTTPException, Query, status
from pydantic import BaseModel, Field, field_validator

from ingest import __version__, keys, report
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

    @field_validator("url")
    @classmethod
    def _check(cls, url: str) -> str:
        return _valid_url(url)


def create_app(settings: Settings, client: redis.Redis, dispatcher: Dispatcher) -> FastAPI:
    """Build the API around a Redis client and a dispatcher (both injected: tests pass real ones)."""
    # docs_url/redoc_url off: ingest.web serves both from local files instead of a CDN
    app = FastAPI(title="storyline-ingest", version=__version__, docs_url=None, redoc_url=None)
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

    @app.get("/v1/runs/{run_id}")
    def run(run_id: str) -> dict[str, Any]:
        """Progress and outcomes of a run."""
        progress = jobs.progress(run_id)
        if not progress.jobs and not client.exists(keys.run(run_id)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id}")
        summary = report.run_summary(progress)
        summary["jobs"] = [report.job_outcome(j["url"], jobs.job(jid)) for jid, j in progress.jobs.items()]
        return summary

    @app.get("/v1/items")
    def items(
        stream: Annotated[str, Query(description="articles, duplicates, deadletter or storyline:ID")] = "articles",
        after_id: Annotated[str | None, Query(alias="after", pattern=r"^\d+-\d+$")] = None,
        count: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        """Entries after an entry id (oldest first); pass `next` back as `after` to page."""
        from ingest.consumer import UnknownStream, stream_key

        try:
            key = stream_key(stream, client, settings)
        except UnknownStream as exc:
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

    @app.post("/v1/feeds", status_code=status.HTTP_201_CREATED, dependencies=writer)
    def add_feed(body: FeedIn) -> dict[str, Any]:
        """Add a feed (or change its interval)."""
        created = feeds.add(body.url, body.interval)
        return {"url": body.url, "interval": body.interval or settings.feed_interval, "created": created}

    @app.get("/v1/stats")
    def stats() -> dict[str, Any]:
        """Counters, queue depths, stream lengths, feed health."""
        return report.stats(client, feeds.all())

    from ingest.web.routes import mount

    mount(app, settings, client, dispatcher)
    return app
