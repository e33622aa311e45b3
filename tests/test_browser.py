"""The dashboard in a real headless Chromium, after an end-to-end run through a real worker.

One run feeds a local site (a storyline article, a hostile one, a syndicated copy, a missing page)
through `ingest poll --wait`; then the browser checks the storyline timeline, the evidence
highlighted in the article view, a retry from the dead letters view, and that hostile titles,
texts, URLs and feed names stay inert. Set INGEST_SCREENSHOTS=docs/screenshots to save each view.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from ingest import keys
from ingest.config import Settings
from ingest.embedded import RedisProcess
from tests.browser import chromium, require_chromium, screenshot
from tests.httpsite import Site
from tests.test_api import Served
from tests.test_e2e import ARTICLES, ENERGY, Worker, env_for, ingest, page, rss

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(300)]

HOSTILE = json.loads((Path(__file__).parent / "fixtures" / "web" / "hostile.json").read_text())
HOSTILE_FEED = "/feeds/other.xml?name=<script>window.__xss=9</script>"


@dataclass
class World:
    """The service after one end-to-end run, the API serving it, and a browser."""

    site: Site
    r: redis.Redis
    env: dict[str, str]
    base: str
    api: httpx.Client
    driver: Any

    def get(self, path: str) -> None:
        self.driver.get(self.base + path)

    def text(self) -> str:
        return str(self.driver.find_element("tag name", "body").text)

    def wait_for(self, css: str) -> Any:
        """The first element matching css once the page navigated to has it (a click returns before)."""
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, 15).until(lambda d: d.find_elements("css selector", css))[0]


def _hostile_page() -> str:
    # A canonical link to a javascript: URL, on top of the script and handler in title and text.
    html = page(HOSTILE["title"], HOSTILE["paragraphs"], HOSTILE["published"])
    return html.replace("</title>", '</title><link rel="canonical" href="javascript:window.__xss=4">', 1)


@pytest.fixture(scope="module")
def world(redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    r = redis.Redis.from_url(redis_server.url)
    r.flushall()
    site = Site()
    rail = ARTICLES["rail_strike"]
    site.add("/news/energy-pause.html", page(ENERGY["title"], ENERGY["paragraphs"], ENERGY["published"]))
    site.add("/news/grid-lull.html", _hostile_page())
    site.add("/news/rail-strike.html", page(rail["title"], rail["paragraphs"], "2025-03-24"))
    site.add("/wire/rail-teaser.html", page("Rail strike (wire)", rail["paragraphs"][:3], "2025-03-24"))
    paths = ["/news/energy-pause.html", "/news/grid-lull.html", "/news/rail-strike.html", "/wire/rail-teaser.html"]
    links = [site.url(p) for p in [*paths, "/news/gone.html"]]
    site.add("/feeds/wire.xml", rss(links), content_type="application/rss+xml")
    site.add("/feeds/other.xml", rss([]), content_type="application/rss+xml")
    # the hostile feed's URL as the HTTP client sends it (percent-encoded), so it answers like any feed
    site.add(str(httpx.URL(site.url(HOSTILE_FEED)).raw_path.decode()), rss([]), content_type="application/rss+xml")
    env = env_for(redis_server.url, tmp)
    worker = Worker(env, tmp / "worker.log")
    settings = Settings(redis_url=redis_server.url, allow_private_networks=True, host_delay=0.0, data_dir=tmp / "var")
    try:
        for feed in ("/feeds/wire.xml", HOSTILE_FEED):
            added = ingest(env, "feeds", "add", site.url(feed), "--no-check")
            assert added.returncode == 0, added.stderr
        cp = ingest(env, "poll", "--wait", "--json", "--timeout", "150")
        # the hostile feed may or may not be served, depending on how its odd query is sent; a failed
        # poll makes the exit code 1. Either way the summary counts every article.
        assert cp.returncode in (0, 1) and cp.stdout, cp.stdout + cp.stderr + (tmp / "worker.log").read_text()
        summary = json.loads(cp.stdout)
        assert (summary["new"], summary["duplicates"], summary["failed"]) == (3, 1, 1), summary
        with Served(settings, r) as api:
            for driver in chromium():
                yield World(site, r, env, str(api.base_url).rstrip("/"), api, driver)
    finally:
        worker.stop()
        site.close()
        r.close()


def _entries(r: redis.Redis, stream: str) -> list[dict[str, Any]]:
    return [json.loads(f[b"data"]) for _id, f in r.xrange(stream)]


def test_storyline_timeline_shows_the_tagged_articles(world: World) -> None:
    world.get("/")
    on = {d["title"] for d in _entries(world.r, keys.storyline_stream("energy-ceasefire"))}
    assert len(on) == 2
    titles = [a.text for a in world.driver.find_elements("css selector", "table.articles tbody td:first-child a")]
    assert set(titles) == on
    bars = world.driver.find_elements("css selector", "section[aria-labelledby=timeline-h] svg rect")
    tips = " ".join(b.find_element("tag name", "title").get_attribute("textContent") for b in bars)
    # two days (19 and 25 March 2025), one English article each
    assert "03-19: 1 articles (language en)" in tips and "03-25: 1 articles (language en)" in tips
    labels = world.driver.find_elements("css selector", "section[aria-labelledby=labels-h] svg rect")
    assert labels, "the labels-over-time strips are empty"
    screenshot(world.driver, "storyline")

    world.get("/storylines/energy-ceasefire?by=outlet&q=grid+operator")
    titles = [a.text for a in world.driver.find_elements("css selector", "table.articles tbody td:first-child a")]
    assert titles == [HOSTILE["title"]]


def test_article_view_highlights_the_evidence_in_place(world: World) -> None:
    world.get("/")
    link = next(
        a
        for a in world.driver.find_elements("css selector", "table.articles tbody td:first-child a")
        if a.text == ENERGY["title"]
    )
    link.click()
    world.wait_for("table.contrib")
    marks = [m.text for m in world.driver.find_elements("css selector", ".text mark, h1 mark")]
    energy = next(d for d in _entries(world.r, keys.ARTICLES) if d["title"] == ENERGY["title"])
    evidence = next(t for t in energy["storylines"] if t["id"] == "energy-ceasefire")["evidence"]
    assert marks, "no evidence highlighted"
    assert all(any(m.lower() in e.lower() for e in evidence) for m in marks)
    rules = world.driver.find_elements("css selector", "table.contrib tbody tr")
    assert rules, "no per-rule contributions"
    screenshot(world.driver, "article")


def test_copies_are_listed_on_the_original(world: World) -> None:
    dup = _entries(world.r, keys.DUPLICATES)[0]
    original_entry = next(
        eid.decode()
        for eid, f in world.r.xrange(keys.ARTICLES)
        if json.loads(f[b"data"])["id"] == dup["duplicate"]["of"]
    )
    world.get(f"/items/{original_entry}")
    rows = world.driver.find_elements("css selector", "section[aria-labelledby=copies-h] tbody tr")
    assert len(rows) == 1 and dup["duplicate"]["method"] in rows[0].text
    rows[0].find_element("css selector", "a").click()  # the copy's own view links back to its original
    back = world.wait_for("section.dup a")
    assert back.get_attribute("href").endswith(f"/items/{original_entry}")


def test_hostile_titles_texts_urls_and_feed_names_stay_inert(world: World) -> None:
    hostile = next(eid.decode() for eid, f in world.r.xrange(keys.ARTICLES) if b"__xss" in f[b"data"])
    for path in ("/", f"/items/{hostile}", "/feeds", "/deadletters", "/system"):
        world.get(path)
        assert world.driver.execute_script("return window.__xss === undefined"), path
        assert not world.driver.find_elements("css selector", "a[href^='javascript:' i]"), path
        assert not world.driver.find_elements("css selector", "main img, main script"), path
    world.get(f"/items/{hostile}")
    assert "<script>window.__xss=1</script>" in world.driver.find_element("tag name", "h1").text
    assert "onerror" in world.text()
    world.get("/feeds")
    assert "<script>window.__xss=9</script>" in world.text()


def test_retry_from_the_dead_letters_view_reenqueues(world: World) -> None:
    gone = world.site.url("/news/gone.html")
    world.get("/deadletters")
    screenshot(world.driver, "deadletters")
    row = next(tr for tr in world.driver.find_elements("css selector", "table.dead tbody tr") if gone in tr.text)
    row.find_element("css selector", "button").click()
    assert "re-enqueued as run" in world.wait_for(".flash").text
    deadline = time.monotonic() + 90
    while sum(1 for d in _entries(world.r, keys.DEADLETTER) if d["url"] == gone) < 2:
        assert time.monotonic() < deadline, "the retried URL was not processed again"
        time.sleep(0.5)
    world.get("/deadletters")
    assert "retried (run" in world.text()


def test_metrics_agree_with_ingest_stats(world: World) -> None:
    stats = json.loads(ingest(world.env, "stats", "--json").stdout)
    families = {f.name: f for f in text_string_to_metric_families(world.api.get("/metrics").text)}
    articles = {s.labels["outcome"]: s.value for s in families["ingest_articles"].samples if s.name.endswith("_total")}
    for outcome in ("article", "duplicate", "deadletter"):
        assert articles[outcome] == stats["counters"].get(outcome, 0), outcome
    dead = {s.labels["reason"]: s.value for s in families["ingest_deadletters"].samples if s.name.endswith("_total")}
    assert dead == {k: float(v) for k, v in stats["deadletter_reasons"].items()}
    lengths = {s.labels["stream"]: s.value for s in families["ingest_stream_length"].samples}
    assert lengths["articles"] == stats["streams"]["articles"]
    feeds = {s.labels["health"]: s.value for s in families["ingest_feeds"].samples}
    assert sum(feeds.values()) == stats["feeds"]["total"] == 2
    assert next(iter(families["ingest_workers"].samples)).value >= 1
    fetch = [s for s in families["ingest_stage_duration_seconds"].samples if s.labels.get("stage") == "fetch"]
    assert any(s.name.endswith("_count") and s.value >= 4 for s in fetch)


def test_feeds_and_system_views_at_phone_width_and_by_keyboard(world: World) -> None:
    world.get("/feeds")
    screenshot(world.driver, "feeds")
    world.get("/system")
    assert "Workers alive" in world.text()
    screenshot(world.driver, "system")
    world.driver.set_window_size(390, 844)
    for path in ("/", "/feeds", "/deadletters", "/system"):
        world.get(path)
        overflow = world.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{path} scrolls sideways at phone width ({overflow}px)"
    world.get("/")
    screenshot(world.driver, "storyline-phone")
    world.driver.set_window_size(390, 844)
    # keyboard: the first Tab reaches the skip link, Enter moves focus to the content
    world.get("/")
    active = world.driver.switch_to.active_element
    from selenium.webdriver.common.keys import Keys

    world.driver.find_element("tag name", "body").send_keys(Keys.TAB)
    active = world.driver.switch_to.active_element
    assert active.text == "Skip to content"
    active.send_keys(Keys.ENTER)
    assert world.driver.execute_script("return document.activeElement.id") == "main"
    world.driver.set_window_size(1280, 900)
