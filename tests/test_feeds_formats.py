"""Feeds as publishers serve them: labels that lie, charsets, JSON Feed, and every entry accounted for.

Each feed is written here and served by a real HTTP server on 127.0.0.1; polls run against a real Redis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
import redis

from ingest import keys
from ingest.config import Settings
from ingest.errors import PermanentError
from ingest.feeds import FeedStore, fetch_and_parse, parse_document, poll
from ingest.fetch import Fetcher
from ingest.jobs import Jobs
from ingest.publish import Publisher
from ingest.report import feed_health, run_summary
from tests.httpsite import Site
from tests.test_feeds import ListDispatcher

CYRILLIC = "Перемирие в энергетике"


def rss(items: str, decl: str = '<?xml version="1.0"?>', extra: str = "") -> str:
    return f'{decl}<rss version="2.0"><channel><title>Wire</title>{extra}{items}</channel></rss>'


Poll = Callable[..., str]


@pytest.fixture
def poller(r: redis.Redis, settings: Settings) -> Iterator[tuple[Poll, FeedStore, ListDispatcher]]:
    store, jobs, dispatcher = FeedStore(r, settings), Jobs(r), ListDispatcher()
    fetcher = Fetcher(settings, r)
    publisher = Publisher(r, settings)

    def run(url: str, run_id: str | None = None) -> str:
        store.add(url)
        return poll(store, fetcher, jobs, dispatcher, publisher, url, run_id)

    yield run, store, dispatcher
    fetcher.close()


# ---- 1. judged by content, not label ----


@pytest.mark.parametrize(
    "content_type", ["application/octet-stream", "text/plain", "text/html; charset=utf-8", "", "application/x-gzip"]
)
def test_a_feed_under_any_label_is_read(site: Site, poller, content_type: str) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    body = rss(f"<item><title>a</title><link>{site.url('/a')}</link></item>")
    feed = site.add("/feed.rss", body, content_type=content_type)
    assert run(feed) == "ok"
    assert [j.url for j in dispatcher.articles] == [site.url("/a")]
    assert feed_health(store.all()[0])["last_problem"] is None  # 6. no NonXMLContentType noise


def test_a_web_page_is_refused_as_not_feed_with_a_clear_message(site: Site, fetcher: Fetcher) -> None:
    page = site.add("/home", "<!DOCTYPE html><html><head><title>News</title></head><body><p>hi</p></body></html>")
    with pytest.raises(PermanentError) as err:
        fetch_and_parse(fetcher, page)
    assert err.value.reason == "not_feed" and "HTML page" in err.value.detail


def test_binary_bytes_under_a_generic_label_are_not_a_feed(site: Site, fetcher: Fetcher) -> None:
    url = site.add("/download", b"\xff\xd8\xff\xe0 JFIF", content_type="application/octet-stream")
    with pytest.raises(PermanentError) as err:
        fetch_and_parse(fetcher, url)
    assert err.value.reason == "not_feed"


def test_an_image_is_refused_by_its_label(site: Site, fetcher: Fetcher) -> None:
    img = site.add("/logo.png", b"\x89PNG\r\n", content_type="image/png")
    with pytest.raises(PermanentError) as err:
        fetch_and_parse(fetcher, img)
    assert err.value.reason == "not_feed"


# ---- 3. the HTTP charset reaches the parser; a BOM wins ----


@pytest.mark.parametrize(
    "content_type", ["application/rss+xml; charset=windows-1251", "text/plain; charset=windows-1251"]
)
def test_http_charset_decodes_links_and_titles(site: Site, poller, content_type: str) -> None:  # type: ignore[no-untyped-def]
    run, _, dispatcher = poller
    link = site.url("/новости/1")
    body = rss(f"<item><title>{CYRILLIC}</title><link>{link}</link></item>").encode("windows-1251")
    feed = site.add("/cp1251.xml", body, content_type=content_type)
    assert run(feed) == "ok"
    assert [j.url for j in dispatcher.articles] == [link]


def test_utf8_bom_wins_over_a_wrong_declaration(site: Site, fetcher: Fetcher) -> None:
    decl = '<?xml version="1.0" encoding="windows-1251"?>'
    body = b"\xef\xbb\xbf" + rss(f"<item><title>{CYRILLIC}</title><link>/x</link></item>", decl).encode()
    feed = site.add("/bom.xml", body, content_type="application/rss+xml; charset=iso-8859-1")
    parsed = fetch_and_parse(fetcher, feed).feed
    assert parsed.entries[0].title == CYRILLIC


def test_server_default_latin1_does_not_garble_a_utf8_feed(site: Site, fetcher: Fetcher) -> None:
    body = rss(f"<item><title>{CYRILLIC}</title><link>/x</link></item>", '<?xml version="1.0" encoding="utf-8"?>')
    feed = site.add("/u8.xml", body, content_type="text/xml; charset=ISO-8859-1")
    assert fetch_and_parse(fetcher, feed).feed.entries[0].title == CYRILLIC


# ---- 4. every entry ends somewhere visible ----


def test_every_entry_is_enqueued_or_counted_with_a_reason(site: Site, poller, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    u = site.url
    items = "".join(
        [
            f"<item><guid>shared</guid><link>{u('/one')}</link></item>",  # one GUID, two links: both
            f"<item><guid>shared</guid><link>{u('/two')}</link></item>",
            "<item><title>neither link nor guid</title></item>",
            f'<item><guid isPermaLink="false">{u("/?p=77")}</guid></item>',  # an opaque GUID that is a page URL
            '<item><guid isPermaLink="false">tag:wire.example,2025:88</guid></item>',  # opaque: counted
            f'<item><title>pod</title><enclosure url="{u("/ep.mp3")}" type="audio/mpeg" length="9"/></item>',
            f'<item><title>page</title><enclosure url="{u("/story-9")}" type="text/html" length="9"/></item>',
            f"<item><link>{u('/with space/story')}</link></item>",  # sent as %20, as browsers do
            f"<item><guid>g5</guid><link>{u('/five')}</link></item>",
            f"<item><guid>g5</guid><link>{u('/five')}</link></item>",  # the same entry twice
            "<item><link>javascript:alert(1)</link></item>",  # dead-lettered
        ]
    )
    feed = site.add("/mixed.xml", rss(items), content_type="application/rss+xml")
    run_id = Jobs(r).new_run("poll")
    assert run(feed, run_id) == "ok"
    assert sorted(j.url for j in dispatcher.articles) == sorted(
        [u("/one"), u("/two"), u("/?p=77"), u("/story-9"), u("/with%20space/story"), u("/five")]
    )
    health = feed_health(store.all()[0])
    skipped = {"no_link": 2, "enclosure_only": 1, "repeated_in_feed": 1, "invalid_url": 1}
    assert health["entries_skipped"] == skipped
    assert health["last_poll_entries"]["new"] == 6
    summary = run_summary(Jobs(r).progress(run_id))
    assert summary["entries_skipped"] == skipped
    letters = [json.loads(f[b"data"]) for _id, f in r.xrange(keys.DEADLETTER)]
    assert [d["reason"] for d in letters] == ["invalid_url"]


# ---- 5. JSON Feed 1.0 and 1.1 ----


@pytest.mark.parametrize("version", ["https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1"])
def test_json_feed(site: Site, poller, version: str) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    doc = {
        "version": version,
        "title": "JSON wire",
        "items": [
            {"id": "1", "url": site.url("/j1"), "title": "one", "date_published": "2025-03-19T10:00:00Z"},
            {"id": "2", "external_url": site.url("/j2")},
            {"id": "3", "content_text": "no link"},
            {"id": "4", "attachments": [{"url": site.url("/a.mp3"), "mime_type": "audio/mpeg"}]},
            {"id": "1", "url": site.url("/j1-other")},  # a shared id with another link
        ],
    }
    feed = site.add("/feed.json", json.dumps(doc), content_type="application/feed+json")
    assert run(feed) == "ok"
    assert sorted(j.url for j in dispatcher.articles) == sorted(
        [site.url("/j1"), site.url("/j2"), site.url("/j1-other")]
    )
    health = feed_health(store.all()[0])
    assert health["entries_skipped"] == {"no_link": 1, "enclosure_only": 1}
    assert health["title"] == "JSON wire"


def test_json_that_is_not_a_feed_is_refused(site: Site, fetcher: Fetcher) -> None:
    url = site.add("/api.json", '{"data": []}', content_type="application/json")
    with pytest.raises(PermanentError) as err:
        fetch_and_parse(fetcher, url)
    assert err.value.reason == "not_feed"


# ---- 6. real problems still show ----


def test_a_truncated_feed_reports_its_problem(site: Site, poller) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    body = rss(f"<item><link>{site.url('/ok')}</link></item>").replace("</channel></rss>", "<item><link>")
    feed = site.add("/cut.xml", body, content_type="application/rss+xml")
    assert run(feed) == "ok"
    assert [j.url for j in dispatcher.articles] == [site.url("/ok")]
    assert feed_health(store.all()[0])["last_problem"]


# ---- hostile documents end as a clear error, never a crash ----


@pytest.mark.parametrize(
    "body",
    [
        b'{"version":"https://jsonfeed.org/version/1","items":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'<?xml version="1.0" encoding="u\xc3tf-8"?><rss version="2.0"><channel><title>T</title><item><title>',
        b'<?xmlversion="1.0"encoding="utf-8"?><rss version="2.0"><channel><title>T</title><item><title>a</titl',
        b"\x1f\x8b\x08garbage",
    ],
)
def test_hostile_documents_are_refused_cleanly(body: bytes) -> None:
    for content_type in ("", "text/plain; charset=utf-16", "text/xml; charset=bogus"):
        try:
            parse_document(body, "https://x.example/feed", content_type)
        except PermanentError as exc:
            assert exc.reason in ("malformed_feed", "not_feed")


def test_an_unparseable_link_is_accounted_for_not_a_crash() -> None:
    body = b'<rss version="2.0"><channel><item><link>http://[::1/x</link></item></channel></rss>'
    parsed = parse_document(body, "https://x.example/feed")
    assert [e.invalid is not None for e in parsed.entries] == [True] or parsed.skipped == {"no_link": 1}
