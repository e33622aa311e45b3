"""Feeds: parsing (pure), the feed store and schedule (real Redis), polling (real HTTP server)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from ingest import keys
from ingest.config import Settings
from ingest.errors import InvalidURL, PermanentError, TransientError
from ingest.feeds import FeedStore, PollCounts, parse_feed, poll
from ingest.fetch import Fetcher
from ingest.jobs import Jobs
from ingest.models import Job
from ingest.publish import Publisher
from tests.httpsite import Page, Site

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
RSS = "application/rss+xml"


class ListDispatcher:
    """Records what would be queued: these tests are about feeds, not about the queue."""

    def __init__(self) -> None:
        self.articles: list[Job] = []
        self.polls: list[tuple[str, str | None]] = []

    def send_article(self, job: Job) -> None:
        self.articles.append(job)

    def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
        self.polls.append((feed_url, run_id))


# ---- parsing ----


def test_rss_entries_keys_links_dates() -> None:
    parsed = parse_feed((FIXTURES / "rss_basic.xml").read_bytes(), "https://coastal-courier.example/feed.xml")
    assert parsed.title == "Coastal Courier: News"
    assert [(e.key, e.link) for e in parsed.entries] == [
        ("cc-1001", "https://coastal-courier.example/news/ferry"),
        ("cc-1002", "https://coastal-courier.example/news/storm"),  # relative link resolved
        ("https://coastal-courier.example/news/no-guid", "https://coastal-courier.example/news/no-guid"),
    ]
    first = parsed.entries[0].published
    assert first is not None and first.isoformat() == "2025-03-20T07:45:00+00:00"


def test_atom() -> None:
    parsed = parse_feed((FIXTURES / "atom_basic.xml").read_bytes(), "https://science-desk.example/atom")
    assert [(e.key, e.link) for e in parsed.entries] == [("urn:uuid:sd-1", "https://science-desk.example/burst")]


def test_truncated_feed_keeps_what_it_can_and_says_so() -> None:
    parsed = parse_feed((FIXTURES / "rss_truncated.xml").read_bytes(), "https://t.example/feed")
    assert parsed.entries[0].link == "https://t.example/one"
    assert parsed.problem is not None


@pytest.mark.parametrize("body", [b"", b"this is not xml at all", b"<html><body>a web page</body></html>"])
def test_malformed_feed_is_a_clear_permanent_error(body: bytes) -> None:
    with pytest.raises(PermanentError) as err:
        parse_feed(body, "https://x.example/feed")
    assert err.value.reason == "malformed_feed"


def test_a_guid_shared_by_every_entry_falls_back_to_links() -> None:
    parsed = parse_feed((FIXTURES / "same_guid.xml").read_bytes(), "https://lazy.example/feed")
    assert [e.key for e in parsed.entries] == ["https://lazy.example/a", "https://lazy.example/b"]


# ---- store and schedule ----


def test_add_list_remove(r: redis.Redis, settings: Settings) -> None:
    store = FeedStore(r, settings)
    assert store.add("https://a.example/feed", 120) is True
    assert store.add("https://a.example/feed", 60) is False  # updates the interval
    assert [(f.url, f.interval) for f in store.all()] == [("https://a.example/feed", 60)]
    assert store.remove("https://a.example/feed") is True
    assert store.remove("https://a.example/feed") is False
    assert store.all() == []


@pytest.mark.parametrize("url", ["ftp://a.example/feed", "not a url", "http://"])
def test_add_rejects_invalid_urls(r: redis.Redis, settings: Settings, url: str) -> None:
    with pytest.raises(InvalidURL):
        FeedStore(r, settings).add(url)


def test_due_feeds_are_leased_once(r: redis.Redis, settings: Settings) -> None:
    store = FeedStore(r, settings)
    store.add("https://a.example/feed")
    store.add("https://b.example/feed")
    assert sorted(store.claim_due()) == ["https://a.example/feed", "https://b.example/feed"]
    assert store.claim_due() == []  # a second scheduler tick (or a second beat) gets nothing


def test_failures_back_off_exponentially_and_show_in_health(r: redis.Redis, settings: Settings) -> None:
    store = FeedStore(r, settings)
    url = "https://a.example/feed"
    store.add(url, 60)
    delays = []
    for _ in range(3):
        store.record_failure(url, TransientError("http_503", "down"))
        due = r.zscore(keys.FEEDS_DUE, url)
        assert due is not None
        delays.append(due - time.time())
    assert delays[0] == pytest.approx(120, abs=2) and delays[1] == pytest.approx(240, abs=2)
    assert delays[2] == pytest.approx(480, abs=2)
    rec = store.all()[0].record
    assert rec["failures"] == "3" and rec["last_status"] == "error" and "http_503" in rec["last_error"]
    store.record_ok(url, "ok", PollCounts(new=2))
    assert store.all()[0].record["failures"] == "0"


# ---- polling through a real HTTP server ----


def rss(items: list[tuple[str, str]]) -> str:
    body = "".join(f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid></item>" for t, link in items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'


@pytest.fixture
def poller(r: redis.Redis, settings: Settings):  # type: ignore[no-untyped-def]
    store, jobs, dispatcher = FeedStore(r, settings), Jobs(r), ListDispatcher()
    fetcher = Fetcher(settings, r)
    publisher = Publisher(r, settings)

    def run(url: str, run_id: str | None = None) -> str:
        return poll(store, fetcher, jobs, dispatcher, publisher, url, run_id)

    yield run, store, dispatcher
    fetcher.close()


def test_poll_enqueues_new_entries_once(site: Site, poller, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    feed = site.add("/feed.xml", rss([("a", site.url("/a")), ("b", site.url("/b"))]), content_type=RSS)
    store.add(feed)
    assert run(feed) == "ok"
    assert [j.url for j in dispatcher.articles] == [site.url("/a"), site.url("/b")]
    assert all(j.via == "feed" and j.feed_url == feed for j in dispatcher.articles)
    site.add("/feed.xml", rss([("c", site.url("/c")), ("a", site.url("/a"))]), content_type=RSS)
    assert run(feed) == "ok"
    assert [j.url for j in dispatcher.articles][2:] == [site.url("/c")]  # a was seen already
    assert store.all()[0].record["entries_new"] == "3"


def test_conditional_get_304_means_nothing_new(site: Site, poller) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    body = rss([("a", site.url("/a"))]).encode()

    def respond(handler) -> Page:  # type: ignore[no-untyped-def]
        if handler.headers.get("If-None-Match") == '"v1"':
            return Page(b"", 304, {"ETag": '"v1"'})
        return Page(body, 200, {"Content-Type": RSS, "ETag": '"v1"'})

    feed = site.route("/feed.xml", respond)
    store.add(feed)
    assert run(feed) == "ok"
    assert run(feed) == "not_modified"
    assert len(dispatcher.articles) == 1
    assert site.requests[-1][1].get("if-none-match") == '"v1"'


def test_a_failing_feed_is_counted_and_retried(site: Site, poller) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    feed = site.add("/broken.xml", "<rss><channel><item><title>oops", content_type="text/plain")
    gone = site.add("/gone.xml", "no", status=404)
    store.add(feed)
    store.add(gone)
    assert run(gone) == "error"
    site.add("/broken.xml", "this is not a feed", content_type="text/plain")
    assert run(feed) == "error"
    health = {f.url: f.record for f in store.all()}
    assert health[gone]["last_error"].startswith("http_404")
    assert health[feed]["last_error"].startswith("not_feed")  # plain text: neither XML nor JSON
    assert dispatcher.articles == []
    assert all(f.next_due and f.next_due > time.time() for f in store.all())  # scheduled again, not dropped


def test_invalid_entry_links_are_dead_lettered_not_lost(site: Site, poller, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    feed = site.add("/feed.xml", rss([("ok", site.url("/ok")), ("bad", "javascript:alert(1)")]), content_type=RSS)
    store.add(feed)
    assert run(feed) == "ok"
    assert [j.url for j in dispatcher.articles] == [site.url("/ok")]
    letters = [json.loads(f[b"data"]) for _id, f in r.xrange(keys.DEADLETTER)]
    assert [(d["url"], d["reason"]) for d in letters] == [("javascript:alert(1)", "invalid_url")]


def test_poll_of_a_run_records_its_jobs(site: Site, poller, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    run, store, _ = poller
    feed = site.add("/feed.xml", rss([("a", site.url("/a"))]), content_type=RSS)
    store.add(feed)
    jobs = Jobs(r)
    run_id = jobs.new_run("poll")
    run(feed, run_id)
    progress = jobs.progress(run_id)
    assert len(progress.jobs) == 1 and progress.pending == 1


def atom(entries: list[tuple[str, str, str]]) -> str:
    body = "".join(
        f"<entry><id>{i}</id><title>t</title><link href='{link}'/><updated>{u}</updated></entry>"
        for i, link, u in entries
    )
    return f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>{body}</feed>'


def test_an_entry_whose_updated_stamp_changes_is_fetched_again(site: Site, poller) -> None:  # type: ignore[no-untyped-def]
    run, store, dispatcher = poller
    link = site.url("/story")
    feed = site.add("/atom.xml", atom([("urn:1", link, "2025-03-18T10:00:00Z")]), content_type="application/atom+xml")
    store.add(feed)
    run(feed)
    run(feed)  # unchanged: nothing new
    assert len(dispatcher.articles) == 1
    site.add("/atom.xml", atom([("urn:1", link, "2025-03-18T14:30:00Z")]), content_type="application/atom+xml")
    run(feed)
    first, second = dispatcher.articles
    assert first.url == second.url == link and first.job_id != second.job_id  # a job of its own
    run(feed)
    assert len(dispatcher.articles) == 2  # the new stamp is remembered


def test_a_poll_killed_between_creating_a_job_and_sending_it_is_made_good_by_the_next(  # type: ignore[no-untyped-def]
    site: Site, poller, r: redis.Redis
) -> None:
    run, store, dispatcher = poller
    feed = site.add("/feed.xml", rss([("a", site.url("/a"))]), content_type=RSS)
    store.add(feed)

    class DiesBeforeSending(ListDispatcher):
        def send_article(self, job: Job) -> None:
            raise SystemExit("killed")  # the worker died right after the job record was written

    with Fetcher(store.settings, r) as fetcher, pytest.raises(SystemExit):
        poll(store, fetcher, Jobs(r), DiesBeforeSending(), Publisher(r, store.settings), feed, None)
    assert run(feed) == "ok"  # the redelivered poll
    assert [j.url for j in dispatcher.articles] == [site.url("/a")]
    assert run(feed) == "ok" and len(dispatcher.articles) == 1  # seen now: not sent a third time
