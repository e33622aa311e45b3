"""Fetch stage against a real local HTTP server and a real Redis: statuses, types, caps, redirects."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import redis

from ingest.config import Settings
from ingest.errors import InvalidURL, PermanentError, TransientError
from ingest.fetch import Fetcher, looks_like_html, parse_content_type, parse_retry_after
from tests.httpsite import Page, Site

HTML = "<!doctype html><html><head><title>t</title></head><body><p>Hello</p></body></html>"


def make(settings: Settings, r: redis.Redis | None, **update: Any) -> Fetcher:
    """A Fetcher whose settings differ from the test defaults."""
    return Fetcher(settings.model_copy(update=update), r)


# ---- pure helpers ----

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 0 ", 0.0, id="zero-padded"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="not-an-integer"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("Sat, 01 Mar 2025 12:01:30 GMT", 90.0, id="imf-fixdate"),
        pytest.param("Saturday, 01-Mar-25 12:01:30 GMT", 90.0, id="rfc850-date"),
        pytest.param("Sat Mar  1 12:01:30 2025", 90.0, id="asctime-date"),
        pytest.param("Sat, 01 Mar 2025 11:00:00 GMT", 0.0, id="date-in-the-past"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ("", None)),
        ("text/html", ("text/html", None)),
        ('Text/HTML; Charset="ISO-8859-1"', ("text/html", "iso-8859-1")),
        ("application/xhtml+xml;charset=utf-8;q=1", ("application/xhtml+xml", "utf-8")),
    ],
)
def test_parse_content_type(header: str | None, expected: tuple[str, str | None]) -> None:
    assert parse_content_type(header) == expected


@pytest.mark.parametrize(
    ("body", "html"),
    [
        (b"\xef\xbb\xbf  <!DOCTYPE html><html>", True),
        (b"\n<html lang=en>", True),
        (b"<p>x</p>", True),
        (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">', True),
        (b'<?xml version="1.0"?><rss>', False),
        (b"\x89PNG\r\n\x1a\n", False),
        (b"%PDF-1.7", False),
        (b"<pre>x", False),  # <p followed by "r" is not the <p> tag
    ],
)
def test_looks_like_html(body: bytes, html: bool) -> None:
    assert looks_like_html(body) is html


# ---- articles ----


def test_html_ok_sends_user_agent_and_returns_raw_bytes_with_charset(
    fetcher: Fetcher, site: Site, settings: Settings
) -> None:
    body = "<html><body>Привіт</body></html>".encode("windows-1251", errors="replace")
    url = site.add("/a", body, content_type="text/html; charset=windows-1251")
    got = fetcher.fetch_article(url)
    assert (got.url, got.final_url, got.status) == (url, url, 200)
    assert (got.content_type, got.charset, got.body) == ("text/html", "windows-1251", body)
    assert [p for p, _ in site.requests] == ["/robots.txt", "/a"]
    for _, headers in site.requests:
        assert headers["user-agent"] == settings.user_agent
    assert "text/html" in site.requests[1][1]["accept"]


def test_xhtml_and_untyped_html_are_accepted(fetcher: Fetcher, site: Site) -> None:
    xhtml = site.add("/x", HTML, content_type="application/xhtml+xml")
    assert fetcher.fetch_article(xhtml).content_type == "application/xhtml+xml"
    site.pages["/untyped"] = Page(HTML.encode(), 200, {})  # no Content-Type header at all
    got = fetcher.fetch_article(site.url("/untyped"))
    assert (got.content_type, got.charset) == ("text/html", None)


@pytest.mark.parametrize("content_type", ["image/png", "application/pdf", "application/json"])
def test_non_html_is_refused(fetcher: Fetcher, site: Site, content_type: str) -> None:
    url = site.add("/f", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, content_type=content_type)
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(url)
    assert err.value.reason == "not_html"


def test_untyped_binary_is_refused(fetcher: Fetcher, site: Site) -> None:
    site.pages["/bin"] = Page(b"%PDF-1.7 binary", 200, {})
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(site.url("/bin"))
    assert err.value.reason == "not_html"


def test_404_is_permanent(fetcher: Fetcher, site: Site) -> None:
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(site.url("/missing"))
    assert err.value.reason == "http_404"


def test_503_is_transient_with_retry_after_seconds(fetcher: Fetcher, site: Site) -> None:
    url = site.add("/busy", "down", status=503, headers={"Retry-After": "120"})
    with pytest.raises(TransientError) as err:
        fetcher.fetch_article(url)
    assert (err.value.reason, err.value.retry_after) == ("http_503", 120.0)


def test_429_with_http_date_retry_after(fetcher: Fetcher, site: Site) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    url = site.add("/slow-down", "", status=429, headers={"Retry-After": when})
    with pytest.raises(TransientError) as err:
        fetcher.fetch_article(url)
    assert err.value.reason == "http_429"
    assert err.value.retry_after is not None and 55 <= err.value.retry_after <= 60


@pytest.mark.parametrize("url", ["", "not a url", "http://", "ftp://example.org/x", "http://h:99999/"])
def test_invalid_url(fetcher: Fetcher, url: str) -> None:
    with pytest.raises(InvalidURL) as err:
        fetcher.fetch_article(url)
    assert err.value.reason == "invalid_url"


def test_connection_refused_is_transient(fetcher: Fetcher) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError) as err:
        fetcher.fetch_article(f"http://127.0.0.1:{port}/")
    assert err.value.reason == "connect_error"


def test_unknown_host_is_dns_error(settings: Settings, r: redis.Redis) -> None:
    with make(settings, r) as fetcher, pytest.raises(TransientError) as err:
        fetcher.fetch_feed("http://no-such-host.invalid/feed")
    assert err.value.reason == "dns_error"


# ---- caps: size and time ----


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_cap_is_too_large(settings: Settings, r: redis.Redis, site: Site, chunked: bool) -> None:
    url = site.add("/big", b"<html>" + b"x" * 5000, chunked=chunked)
    with make(settings, r, max_body_bytes=1000) as fetcher, pytest.raises(PermanentError) as err:
        fetcher.fetch_article(url)
    assert err.value.reason == "too_large"
    assert ("Content-Length" in err.value.detail) is not chunked  # refused before reading, if it can


def test_body_at_cap_is_fine(settings: Settings, r: redis.Redis, site: Site) -> None:
    body = (b"<html>" + b"x" * 2000)[:1000]
    url = site.add("/exact", body, chunked=True)
    with make(settings, r, max_body_bytes=1000) as fetcher:
        assert fetcher.fetch_article(url).body == body


def test_compressed_bodies_are_decoded_and_capped_after_decoding(
    settings: Settings, r: redis.Redis, site: Site
) -> None:
    plain = HTML.encode()
    gz = site.add("/gz", gzip.compress(plain), headers={"Content-Encoding": "gzip"})
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated = site.add("/raw-deflate", raw.compress(plain) + raw.flush(), headers={"Content-Encoding": "deflate"})
    bomb = site.add("/bomb", gzip.compress(b"<html>" + b" " * 2_000_000), headers={"Content-Encoding": "gzip"})
    with make(settings, r, max_body_bytes=100_000) as fetcher:
        assert fetcher.fetch_article(gz).body == plain
        assert fetcher.fetch_article(deflated).body == plain
        with pytest.raises(PermanentError) as err:
            fetcher.fetch_article(bomb)  # about 2 KB on the wire, 2 MB decoded
    assert err.value.reason == "too_large"


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("br", b"\x1b\x03\x00"), ("gzip", b"<html>not gzip at all"), ("gzip, gzip", b"")],
)
def test_unusable_content_encoding_is_bad_encoding(fetcher: Fetcher, site: Site, encoding: str, body: bytes) -> None:
    url = site.add("/enc", body, headers={"Content-Encoding": encoding})
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(url)
    assert err.value.reason == "bad_encoding"


def test_slow_drip_body_hits_the_deadline(settings: Settings, r: redis.Redis, site: Site) -> None:
    # Each 1 KiB arrives well within the read timeout; the whole body would take 5 s.
    url = site.add("/drip", b"<html>" + b"x" * 20_000, drip=0.25)
    with make(settings, r, fetch_deadline=1.0, read_timeout=2.0) as fetcher:
        started = time.monotonic()
        with pytest.raises(TransientError) as err:
            fetcher.fetch_article(url)
    assert err.value.reason == "timeout"
    assert time.monotonic() - started < 2.0


def test_slow_response_hits_the_read_timeout(settings: Settings, r: redis.Redis, site: Site) -> None:
    url = site.add("/sleepy", HTML, delay=2.0)
    with make(settings, r, read_timeout=0.5) as fetcher, pytest.raises(TransientError) as err:
        fetcher.fetch_article(url)
    assert err.value.reason == "timeout"


def test_slow_drip_headers_hit_the_deadline(settings: Settings, r: redis.Redis) -> None:
    """A server that sends its status line and headers a byte at a time, never finishing them."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                try:
                    for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 1000:
                        if stop.wait(0.1):
                            break
                        conn.sendall(bytes([byte]))
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/"
    try:
        with make(settings, r, fetch_deadline=1.0, read_timeout=1.0) as fetcher:
            started = time.monotonic()
            with pytest.raises(TransientError) as err:
                fetcher.fetch_feed(url)
            elapsed = time.monotonic() - started
    finally:
        stop.set()
        server.close()
        thread.join(2)
    assert err.value.reason == "robots_unavailable"  # robots.txt is the first request it drips on
    assert "timeout" in err.value.detail
    assert elapsed < 2.0


