"""The login form: the API token in, a signed session cookie out (only when INGEST_API_TOKEN is set)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ingest.web.auth import CSRF_FIELD, SESSION_COOKIE, SESSION_DAYS
from ingest.web.pages import back, web_of

router = APIRouter()


def _local_path(target: str) -> str:
    # only a path on this site: "//evil.example" or "https://..." would make the form an open redirect
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: Annotated[str, Query(max_length=500)] = "/") -> HTMLResponse:
    """The token form."""
    web = web_of(request)
    return web.render(request, "login.html", "", next=_local_path(next), error="")


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    """Check the token (CSRF-protected like every form) and set the session cookie."""
    web = web_of(request)
    form = await request.form()
    if web.auth.token is None:
        return back("/", "no token is configured: nothing to log in to")
    seed = request.cookies.get("ingest_csrf", "")
    sent = form.get(CSRF_FIELD)
    if not seed or not isinstance(sent, str) or sent != web.auth.csrf_token(seed):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or stale CSRF token: reload the page and retry")
    target = _local_path(str(form.get("next") or "/"))
    token = form.get("token")
    if not isinstance(token, str) or not web.auth.check_token(token):
        response = web.render(request, "login.html", "", next=target, error="wrong token")
        response.status_code = status.HTTP_401_UNAUTHORIZED
        return response
    done = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    done.set_cookie(
        SESSION_COOKIE,
        web.auth.new_session(),
        max_age=SESSION_DAYS * 86400,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return done


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> RedirectResponse:
    """Forget the session cookie."""
    web = web_of(request)
    await web.form(request)
    response = back("/", "logged out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
