"""Every URL of the dashboard, metrics and docs, mounted on the API app."""

from __future__ import annotations

import redis
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ingest.config import Settings
from ingest.jobs import Dispatcher
from ingest.web import (
    article_view,
    deadletters_view,
    docs,
    feeds_view,
    login_view,
    metrics,
    storyline_view,
    system_view,
)
from ingest.web.auth import Auth
from ingest.web.pages import STATIC, Web


def mount(app: FastAPI, settings: Settings, client: redis.Redis, dispatcher: Dispatcher) -> None:
    """Add the dashboard (/, /storylines, /items, /feeds, /deadletters, /system), /metrics and /docs."""
    app.state.web = Web(settings, client, dispatcher, Auth(settings, client))
    app.mount("/static/web", StaticFiles(directory=str(STATIC)), name="web-static")
    docs.mount(app)
    for view in (storyline_view, article_view, feeds_view, deadletters_view, system_view, login_view, metrics):
        app.include_router(view.router)