# ---- redirects ----


def _redirect(site: Site, path: str, location: str, status: int = 302) -> str:
    return site.add(path, "", status=status, headers={"Location": location})


def test_relative_redirects_are_followed(fetcher: Fetcher, site: Site) -> None:
    start = _redirect(site, "/old", "new?x=1")
    _redirect(site, "/new?x=1", "/final#section", status=301)
    site.add("/final", HTML)
    got = fetcher.fetch_article(start)
    assert (got.url, got.final_url) == (start, site.url("/final"))


def test_redirect_loop(fetcher: Fetcher, site: Site) -> None:
    _redirect(site, "/a", "/b")
    _redirect(site, "/b", site.url("/a#again"))
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(site.url("/a"))
    assert err.value.reason == "redirect_loop"


@pytest.mark.parametrize(("hops", "ok"), [(5, True), (6, False)])
def test_at_most_max_redirects(fetcher: Fetcher, site: Site, hops: int, ok: bool) -> None:
    for i in range(hops):
        _redirect(site, f"/r{i}", f"/r{i + 1}", status=307)
    site.add(f"/r{hops}", HTML)
    if ok:
        assert fetcher.fetch_article(site.url("/r0")).final_url == site.url(f"/r{hops}")
        return
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(site.url("/r0"))
    assert err.value.reason == "too_many_redirects"
    assert site.hits(f"/r{hops}") == 0


