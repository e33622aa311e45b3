"""Fetch stage: article pages and feeds over HTTP, with every safety check on every hop.

Each request, whether the article, a feed, a redirect hop or robots.txt, goes through the same
path: scheme and loop checks, robots.txt (not for robots.txt itself), per-host politeness, then
ingest.netguard: the SSRF guard and the deadline in the network backend, and a body read that
stops at the size cap. This module decides what to fetch and what a response means; every
failure is an IngestError with a stable reason code, nothing returns None.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx
import redis

from ingest import netguard
from ingest.config import Settings
from ingest.errors import IngestError, InvalidURL, PermanentError, TransientError
from ingest.models import Fetched
from ingest.politeness import Politeness
from ingest.robots import MAX_ROBOTS_BYTES, Robots, RobotsAnswer
from ingest.urls import host_of, validate_url

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# 204 No Content and 205 Reset Content: a success that has no document by definition.
NO_CONTENT_STATUSES = frozenset({204, 205})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Feeds are often served as text/html, text/plain or application/octet-stream, and sitemaps as
# application/gzip: those are judged by their bytes (ingest.feeds.sniff); only types that are
# never a feed are refused by their label.
NOT_FEED_PREFIXES = ("image/", "audio/", "video/", "font/", "model/")
NOT_FEED_TYPES = frozenset(
    {
        "application/pdf",
        "application/zip",
        "application/msword",
        "application/vnd.ms-excel",
        "application/wasm",
    }
)
ARTICLE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
FEED_ACCEPT = (
    "application/rss+xml,application/atom+xml,application/feed+json;q=0.9,"
    "application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.1"
)
ROBOTS_ACCEPT = "text/plain,*/*;q=0.1"
# WHATWG MIME Sniffing 7.1: what an HTML document without a Content-Type starts with.
_HTML_SIGNATURES = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
    b"<!--",
)


@dataclass(frozen=True)
class FeedResponse:
    """A feed document (status 2xx) or "not modified" (status 304, empty body)."""

    url: str
    final_url: str
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str  # the header as sent, charset included, for feedparser
    headers: dict[str, str] = field(default_factory=dict)  # lowercase names: caching hints


@dataclass(frozen=True)
class _Hop:
    """The final response of a redirect chain, its URL, and when it must be fully read."""

    response: httpx.Response
    url: str
    ends_at: float


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or HTTP-date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)  # IMF-fixdate and the two obsolete HTTP date forms
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 5.6.7: HTTP dates are always UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_content_type(value: str | None) -> tuple[str, str | None]:
    """(lowercase media type, charset or None) of a Content-Type header; ('', None) if absent."""
    if not value:
        return "", None
    media, *params = value.split(";")
    charset = None
    for param in params:
        name, _, arg = param.partition("=")
        if name.strip().lower() == "charset" and arg.strip().strip("\"'"):
            charset = arg.strip().strip("\"'").lower()
    return media.strip().lower(), charset


def looks_like_html(body: bytes) -> bool:
    """Sniff an untyped body as HTML the way browsers do (WHATWG MIME Sniffing 7.1)."""
    head = body[:1024].removeprefix(b"\xef\xbb\xbf").lstrip(b"\t\n\x0c\r ").lower()
    if head.startswith(b"<?xml"):
        return b"<html" in head  # XHTML with an XML declaration first
    return any(head.startswith(sig) and head[len(sig) : len(sig) + 1] in (b" ", b">") for sig in _HTML_SIGNATURES)


class _Redirect(Exception):
    """Raised by a response hook so that httpx hands redirects over without parsing Location."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def _intercept_redirect(response: httpx.Response) -> None:
    """Response hook: stop at a redirect before httpx parses its Location itself.

    Even with follow_redirects=False, httpx builds the next request from Location, and raises
    its own errors for URLs such as "javascript:..." before we could judge them.
    httpx closes the response when a hook raises.
    """
    if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
        raise _Redirect(response.headers["location"])


def _normal(url: str) -> str:
    """URL without its fragment, as sent on the wire: the unit of redirect-loop detection."""
    with netguard.translate_errors(url):
        return str(httpx.URL(url).copy_with(fragment=None))


