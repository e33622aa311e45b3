"""What every view shares: the Web context (Redis, settings, auth, templates) and page rendering."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit

import redis
from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import FormData

from ingest.config import Settings
from ingest.jobs import Dispatcher
from ingest.storyline import Storyline, load_storylines
from ingest.web.auth import CSRF_COOKIE, Auth

TEMPLATES = resources.files("ingest.web") / "templates"
STATIC = resources.files("ingest.web") / "static"

# Pages load only their own CSS and JS: an injected inline script or event handler cannot run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

NAV = (
    ("storyline", "/", "Storyline"),
    ("feeds", "/feeds", "Feeds"),
    ("deadletters", "/deadletters", "Dead letters"),
    ("system", "/system", "System"),
)


def safe_href(url: object) -> str | None:
    """A link target only for http(s) URLs: a `javascript:` or `data:` URL from a page never becomes a link."""
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def when(ts: object) -> str:
    """A unix time or ISO string as 'YYYY-MM-DD HH:MM UTC' (empty when unknown)."""
    if ts in (None, ""):
        return ""
    try:
        if isinstance(ts, int | float) or (isinstance(ts, str) and ts.replace(".", "", 1).isdigit()):
            moment = dt.datetime.fromtimestamp(float(ts), dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(str(ts))
    except (ValueError, OverflowError, OSError):
        return str(ts)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def ago(seconds: float | None) -> str:
    """A duration in words: 42 s, 5 min, 3 h, 2 d."""
    if seconds is None:
        return ""
    s = abs(seconds)
    text = (
        f"{s:.0f} s"
        if s < 90
        else f"{s / 60:.0f} min"
        if s < 5400
        else f"{s / 3600:.0f} h"
        if s < 172800
        else f"{s / 86400:.0f} d"
    )
    return text


@dataclass
class Web:
    """Everything a view needs, built once per API process."""

    settings: Settings
    redis: redis.Redis
    dispatcher: Dispatcher
    auth: Auth
    env: Environment = field(init=False)
    _storylines: list[Storyline] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # autoescape on for every template: titles, texts and feed names are hostile input.
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined, trim_blocks=True
        )
        self.env.filters.update(safe_href=safe_href, when=when, ago=ago, tojson_compact=json.dumps)
        self.env.globals.update(nav=NAV)

    @property
    def storylines(self) -> list[Storyline]:
        """The storyline definitions (loaded on first use)."""
        if self._storylines is None:
            self._storylines = load_storylines(self.settings.storylines_path)
        return self._storylines

    def render(self, request: Request, template: str, active: str, **context: Any) -> HTMLResponse:
        """A page with the CSRF token of this browser, its security headers and the login state."""
        seed, new = self.auth.csrf_seed(request)
        html = self.env.get_template(template).render(
            request_path=request.url.path,
            active=active,
            csrf=self.auth.csrf_token(seed),
            token_required=self.auth.token is not None,
            logged_in=self.auth.token is not None and self.auth.authenticated(request),
            message=request.query_params.get("msg", "")[:300],
            **context,
        )
        response = HTMLResponse(html, headers=SECURITY_HEADERS)
        if new:
            response.set_cookie(CSRF_COOKIE, seed, httponly=True, samesite="strict", path="/")
        return response

    def readable(self, request: Request) -> None:
        """Send a reader from elsewhere to the login form when a token is set."""
        if not self.auth.can_read(request):
            raise HTTPException(
                status.HTTP_303_SEE_OTHER,
                "log in first",
                headers={"Location": "/login?" + urlencode({"next": request.url.path})},
            )

    async def form(self, request: Request) -> FormData:
        """The posted form, once its CSRF token and the caller's right to change things are checked."""
        form = await request.form()
        self.auth.check_write(request, form)
        return form


def web_of(request: Request) -> Web:
    """The Web context of the app serving this request."""
    w: Web = request.app.state.web
    return w


def back(path: str, message: str = "", **params: str) -> RedirectResponse:
    """Post/redirect/get: back to a page, with a one-line message."""
    query = {k: v for k, v in {**params, "msg": message}.items() if v}
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=status.HTTP_303_SEE_OTHER)


def field_text(form: FormData, name: str, limit: int = 2048) -> str:
    """A posted text field, stripped; 422 naming the field when missing or too long."""
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"field {name!r} is required")
    if len(value) > limit:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"field {name!r} is longer than {limit} characters")
    return value.strip()
