"""Where an article's publication date comes from: the page, else the feed entry, else a date in its URL.

The end-to-end test runs a real worker on a local site whose feed dates its entries and whose pages carry no
date, and checks that the date (and its source) reaches the published item and the storyline window.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest
import redis

from ingest import clean, keys
from ingest.jobs import Jobs
from ingest.models import Job
from ingest.storyline import Document, load_storylines
from tests.httpsite import Site
from tests.test_e2e import Worker, env_for, ingest, page

ROOT = Path(__file__).resolve().parent.parent


class ListDispatcher:
    """Records what would be queued."""

    def __init__(self) -> None:
        self.articles: list[Job] = []

    def send_article(self, job: Job) -> None:
        self.articles.append(job)

    def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
        raise AssertionError("not used")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/world/2025/03/18/putin-pause", "2025-03-18"),
        ("https://example.org/2025-03-21-kremlin-list.html", "2025-03-21"),
        ("https://example.org/world/putin-pause", None),
        ("https://example.org/2031/03/18/too-far-ahead", None),  # htmldate refuses dates in the future
        ("https://example.org/2025/13/45/not-a-date", None),
    ],
)
def test_a_date_in_the_url_path_is_read(url: str, expected: str | None) -> None:
    found = clean.url_date(url)
    assert (found.date().isoformat() if found else None) == expected
    assert found is None or found.tzinfo is not None


def test_the_page_wins_then_the_feed_then_the_url() -> None:
    page_date = datetime(2025, 3, 19, 8, tzinfo=UTC)
    dated_url = "https://example.org/2025/03/21/story"
    assert clean.publication_date(page_date, "2026-01-30T09:00:00+00:00", [dated_url]) == (page_date, "page")
    got, source = clean.publication_date(None, "2026-01-30T09:00:00+00:00", [dated_url])
    assert (got, source) == (datetime(2026, 1, 30, 9, tzinfo=UTC), "feed")
    got, source = clean.publication_date(None, None, [None, "https://example.org/story", dated_url])
    assert source == "url" and got is not None and got.date().isoformat() == "2025-03-21"
    assert clean.publication_date(None, "not a date", ["https://example.org/story"]) == (None, None)
    # A feed date without a zone is read as UTC, like a page's.
    assert clean.publication_date(None, "2025-03-19T10:00:00", []) == (datetime(2025, 3, 19, 10, tzinfo=UTC), "feed")


def test_a_date_only_in_the_page_url_is_marked_as_such() -> None:
    words = " ".join(f"word{n}" for n in range(40))
    bare = f"<html><head><title>T</title></head><body><article><h1>T</h1><p>{words}</p></article></body></html>"
    meta = bare.replace(
        "<title>", '<meta property="article:published_time" content="2025-03-24T08:00:00+00:00"><title>'
    )
    in_url = clean.extract(bare.encode(), "https://example.org/2025/03/23/story.html")
    assert in_url.published_at == datetime(2025, 3, 23, tzinfo=UTC) and in_url.date_in_url
    # The page's own metadata wins over its URL, and is not marked.
    own = clean.extract(meta.encode(), "https://example.org/2025/03/23/story.html")
    assert own.published_at == datetime(2025, 3, 24, 8, tzinfo=UTC) and not own.date_in_url
    # A feed date (with its time) wins over a date that is only in the URL.
    feed = "2025-03-23T17:30:00+00:00"
    assert clean.publication_date(in_url.published_at, feed, [], page_from_url=True)[1] == "feed"
    assert clean.publication_date(in_url.published_at, None, [], page_from_url=True) == (in_url.published_at, "url")


def test_a_feed_entry_date_travels_with_its_job_and_survives_a_resend(r: redis.Redis) -> None:
    jobs, dispatcher = Jobs(r), ListDispatcher()
    stamp = datetime(2025, 3, 19, 9, tzinfo=UTC)
    jobs.enqueue(dispatcher, "https://a.example/dated", via="feed", feed_url="https://a.example/rss", published=stamp)
    jobs.enqueue(dispatcher, "https://a.example/undated", via="manual")
    sent = {j.url: j.published for j in dispatcher.articles}
    assert sent == {"https://a.example/dated": stamp.isoformat(), "https://a.example/undated": None}
    resent = {j.url: j.published for j in jobs.stale(older_than=-1)}
    assert resent == sent


# ---------------------------------------------------------------- end to end

CALL = [
    "Vladimir Putin agreed in a long phone call with Donald Trump to stop strikes on Ukraine's energy "
    "infrastructure for 30 days, the Kremlin said, and ordered the army to hold fire on power plants.",
    "Kyiv said it would observe the pause on energy strikes if Moscow did, and asked Washington for details "
    "of what had been agreed.",
]
LIST = [
    "The Kremlin published the list of facilities covered by the 30-day moratorium on strikes against energy "
    "infrastructure: oil refineries, gas pipelines, pumping stations, power plants and substations.",
    "Ukrainian officials said the moratorium on energy strikes should also cover railways and ports.",
]
SUDZHA = [
    "Moscow accused Kyiv of blowing up the Sudzha gas metering station in breach of the moratorium on "
    "strikes against energy facilities, which Ukraine denied, saying Russian shelling had hit the site.",
    "Both sides accuse each other of violating the pause on energy strikes almost every day.",
]
EXPIRY = [
    "The 30-day pause in strikes on energy infrastructure has expired and the Kremlin said no order to "
    "extend the moratorium had been given, after weeks of mutual accusations of violations.",
    "Ukraine's energy minister said the grid would need months of repairs whatever happens next.",
]
LIBRARY = [
    "The city library reopened its reading rooms on Saturday after a two-year renovation of the roof and "
    "the heating, with a new children's section and longer opening hours on weekdays.",
    "Volunteers carried the last boxes of books back to the shelves on Friday evening, the librarian said.",
]


def rss_dated(entries: list[tuple[str, datetime | None]]) -> str:
    items = "".join(
        f"<item><title>t</title><link>{u}</link><guid>{u}</guid>"
        + (f"<pubDate>{format_datetime(d)}</pubDate>" if d else "")
        + "</item>"
        for u, d in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Dated wire</title>{items}</channel></rss>'


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_pages_without_a_date_take_the_feed_entry_date_or_the_url_date(
    site: Site, redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    march, later = datetime(2025, 3, 19, 9, tzinfo=UTC), datetime(2026, 1, 30, 9, tzinfo=UTC)
    call = site.add("/news/call.html", page("Putin agrees to halt energy strikes after Trump call", CALL))
    truce = site.add("/news/energy-list.html", page("Kremlin lists sites covered by energy moratorium", LIST))
    by_url = site.add("/news/2025/03/23/sudzha.html", page("Moscow and Kyiv trade accusations over Sudzha", SUDZHA))
    own = site.add("/news/expiry.html", page("Energy moratorium expires", EXPIRY, published="2025-04-18"))
    plain = site.add("/news/library.html", page("City library reopens", LIBRARY))
    feed = [(call, march), (truce, later), (by_url, None), (own, march), (plain, None)]
    site.add("/feeds/dated.xml", rss_dated(feed), content_type="application/rss+xml")

    # Undated, the second page's text is on the storyline: only its feed date can put it off.
    energy = {s.id: s for s in load_storylines(ROOT / "seeds" / "storylines")}["energy-ceasefire"]
    title = "Kremlin lists sites covered by energy moratorium"
    assert energy.tag(Document(title, "\n".join(LIST), "en", None)).on_storyline

    env = env_for(redis_url, tmp_path)
    assert ingest(env, "feeds", "add", site.url("/feeds/dated.xml")).returncode == 0
    worker = Worker(env, tmp_path / "worker.log")
    try:
        cp = ingest(env, "poll", "--wait", "--json", "--timeout", "150")
    finally:
        worker.stop()
    assert cp.returncode == 0, cp.stdout + cp.stderr + (tmp_path / "worker.log").read_text()[-3000:]
    items = {json.loads(f[b"data"])["url"]: json.loads(f[b"data"]) for _id, f in r.xrange(keys.ARTICLES)}
    assert set(items) == {call, truce, by_url, own, plain}

    def seen(url: str) -> tuple[str | None, str | None, bool]:
        item = items[url]
        tag = next(t for t in item["storylines"] if t["id"] == "energy-ceasefire")
        day = item["published_at"][:10] if item["published_at"] else None
        return day, item["date_source"], tag["on_storyline"]

    assert seen(call) == ("2025-03-19", "feed", True)
    assert seen(truce) == ("2026-01-30", "feed", False)  # the feed's date puts it outside the window
    assert seen(by_url) == ("2025-03-23", "url", True)
    assert seen(own) == ("2025-04-18", "page", True)  # the page's own date wins over the feed's
    assert seen(plain) == (None, None, False)
