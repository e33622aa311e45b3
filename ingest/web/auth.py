"""Who may read and who may change: loopback reads, the API token as a login cookie, CSRF on every form.

With `INGEST_API_TOKEN` unset the dashboard is open (the API listens on 127.0.0.1 by default).
With it set, reading is open to loopback clients only and every change needs the token, as a
bearer header or as the session cookie the login form sets. Every form post, logged in or not,
carries a CSRF token bound to a per-browser cookie, and cross-site posts are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time

import redis
from fastapi import HTTPException, Request, status
from starlette.datastructures import FormData

from ingest import keys
from ingest.config import Settings

SESSION_COOKIE = "ingest_session"
CSRF_COOKIE = "ingest_csrf"
CSRF_FIELD = "csrf"
SESSION_DAYS = 14


def is_loopback(request: Request) -> bool:
    """True when the client connected from this machine."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # not an address (a unix socket, a test transport): not known to be local
        return False


class Auth:
    """Session cookies, CSRF tokens and the read/write rules above."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.token = settings.api_token
        self._client = client
        self._key: bytes | None = self.token.encode() if self.token else None

    @property
    def key(self) -> bytes:
        """The signing key: the API token, else a random secret shared by every API process through Redis."""
        if self._key is None:
            self._client.set(keys.WEB_SECRET, secrets.token_hex(32), nx=True)
            raw = self._client.get(keys.WEB_SECRET)
            self._key = raw if isinstance(raw, bytes) else str(raw).encode()
        return self._key

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    # ---- sessions ----
    def check_token(self, candidate: str) -> bool:
        """Whether a submitted token is the API token."""
        return self.token is not None and secrets.compare_digest(candidate.encode(), self.token.encode())

    def new_session(self) -> str:
        """A session cookie value: issue time and its signature (changing the token ends every session)."""
        issued = str(int(time.time()))
        return f"{issued}.{self._sign('session', issued)}"

    def _valid_session(self, value: str | None) -> bool:
        if not value or "." not in value:
            return False
        issued, sig = value.split(".", 1)
        if not issued.isdigit() or time.time() - int(issued) > SESSION_DAYS * 86400:
            return False
        return secrets.compare_digest(sig.encode(), self._sign("session", issued).encode())

    def authenticated(self, request: Request) -> bool:
        """True when no token is configured, or the request carries it (bearer header or session)."""
        if self.token is None:
            return True
        header = request.headers.get("authorization", "")
        if header and secrets.compare_digest(header.encode(), f"Bearer {self.token}".encode()):
            return True
        return self._valid_session(request.cookies.get(SESSION_COOKIE))

    def can_read(self, request: Request) -> bool:
        """Reading is open on loopback; from elsewhere it needs the token once one is set."""
        return self.token is None or is_loopback(request) or self.authenticated(request)

    # ---- CSRF ----
    def csrf_seed(self, request: Request) -> tuple[str, bool]:
        """The browser's CSRF cookie value, and whether it is new (to be set on the response)."""
        seed = request.cookies.get(CSRF_COOKIE, "")
        if len(seed) == 32 and all(c in "0123456789abcdef" for c in seed):
            return seed, False
        return secrets.token_hex(16), True

    def csrf_token(self, seed: str) -> str:
        """The token a form carries for a CSRF cookie value."""
        return self._sign("csrf", seed)

    def check_write(self, request: Request, form: FormData) -> None:
        """Refuse a form post that is cross-site, lacks a valid CSRF token, or lacks the API token."""
        origin = request.headers.get("origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host", ""):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site form post refused")
        seed = request.cookies.get(CSRF_COOKIE, "")
        sent = form.get(CSRF_FIELD)
        if not seed or not isinstance(sent, str) or not secrets.compare_digest(sent, self.csrf_token(seed)):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or stale CSRF token: reload the page and retry")
        if not self.authenticated(request):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in with the API token to change anything")
