"""robots.txt (RFC 9309) through the Fetcher: rules, status codes, caching in Redis and in process."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler

import pytest
import redis

from ingest import keys
from ingest.config import Settings
from ingest.errors import PermanentError, TransientError
from ingest.fetch import Fetcher
from ingest.robots import origin_of, robots_url
from tests.httpsite import Page, Site

HTML = "<html><body><p>ok</p></body></html>"
RULES = """\
User-agent: *
Disallow: /

# our own group wins over the catch-all (RFC 9309 2.2.1)
User-agent: storyline-ingest
Disallow: /private
Allow: /private/open
"""


@pytest.mark.parametrize(
    ("url", "origin", "robots"),
    [
        ("http://Example.org/a/b?c#d", "http://example.org:80", "http://example.org/robots.txt"),
        ("https://example.org:8443/x", "https://example.org:8443", "https://example.org:8443/robots.txt"),
        ("https://user:pw@example.org/", "https://example.org:443", "https://example.org/robots.txt"),
        ("http://[::1]:8080/p", "http://[::1]:8080", "http://[::1]:8080/robots.txt"),
    ],
)
def test_origin_and_robots_url(url: str, origin: str, robots: str) -> None:
    assert (origin_of(url), robots_url(url)) == (origin, robots)


def test_disallowed_page_is_never_requested(fetcher: Fetcher, site: Site, settings: Settings) -> None:
    site.add("/robots.txt", RULES, content_type="text/plain")
    for path in ("/news/1", "/private/open/2", "/private/x"):
        site.add(path, HTML)
    assert fetcher.fetch_article(site.url("/news/1")).status == 200
    assert fetcher.fetch_article(site.url("/private/open/2")).status == 200
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(site.url("/private/x"))
    assert err.value.reason == "robots_disallowed"
    assert site.hits("/private/x") == 0
    robots_headers = site.requests[0][1]
    assert robots_headers["user-agent"] == settings.user_agent


def test_redirect_hops_are_checked_too(fetcher: Fetcher, site: Site) -> None:
    site.add("/robots.txt", RULES, content_type="text/plain")
    site.add("/go", "", status=302, headers={"Location": "/private/x"})
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(site.url("/go"))
    assert err.value.reason == "robots_disallowed"
    assert site.hits("/private/x") == 0


def test_feeds_obey_robots(fetcher: Fetcher, site: Site) -> None:
    site.add("/robots.txt", "User-agent: *\nDisallow: /feeds/\n", content_type="text/plain")
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_feed(site.url("/feeds/all.xml"))
    assert err.value.reason == "robots_disallowed"


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_robots_4xx_allows_everything(fetcher: Fetcher, site: Site, status: int) -> None:
    site.add("/robots.txt", "User-agent: *\nDisallow: /\n", status=status, content_type="text/plain")
    assert fetcher.fetch_article(site.add("/a", HTML)).status == 200


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, 30.0), (429, 5.0)])
def test_robots_5xx_is_transient_and_not_cached(
    fetcher: Fetcher, site: Site, r: redis.Redis, status: int, retry_after: float | None
) -> None:
    headers = {"Retry-After": str(int(retry_after))} if retry_after else {}
    site.add("/robots.txt", "oops", status=status, content_type="text/plain", headers=headers)
    site.add("/a", HTML)
    with pytest.raises(TransientError) as err:
        fetcher.fetch_article(site.url("/a"))
    assert (err.value.reason, err.value.retry_after) == ("robots_unavailable", retry_after)
    assert site.hits("/a") == 0  # RFC 9309 2.3.1.4: unreachable means complete disallow
    assert r.get(keys.robots(origin_of(site.base))) is None
    site.add("/robots.txt", "", status=404)  # the server recovers: the retry goes through
    assert fetcher.fetch_article(site.url("/a")).status == 200


def test_robots_timeout_is_robots_unavailable(settings: Settings, r: redis.Redis, site: Site) -> None:
    site.add("/robots.txt", "User-agent: *\n", content_type="text/plain", delay=1.0)
    with Fetcher(settings.model_copy(update={"read_timeout": 0.3}), r) as fetcher, pytest.raises(TransientError) as err:
        fetcher.fetch_article(site.add("/a", HTML))
    assert err.value.reason == "robots_unavailable"
    assert "timeout" in err.value.detail


def test_robots_redirect_loop_means_no_rules(fetcher: Fetcher, site: Site) -> None:
    # RFC 9309 2.3.1.2: a robots.txt behind too many redirects MAY be treated as unavailable.
    site.add("/robots.txt", "", status=301, headers={"Location": "/robots2.txt"})
    site.add("/robots2.txt", "", status=301, headers={"Location": "/robots.txt"})
    assert fetcher.fetch_article(site.add("/a", HTML)).status == 200


def test_robots_redirect_is_followed(fetcher: Fetcher, site: Site) -> None:
    site.add("/robots.txt", "", status=301, headers={"Location": "/real-robots.txt"})
    site.add("/real-robots.txt", "User-agent: *\nDisallow: /a\n", content_type="text/plain")
    with pytest.raises(PermanentError) as err:
        fetcher.fetch_article(site.add("/a", HTML))
    assert err.value.reason == "robots_disallowed"


def test_oversized_robots_is_truncated_not_refused(settings: Settings, r: redis.Redis, site: Site) -> None:
    # RFC 9309 2.5: rules past the parsing limit are ignored; the ones before it still apply.
    body = "User-agent: *\nDisallow: /a\n" + "# padding\n" * 500 + "Disallow: /b\n"
    site.add("/robots.txt", body, content_type="text/plain")
    with Fetcher(settings.model_copy(update={"max_body_bytes": 2000}), r) as fetcher:
        with pytest.raises(PermanentError) as err:
            fetcher.fetch_article(site.add("/a", HTML))
        assert err.value.reason == "robots_disallowed"
        assert fetcher.fetch_article(site.add("/b", HTML)).status == 200


def test_robots_is_cached_in_redis_across_fetchers(settings: Settings, r: redis.Redis, site: Site) -> None:
    site.add("/robots.txt", RULES, content_type="text/plain")
    site.add("/a", HTML)
    with Fetcher(settings, r) as first:
        first.fetch_article(site.url("/a"))
    with Fetcher(settings, r) as second:  # another worker: only Redis is shared
        second.fetch_article(site.url("/a"))
        with pytest.raises(PermanentError):
            second.fetch_article(site.url("/private/x"))
    assert site.hits("/robots.txt") == 1
    key = keys.robots(origin_of(site.base))
    assert r.get(key) == RULES.encode()
    assert 0 < r.ttl(key) <= settings.robots_ttl


def test_4xx_robots_is_cached_too(fetcher: Fetcher, site: Site) -> None:
    site.add("/a", HTML)
    fetcher.fetch_article(site.url("/a"))
    fetcher.fetch_article(site.url("/a"))
    assert site.hits("/robots.txt") == 1


def test_without_redis_robots_is_cached_in_process(settings: Settings, site: Site) -> None:
    hits: list[float] = []

    def robots(handler: BaseHTTPRequestHandler) -> Page:
        hits.append(time.monotonic())
        return Page(b"User-agent: *\nDisallow: /no\n", 200, {"Content-Type": "text/plain"})

    site.route("/robots.txt", robots)
    site.add("/a", HTML)
    with Fetcher(settings, None) as fetcher:
        fetcher.fetch_article(site.url("/a"))
        fetcher.fetch_article(site.url("/a"))
        with pytest.raises(PermanentError):
            fetcher.fetch_article(site.url("/no"))
    assert len(hits) == 1
    with Fetcher(settings.model_copy(update={"robots_ttl": 1}), None) as fetcher:
        fetcher.fetch_article(site.url("/a"))
        time.sleep(1.05)  # the in-process entry expires like the Redis key would
        fetcher.fetch_article(site.url("/a"))
    assert len(hits) == 3


def test_each_process_keeps_robots_but_never_past_the_shared_entry(
    settings: Settings, r: redis.Redis, site: Site
) -> None:
    site.add("/robots.txt", RULES, content_type="text/plain")
    site.add("/a", HTML)
    key = keys.robots(origin_of(site.base))
    r.set(key, b"User-agent: *\nDisallow: /b\n", px=400)  # another worker's copy, expiring soon
    with Fetcher(settings, r) as fetcher:
        fetcher.fetch_article(site.url("/a"))  # allowed by the copy in Redis: not downloaded
        assert site.hits("/robots.txt") == 0
        r.set(key, b"User-agent: *\nDisallow: /a\n", keepttl=True)
        fetcher.fetch_article(site.url("/a"))  # the process's own copy answers: no Redis read
        time.sleep(0.45)  # the shared entry expired, and the process's copy with it
        with pytest.raises(PermanentError):
            fetcher.fetch_article(site.url("/private/x"))
    assert site.hits("/robots.txt") == 1