class Fetcher:
    """Fetch articles and feeds safely; one per worker process or thread, reusing its connections.

    Not for concurrent use by several threads: each fetch starts by clearing the client's
    cookie jar. A client passed in gets a response hook added (see _intercept_redirect).
    """

    def __init__(
        self, settings: Settings, redis: redis.Redis | None = None, client: httpx.Client | None = None
    ) -> None:
        self.settings = settings
        self._owns_client = client is None
        self._client = client if client is not None else netguard.build_client(settings)
        hooks = self._client.event_hooks["response"]
        if _intercept_redirect not in hooks:
            hooks.append(_intercept_redirect)  # a client we were given gets the hook too
        self._politeness = Politeness(settings, redis)
        self._robots = Robots(settings, redis, self._fetch_robots)
        # time.monotonic() by which the attempt in progress (all hops, robots.txt, waits) must end
        self._attempt_ends: float | None = None

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this Fetcher created it."""
        if self._owns_client:
            self._client.close()

    @contextmanager
    def _attempt(self) -> Iterator[None]:
        """One deadline, settings.attempt_deadline, for everything fetched inside the block."""
        self._attempt_ends = time.monotonic() + self.settings.attempt_deadline
        try:
            yield
        finally:
            self._attempt_ends = None

    def _budget(self, url: str, margin: float = 0.0) -> float:
        """Seconds left of the attempt; TransientError(timeout) when no more than margin are."""
        if self._attempt_ends is None:
            return self.settings.attempt_deadline
        left = self._attempt_ends - time.monotonic()
        if left <= margin:
            limit = self.settings.attempt_deadline
            raise TransientError("timeout", f"{url}: the attempt did not finish within {limit:g}s")
        return left

    def fetch_article(self, url: str) -> Fetched:
        """GET an HTML page: robots, politeness, guard, caps; only text/html or XHTML is accepted."""
        try:
            url = validate_url(url)
            with self._attempt(), self._open(url, {"Accept": ARTICLE_ACCEPT}) as hop:
                self._raise_for_status(hop)
                if hop.response.status_code in NO_CONTENT_STATUSES:
                    raise PermanentError("no_content", f"{hop.url} answered {hop.response.status_code} (no content)")
                media, charset = parse_content_type(hop.response.headers.get("content-type"))
                if media and media not in HTML_TYPES:
                    raise PermanentError("not_html", f"{hop.url} is {media}")
                body = self._read_body(hop, self.settings.max_body_bytes)
                if not media:
                    if not looks_like_html(body):
                        raise PermanentError("not_html", f"{hop.url} has no Content-Type and is not HTML")
                    media = "text/html"
                status = hop.response.status_code
        except IngestError as exc:
            log.info("article fetch failed: %s", exc, extra={"article_url": url, "reason": exc.reason})
            raise
        log.debug("article fetched", extra={"article_url": url, "bytes": len(body)})
        return Fetched(url, hop.url, status, media, body, charset)

    def fetch_feed(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FeedResponse:
        """Conditional GET of a feed; status 304 (empty body) when the server says nothing changed."""
        headers = {"Accept": FEED_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            url = validate_url(url)
            with self._attempt(), self._open(url, headers) as hop:
                response = hop.response
                content_type = response.headers.get("content-type", "")
                new_etag = response.headers.get("etag")
                new_modified = response.headers.get("last-modified")
                if response.status_code == 304:
                    # RFC 9110 15.4.5: a 304 may omit the validators; the ones we sent still hold.
                    return FeedResponse(
                        url,
                        hop.url,
                        304,
                        b"",
                        new_etag or etag,
                        new_modified or last_modified,
                        content_type,
                        dict(response.headers),
                    )
                self._raise_for_status(hop)
                if response.status_code in NO_CONTENT_STATUSES:
                    raise PermanentError("no_content", f"{hop.url} answered {response.status_code} (no content)")
                media, _ = parse_content_type(content_type)
                if media.startswith(NOT_FEED_PREFIXES) or media in NOT_FEED_TYPES:
                    raise PermanentError("not_feed", f"{hop.url} is {media}")
                body = self._read_body(hop, self.settings.max_body_bytes)
                status, headers = response.status_code, dict(response.headers)
                return FeedResponse(url, hop.url, status, body, new_etag, new_modified, content_type, headers)
        except IngestError as exc:
            log.info("feed fetch failed: %s", exc, extra={"feed_url": url, "reason": exc.reason})
            raise

    def _fetch_robots(self, url: str) -> RobotsAnswer:
        """GET a robots.txt for ingest.robots: same client, guard and politeness; no robots check."""
        with self._open(url, {"Accept": ROBOTS_ACCEPT}, check_robots=False) as hop:
            status = hop.response.status_code
            if not 200 <= status < 300:
                retry_after = parse_retry_after(hop.response.headers.get("retry-after"))
                return RobotsAnswer(status, retry_after=retry_after)
            limit = min(self.settings.max_body_bytes, MAX_ROBOTS_BYTES)
            return RobotsAnswer(status, self._read_body(hop, limit, truncate=True))

    @contextmanager
    def _open(self, url: str, headers: dict[str, str], *, check_robots: bool = True) -> Iterator[_Hop]:
        """Send GET, following redirects by hand so each hop is checked; yield the final response."""
        # A cookie jar that lives as long as the worker would grow without bound and link
        # unrelated fetches; cookies only need to survive one redirect chain.
        self._client.cookies.clear()
        current = _normal(url)
        chain = [current]
        while True:
            if check_robots:
                try:
                    self._robots.check(current)  # its robots.txt request spends the same budget
                except TransientError:
                    # robots.txt cut short by the attempt's own deadline: the outcome is a timeout
                    self._budget(current, margin=0.1)
                    raise
            # A slot further away than the attempt has left is not waited for (host_busy).
            self._politeness.wait(host_of(current), max_wait=self._budget(current))
            with netguard.deadline(min(self.settings.fetch_deadline, self._budget(current))) as ends_at:
                try:
                    with netguard.translate_errors(current):
                        request = self._client.build_request("GET", current, headers=headers)
                        response = self._client.send(request, stream=True)
                except _Redirect as redirect:
                    location = redirect.location
                else:
                    try:
                        yield _Hop(response, current, ends_at)
                        return
                    finally:
                        response.close()
            current = self._next_hop(current, location, chain)

    def _next_hop(self, current: str, location: str, chain: list[str]) -> str:
        """Resolve a Location header against the current URL and check it may be followed."""
        try:
            target = urljoin(current, location.strip())
            scheme = urlsplit(target).scheme.lower()
        except ValueError as exc:  # e.g. Location: http://[::1
            raise InvalidURL(f"{current} redirects to {location!r}: {exc}") from None
        if scheme not in ("http", "https"):
            raise PermanentError("unsupported_scheme", f"{current} redirects to {target}")
        try:
            # httpx percent-encodes what browsers would (spaces, non-ASCII) before the check
            target = validate_url(_normal(target))
        except InvalidURL as exc:
            raise InvalidURL(f"{current} redirects to an invalid URL: {exc.detail}") from None
        if target in chain:
            raise PermanentError("redirect_loop", " -> ".join([*chain, target]))
        if len(chain) > self.settings.max_redirects:
            limit = self.settings.max_redirects
            raise PermanentError("too_many_redirects", f"more than {limit} redirects from {chain[0]}")
        log.debug("redirect", extra={"article_url": chain[0], "location": target})
        chain.append(target)
        return target

    def _raise_for_status(self, hop: _Hop) -> None:
        """Turn a non-2xx final status into http_<status>, transient for 408, 429 and 5xx."""
        status = hop.response.status_code
        if 200 <= status < 300:
            return
        reason, detail = f"http_{status}", f"{hop.url} answered {status}"
        if status in (408, 429) or 500 <= status < 600:
            retry_after = parse_retry_after(hop.response.headers.get("retry-after"))
            raise TransientError(reason, detail, retry_after=retry_after)
        raise PermanentError(reason, detail)

    def _read_body(self, hop: _Hop, limit: int, *, truncate: bool = False) -> bytes:
        """The body of the final response, within the size cap and the response's deadline."""
        return netguard.read_body(hop.response, hop.url, limit, hop.ends_at, truncate=truncate)