@pytest.mark.parametrize("location", ["ftp://example.org/file", "file:///etc/passwd", "javascript:alert(1)"])
def test_redirect_to_other_scheme(fetcher: Fetcher, site: Site, location: str) -> None:
    url = _redirect(site, "/ftp", location)
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(url)
    assert err.value.reason == "unsupported_scheme"


# ---- feeds ----

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def test_feed_conditional_get_with_etag(fetcher: Fetcher, site: Site) -> None:
    def feed(handler: BaseHTTPRequestHandler) -> Page:
        if handler.headers.get("If-None-Match") == '"v1"':
            return Page(b"", 304, {"ETag": '"v1"'})
        return Page(
            RSS,
            200,
            {
                "Content-Type": "application/rss+xml; charset=utf-8",
                "ETag": '"v1"',
                "Last-Modified": "Sat, 01 Mar 2025 12:00:00 GMT",
            },
        )

    url = site.route("/feed", feed)
    first = fetcher.fetch_feed(url)
    assert (first.status, first.body, first.etag) == (200, RSS, '"v1"')
    assert first.content_type == "application/rss+xml; charset=utf-8"
    assert first.last_modified == "Sat, 01 Mar 2025 12:00:00 GMT"
    second = fetcher.fetch_feed(url, etag=first.etag, last_modified=first.last_modified)
    assert (second.status, second.body, second.etag) == (304, b"", '"v1"')
    assert second.last_modified == first.last_modified  # the 304 omitted it: ours still holds
    sent = site.requests[-1][1]
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Sat, 01 Mar 2025 12:00:00 GMT"
    assert "application/rss+xml" in sent["accept"]
    assert sent["user-agent"] == fetcher.settings.user_agent


@pytest.mark.parametrize("content_type", ["text/html", "text/plain", "application/xml", "application/atom+xml"])
def test_mislabelled_feeds_are_accepted(fetcher: Fetcher, site: Site, content_type: str) -> None:
    url = site.add("/feed", RSS, content_type=content_type)
    assert fetcher.fetch_feed(url).body == RSS


@pytest.mark.parametrize("content_type", ["image/jpeg", "audio/mpeg", "video/mp4", "application/pdf"])
def test_non_feed_types_are_refused(fetcher: Fetcher, site: Site, content_type: str) -> None:
    url = site.add("/feed", b"\xff\xd8\xff", content_type=content_type)
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_feed(url)
    assert err.value.reason == "not_feed"


def test_feeds_follow_redirects_and_caps(settings: Settings, r: redis.Redis, site: Site) -> None:
    _redirect(site, "/rss", "/feed.xml", status=301)
    site.add("/feed.xml", RSS + b"<!--" + b"x" * 3000 + b"-->", content_type="application/rss+xml")
    with make(settings, r, max_body_bytes=1000) as fetcher, pytest.raises(PermanentError) as err:
        fetcher.fetch_feed(site.url("/rss"))
    assert err.value.reason == "too_large"
    assert site.hits("/feed.xml") == 1
