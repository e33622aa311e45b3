"""News sitemaps and sitemap indexes as sources, served by a real local HTTP server."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
import redis

from ingest.config import Settings
from ingest.feeds import FeedStore, fetch_and_parse, poll
from ingest.fetch import Fetcher
from ingest.jobs import Jobs
from ingest.publish import Publisher
from ingest.report import feed_health
from tests.httpsite import Site
from tests.test_feeds import ListDispatcher
from tests.test_feeds_schedule import Poll

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


def news_sitemap(urls: list[tuple[str, str, str]]) -> str:
    rows = "".join(
        f"<url><loc>{loc}</loc><news:news><news:publication><news:name>Wire</news:name>"
        f"<news:language>en</news:language></news:publication>"
        f"<news:publication_date>{date}</news:publication_date><news:title>{title}</news:title></news:news></url>"
        for loc, date, title in urls
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset {NS}>{rows}</urlset>'


def index(children: list[tuple[str, str]]) -> str:
    rows = "".join(f"<sitemap><loc>{loc}</loc><lastmod>{mod}</lastmod></sitemap>" for loc, mod in children)
    return f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex {NS}>{rows}</sitemapindex>'


@pytest.fixture
def poller(r: redis.Redis, settings: Settings) -> Iterator[tuple[Poll, FeedStore, ListDispatcher]]:
    small = settings.model_copy(update={"sitemap_max_files": 3, "sitemap_max_depth": 2})
    store, jobs, dispatcher = FeedStore(r, small), Jobs(r), ListDispatcher()
    fetcher = Fetcher(small, r)

    def run(url: str) -> str:
        store.add(url)
        return poll(store, fetcher, jobs, dispatcher, Publisher(r, small), url)

    yield run, store, dispatcher
    fetcher.close()


def test_news_sitemap_gives_titles_dates_and_only_new_urls(site: Site, poller, fetcher: Fetcher) -> None:  # type: ignore[no-untyped-def]
    run, _, dispatcher = poller
    a, b, c = site.url("/a"), site.url("/b"), site.url("/c")
    url = site.add("/news-sitemap.xml", news_sitemap([(a, "2025-03-19T08:00:00+00:00", "Pause agreed")]))
    parsed = fetch_and_parse(fetcher, url).feed
    assert parsed.kind == "urlset"
    (entry,) = parsed.entries
    assert entry.title == "Pause agreed" and entry.published is not None and entry.published.day == 19
    assert run(url) == "ok"
    site.add("/news-sitemap.xml", news_sitemap([(b, "2025-03-20", "Second"), (a, "2025-03-19", "x"), (c, "", "t")]))
    assert run(url) == "ok"
    assert [j.url for j in dispatcher.articles] == [a, b, c]


def test_index_followed_to_bounded_depth_and_size_gzip_included(site: Site, poller) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    u = site.url
    site.add(
        "/s/1.xml.gz",
        gzip.compress(news_sitemap([(u("/one"), "2025-03-19", "1")]).encode()),
        content_type="application/x-gzip",
    )
    site.add("/s/2.xml", news_sitemap([(u("/two"), "2025-03-19", "2")]), content_type="application/xml")
    site.add("/s/nested.xml", index([(u("/s/3.xml"), "2025-03-18"), (u("/s/deeper.xml"), "2025-03-18")]))
    site.add("/s/3.xml", news_sitemap([(u("/three"), "2025-03-18", "3")]))
    site.add("/s/deeper.xml", index([(u("/s/too-deep.xml"), "2025-03-18")]))  # depth 3: not followed
    site.add("/s/old.xml", news_sitemap([(u("/old"), "2020-01-01", "old")]))  # fourth child: over the limit
    root = site.add(
        "/sitemap_index.xml",
        index(
            [
                (u("/s/old.xml"), "2020-01-01"),
                (u("/s/1.xml.gz"), "2025-03-20"),
                (u("/s/2.xml"), "2025-03-19"),
                (u("/s/nested.xml"), "2025-03-18"),
            ]
        ),
    )
    assert run(root) == "ok"
    assert sorted(j.url for j in dispatcher.articles) == sorted([u("/one"), u("/two"), u("/three")])
    health = feed_health(store.all()[0])
    assert health["entries_skipped"] == {"sitemap_over_limit": 1, "sitemap_too_deep": 1}
    assert site.hits("/s/too-deep.xml") == 0 and site.hits("/s/old.xml") == 0
    # unchanged children (same lastmod) are not fetched again
    before = site.hits("/s/2.xml")
    assert run(root) == "ok"
    assert site.hits("/s/2.xml") == before


def test_a_broken_child_sitemap_is_a_problem_not_a_failure(site: Site, poller) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    site.add("/s/ok.xml", news_sitemap([(site.url("/fine"), "2025-03-19", "f")]))
    root = site.add(
        "/idx.xml", index([(site.url("/s/ok.xml"), "2025-03-19"), (site.url("/s/missing.xml"), "2025-03-19")])
    )
    assert run(root) == "ok"
    assert [j.url for j in dispatcher.articles] == [site.url("/fine")]
    assert "missing.xml: http_404" in feed_health(store.all()[0])["last_problem"]
