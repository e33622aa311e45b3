"""Feeds at the command line: OPML import/export, and `poll --wait` through a real worker."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
import redis

from ingest.config import Settings
from ingest.feeds import FeedStore
from tests.httpsite import Site
from tests.test_cli import ingest, one_line_error
from tests.test_e2e import Worker, env_for

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Reader export</title></head><body>
  <outline text="News"><!-- a folder -->
    <outline type="rss" text="Coastal Courier" title="Coastal Courier" xmlUrl="https://coastal.example/feed.xml"/>
    <outline type="rss" text="Wire &amp; Co" xmlUrl="https://wire.example/rss?lang=uk"/>
  </outline>
  <outline type="rss" text="Energy desk" xmlurl="https://energy.example/atom"/>
  <outline text="a plain link" htmlUrl="https://blog.example/"/>
</body></opml>
"""


def test_opml_import_then_export_round_trip(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    path = tmp_path / "feeds.opml"
    path.write_text(OPML)
    cp = ingest("feeds", "import", str(path), env={"REDIS_URL": redis_url})
    assert cp.returncode == 0, cp.stderr
    assert "imported 3 feeds" in cp.stdout
    urls = ["https://coastal.example/feed.xml", "https://wire.example/rss?lang=uk", "https://energy.example/atom"]
    assert sorted(FeedStore(r, Settings(redis_url=redis_url)).urls()) == sorted(urls)
    out = ingest("feeds", "export", env={"REDIS_URL": redis_url})
    assert out.returncode == 0
    outlines = ElementTree.fromstring(out.stdout).iter("outline")
    exported = {o.get("xmlUrl"): o.get("text") for o in outlines}
    assert exported == {urls[0]: "Coastal Courier", urls[1]: "Wire & Co", urls[2]: "Energy desk"}
    again = ingest("feeds", "import", str(path), env={"REDIS_URL": redis_url})
    assert "(0 new, 3 already there)" in again.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "<opml><body><outline xmlUrl='ftp://x.example/f'/><outline xmlUrl='https://ok.example/f'/></body></opml>",
            "nothing imported",
        ),
        ("<opml><body>", "not well-formed"),
        ("<rss version='2.0'/>", "is not OPML"),
    ],
)
def test_bad_opml_exits_2_and_adds_nothing(
    redis_url: str, r: redis.Redis, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.opml"
    path.write_text(content)
    cp = ingest("feeds", "import", str(path), env={"REDIS_URL": redis_url})
    assert cp.returncode == 2
    assert message in one_line_error(cp)
    assert FeedStore(r, Settings(redis_url=redis_url)).urls() == []


def test_missing_opml_file_exits_2(redis_url: str, tmp_path: Path) -> None:
    cp = ingest("feeds", "import", str(tmp_path / "none.opml"), env={"REDIS_URL": redis_url})
    assert cp.returncode == 2 and "cannot read" in one_line_error(cp)


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_poll_wait_reports_failed_feeds_and_finishes_big_ones(
    site: Site, redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    # Every poll task stops after one batch of 50: the feed is enqueued by four tasks in a row.
    env = env_for(redis_url, tmp_path, INGEST_FEED_POLL_BUDGET="0.001", INGEST_FEED_BATCH_SIZE="50")
    items = "".join(f"<item><link>{site.url(f'/gone/{i}')}</link></item>" for i in range(200))
    big = site.add("/big.xml", f'<rss version="2.0"><channel><title>B</title>{items}</channel></rss>', content_type="")
    missing = site.url("/missing.xml")
    assert ingest("feeds", "add", big, env=env).returncode == 0
    assert ingest("feeds", "add", "--no-check", missing, env=env).returncode == 0  # down for now
    worker = Worker(env, tmp_path / "worker.log")
    try:
        cp = ingest("poll", "--wait", "--json", "--timeout", "180", env=env, timeout=200)
    finally:
        worker.stop()
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert f"1 of 2 feed polls failed: {missing} (http_404" in cp.stderr
    summary = json.loads(cp.stdout)
    assert summary["feeds"] == {"ok": 1, "error": 1} and summary["failed"] == 200 and summary["pending"] == 0
    assert site.hits("/big.xml") == 2  # checked once by `feeds add`, polled once: continuations do not refetch
    health = {h["url"]: h for h in json.loads(ingest("stats", "--json", env=env).stdout)["feeds"]["list"]}
    assert health[big]["status"] == "ok" and health[big]["entries_new"] == 200
