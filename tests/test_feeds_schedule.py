"""When feeds are polled: adaptive intervals, publisher hints, stale validators, broken feeds, big feeds."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import redis

from ingest import keys
from ingest.config import Settings
from ingest.feeds import FeedStore, poll
from ingest.fetch import Fetcher
from ingest.jobs import Jobs
from ingest.publish import Publisher
from ingest.report import feed_health, stats
from tests.httpsite import Page, Site
from tests.test_feeds import ListDispatcher

RSS = "application/rss+xml"
Poll = Callable[..., str]


def rss(n: int, every: timedelta, base: str, extra: str = "", start: int = 0) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><link>{base}/s/{i}</link><pubDate>{format_datetime(now - every * i)}</pubDate></item>"
        for i in range(start, start + n)
    )
    ns = 'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"'
    return f'<?xml version="1.0"?><rss version="2.0" {ns}><channel><title>W</title>{extra}{items}</channel></rss>'


@contextlib.contextmanager
def make_poller(r: redis.Redis, settings: Settings) -> Iterator[tuple[Poll, FeedStore, ListDispatcher]]:
    store, jobs, dispatcher = FeedStore(r, settings), Jobs(r), ListDispatcher()
    fetcher = Fetcher(settings, r)
    publisher = Publisher(r, settings)

    def run(url: str, run_id: str | None = None) -> str:
        return poll(store, fetcher, jobs, dispatcher, publisher, url, run_id)

    yield run, store, dispatcher
    fetcher.close()


@pytest.fixture
def poller(r: redis.Redis, settings: Settings) -> Iterator[tuple[Poll, FeedStore, ListDispatcher]]:
    with make_poller(r, settings) as p:
        yield p


def next_in(r: redis.Redis, url: str) -> float:
    due = r.zscore(keys.FEEDS_DUE, url)
    assert due is not None
    return due - time.time()


# ---- 7. adaptive intervals and publisher hints ----


def test_interval_follows_entry_frequency_within_bounds(site: Site, poller, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    run, store, _ = poller
    busy = site.add("/busy.xml", rss(20, timedelta(hours=1), site.base), content_type=RSS)
    slow = site.add("/slow.xml", rss(5, timedelta(days=1), site.base), content_type=RSS)
    dead = site.add("/dead.xml", rss(3, timedelta(days=30), site.base, start=1), content_type=RSS)
    fast = site.add("/fast.xml", rss(50, timedelta(seconds=30), site.base), content_type=RSS)
    for url in (busy, slow, dead, fast):
        store.add(url)
        assert run(url) == "ok"
    assert next_in(r, busy) == pytest.approx(3600, rel=0.1)  # about one new entry per poll
    assert next_in(r, slow) == pytest.approx(4 * 86400 / 5, rel=0.1)
    assert next_in(r, dead) == pytest.approx(24 * 3600, abs=5)  # INGEST_FEED_MAX_INTERVAL
    assert next_in(r, fast) == pytest.approx(300, abs=5)  # INGEST_FEED_MIN_INTERVAL
    health = {h["url"]: h for h in (feed_health(f) for f in store.all())}
    assert health[busy]["next_poll_reason"].startswith("20 entries in the last")
    assert health[dead]["next_poll_reason"] == "no entry in the last 7 days"
    assert health[busy]["interval_mode"] == "adaptive" and health[busy]["next_poll_at"]


@pytest.mark.parametrize(
    ("extra", "headers", "expected", "why"),
    [
        ("<ttl>180</ttl>", {}, 3 * 3600, "ttl"),
        ("<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>", {}, 6 * 3600, "sy:"),
        ("", {"Cache-Control": "public, max-age=7200"}, 7200, "Cache-Control"),
        ("<ttl>60</ttl>", {"Cache-Control": "max-age=9000"}, 9000, "Cache-Control"),  # the longest wins
        ("<ttl>100000</ttl>", {}, 24 * 3600, "capped"),  # never past the operator's bound
    ],
)
def test_publisher_hints_lengthen_the_wait(  # type: ignore[no-untyped-def]
    site: Site, poller, r: redis.Redis, extra: str, headers: dict[str, str], expected: float, why: str
) -> None:
    run, store, _ = poller
    url = site.add("/h.xml", rss(20, timedelta(minutes=10), site.base, extra), content_type=RSS, headers=headers)
    store.add(url)
    assert run(url) == "ok"
    assert next_in(r, url) == pytest.approx(expected, abs=5)
    assert why in feed_health(store.all()[0])["next_poll_reason"]


def test_expires_header_is_a_hint(site: Site, poller, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    run, store, _ = poller
    expires = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    url = site.add("/e.xml", rss(20, timedelta(minutes=10), site.base), content_type=RSS, headers={"Expires": expires})
    store.add(url)
    run(url)
    assert next_in(r, url) == pytest.approx(7200, abs=10)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_on_429_and_503(site: Site, poller, r: redis.Redis, status: int) -> None:  # type: ignore[no-untyped-def]
    run, store, _ = poller
    url = site.add("/busy.xml", "slow down", status=status, content_type="text/plain", headers={"Retry-After": "5000"})
    store.add(url)
    assert run(url) == "error"
    assert next_in(r, url) == pytest.approx(5000, abs=5)
    assert feed_health(store.all()[0])["next_poll_reason"] == "Retry-After 5000s"


def test_a_fixed_interval_stays_fixed(site: Site, poller, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    run, store, _ = poller
    url = site.add("/f.xml", rss(20, timedelta(days=2), site.base), content_type=RSS)
    store.add(url, 120)
    run(url)
    assert next_in(r, url) == pytest.approx(120, abs=5)
    assert feed_health(store.all()[0])["interval_mode"] == "fixed"


# ---- 8. stale validators ----


def test_validators_that_never_change_do_not_freeze_a_feed(r: redis.Redis, settings: Settings, site: Site) -> None:
    quick = settings.model_copy(update={"feed_unconditional_after": 1})
    with make_poller(r, quick) as (run, store, dispatcher):
        versions = {"body": rss(1, timedelta(hours=1), site.base)}

        def respond(handler) -> Page:  # type: ignore[no-untyped-def]
            # A broken cache: the same validator for every version, and 304 to anyone who sends it.
            if handler.headers.get("If-None-Match") == '"same"':
                return Page(b"", 304, {"ETag": '"same"'})
            return Page(versions["body"].encode(), 200, {"Content-Type": RSS, "ETag": '"same"'})

        url = site.route("/stuck.xml", respond)
        store.add(url)
        assert run(url) == "ok"
        versions["body"] = rss(2, timedelta(hours=1), site.base)
        assert run(url) == "not_modified"  # conditional: the server claims nothing changed
        r.hset(keys.feed(url), "last_full", repr(time.time() - 5))  # the last full answer is now stale
        assert run(url) == "ok"  # unconditional GET
        assert "if-none-match" not in site.requests[-1][1]
        assert len(dispatcher.articles) == 2


# ---- 9. broken feeds ----


def test_a_feed_failing_n_times_is_broken_until_one_success(r: redis.Redis, settings: Settings, site: Site) -> None:
    three = settings.model_copy(update={"feed_broken_after": 3})
    with make_poller(r, three) as (run, store, _):
        url = site.add("/flaky.xml", "down", status=500, content_type="text/plain")
        store.add(url, 60)
        for _ in range(3):
            assert run(url) == "error"
        health = feed_health(store.all()[0])
        assert health["status"] == "broken" and health["broken"]
        assert next_in(r, url) == pytest.approx(three.feed_max_backoff, abs=5)  # the longest backoff
        assert stats(r, store.all())["feeds"]["broken"] == 1
        site.add("/flaky.xml", rss(1, timedelta(hours=1), site.base), content_type=RSS)
        assert run(url) == "ok"
        health = feed_health(store.all()[0])
        assert health["status"] == "ok" and not health["broken"] and health["consecutive_failures"] == 0


# ---- issue 10, item 3: a 10,000-entry feed ----


def test_a_huge_feed_is_enqueued_in_resumable_parts(r: redis.Redis, settings: Settings, site: Site) -> None:
    # A budget so small that every poll task stops after its first batch of 1,000.
    tight = settings.model_copy(update={"feed_poll_budget": 0.001, "feed_batch_size": 1000})
    with make_poller(r, tight) as (run, store, dispatcher):
        url = site.add("/huge.xml", rss(10_000, timedelta(minutes=1), site.base), content_type=RSS)
        store.add(url)
        run_id = Jobs(r).new_run("poll")
        assert run(url, run_id) == "partial"
        health = feed_health(store.all()[0])
        assert health["status"] == "partial" and health["backlog"] == 9000  # never `never_polled`
        assert dispatcher.polls == [(url, run_id)]  # a continuation was sent
        outcomes = []
        while dispatcher.polls:
            dispatcher.polls.pop()
            outcomes.append(run(url, run_id))
        assert outcomes == ["partial"] * 8 + ["ok"]
        assert site.hits("/huge.xml") == 1  # the continuations did not fetch the feed again
        assert len({j.url for j in dispatcher.articles}) == len(dispatcher.articles) == 10_000
        assert feed_health(store.all()[0])["backlog"] == 0
        assert len(Jobs(r).progress(run_id).jobs) == 10_000


def test_a_second_poll_of_a_feed_in_progress_waits(r: redis.Redis, settings: Settings, site: Site) -> None:
    with make_poller(r, settings) as (run, store, _):
        url = site.add("/x.xml", rss(1, timedelta(hours=1), site.base), content_type=RSS)
        store.add(url)
        r.set(keys.feed_lock(url), "another-poll", px=10_000)
        assert run(url) == "busy"
        assert site.hits("/x.xml") == 0
        r.delete(keys.feed_lock(url))
        assert run(url) == "ok"


def test_the_scheduler_reads_only_due_feeds(r: redis.Redis, settings: Settings) -> None:
    store = FeedStore(r, settings)
    now = time.time()
    r.zadd(keys.FEEDS_DUE, {f"https://f{i}.example/feed": now + 3600 + i for i in range(5000)})
    r.zadd(keys.FEEDS_DUE, {f"https://due{i}.example/feed": now - 10 for i in range(1500)})
    first = store.claim_due(now)
    assert len(first) == 1000 and all("due" in u for u in first)
    assert len(store.claim_due(now)) == 500
    assert store.claim_due(now) == []
