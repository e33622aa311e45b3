"""End to end: a real Celery worker turns a small local site (pages + a feed on 127.0.0.1) into stream items."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest import keys
from tests.httpsite import Page, Site

# Real processes on a 2-core machine: generous limits, each test still bounded.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
ARTICLES = json.loads((FIXTURES / "dedup" / "articles.json").read_text())
ENERGY = json.loads((FIXTURES / "site" / "energy_pause.json").read_text())


def page(title: str, paragraphs: list[str], published: str | None = None, lang: str = "en") -> str:
    date = f'<meta property="article:published_time" content="{published}T08:00:00+00:00">' if published else ""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"{date}</head><body><header><nav><a href='/'>Home</a> <a href='/world'>World</a></nav></header>"
        f"<main><article><h1>{html.escape(title)}</h1>{body}</article></main>"
        "<footer>Subscribe to our newsletter. All rights reserved.</footer></body></html>"
    )


def rss(links: list[str]) -> str:
    items = "".join(f"<item><title>t</title><link>{u}</link><guid>{u}</guid></item>" for u in links)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Local wire</title>{items}</channel></rss>'


def env_for(redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(
        {
            "REDIS_URL": redis_url,
            "INGEST_ALLOW_PRIVATE_NETWORKS": "1",
            "INGEST_HOST_DELAY": "0",
            "INGEST_DATA_DIR": str(tmp_path / "var"),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def ingest(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


class Worker:
    """`ingest worker` (or `ingest beat`) in its own process group, so a test can SIGKILL it and its children."""

    def __init__(self, env: dict[str, str], log: Path, command: str = "worker") -> None:
        self.log = log
        args = ["worker", "--concurrency", "2"] if command == "worker" else [command]
        with log.open("w") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ingest", *args],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def local_site(site: Site) -> Site:
    rail = ARTICLES["rail_strike"]
    site.add("/news/energy-pause.html", page(ENERGY["title"], ENERGY["paragraphs"], ENERGY["published"]))
    site.add("/news/rail-strike.html", page(rail["title"], rail["paragraphs"], "2025-03-24"))
    # a syndicated teaser of the rail story on another path of the site
    site.add("/wire/rail-teaser.html", page("Rail strike (wire)", rail["paragraphs"][:3], "2025-03-24"))
    obs = ARTICLES["observatory"]
    site.add("/news/observatory.html", page(obs["title"], obs["paragraphs"], "2025-03-21"))
    site.add("/files/report.pdf", b"%PDF-1.4 not a page", content_type="application/pdf")
    site.add("/news/empty.html", "<html><body><nav>Home</nav></body></html>")
    links = [
        site.url(p)
        for p in (
            "/news/energy-pause.html",
            "/news/rail-strike.html",
            "/wire/rail-teaser.html",
            "/news/observatory.html",
            "/news/gone.html",
            "/files/report.pdf",
            "/news/empty.html",
        )
    ]
    site.add("/feeds/wire.xml", rss(links), content_type="application/rss+xml")
    return site


@pytest.fixture
def worker_env(redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = env_for(redis_url, tmp_path)
    worker = Worker(env, tmp_path / "worker.log")
    yield env
    worker.stop()


def streams(r: redis.Redis) -> dict[str, list[dict[str, object]]]:
    out = {}
    for name, key in (
        ("articles", keys.ARTICLES),
        ("duplicates", keys.DUPLICATES),
        ("deadletter", keys.DEADLETTER),
        ("storyline", keys.storyline_stream("energy-ceasefire")),
    ):
        out[name] = [json.loads(f[b"data"]) for _id, f in r.xrange(key)]
    return out


def test_feed_to_streams(local_site: Site, worker_env: dict[str, str], r: redis.Redis) -> None:
    assert ingest(worker_env, "feeds", "add", local_site.url("/feeds/wire.xml")).returncode == 0
    cp = ingest(worker_env, "poll", "--wait", "--json", "--timeout", "150")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    summary = json.loads(cp.stdout)
    assert (summary["new"], summary["duplicates"], summary["failed"], summary["pending"]) == (3, 1, 3, 0)
    assert summary["storylines"]["energy-ceasefire"] == 1

    s = streams(r)
    by_url = {d["url"]: (kind, d) for kind in ("articles", "duplicates", "deadletter") for d in s[kind]}
    assert len(by_url) == 7  # every URL of the feed ended somewhere: nothing vanished

    kind, energy = by_url[local_site.url("/news/energy-pause.html")]
    assert kind == "articles"
    tags = {t["id"]: t for t in energy["storylines"]}
    assert set(tags) == {"energy-ceasefire", "black-sea-ceasefire"}  # one entry per defined storyline
    tag = tags["energy-ceasefire"]
    assert tag["on_storyline"] is True and tag["labels"] and tag["version"]
    text = (energy["title"] or "") + "\n" + energy["text"]
    assert tag["evidence"] and all(ev.strip(". ").lower() in text.lower() for ev in tag["evidence"])
    assert energy["published_at"].startswith("2025-03-19") and energy["language"] == "en"
    assert energy["source"] == {"via": "feed", "feed_url": local_site.url("/feeds/wire.xml")}
    assert [d["id"] for d in s["storyline"]] == [energy["id"]]

    kind, rail = by_url[local_site.url("/news/rail-strike.html")]
    kind2, teaser = by_url[local_site.url("/wire/rail-teaser.html")]
    assert sorted([kind, kind2]) == ["articles", "duplicates"]  # one of the copies, whichever came second
    dup, orig = (teaser, rail) if kind2 == "duplicates" else (rail, teaser)
    assert dup["duplicate"]["of"] == orig["id"] and dup["duplicate"]["method"] in ("near", "revision")
    assert all(t["on_storyline"] is False for t in rail["storylines"] + teaser["storylines"])

    reasons = {d["url"]: d["reason"] for d in s["deadletter"]}
    assert reasons == {
        local_site.url("/news/gone.html"): "http_404",
        local_site.url("/files/report.pdf"): "not_html",
        local_site.url("/news/empty.html"): "empty_extraction",
    }

    # polling again finds nothing new: entries are remembered, and nothing is published twice
    again = json.loads(ingest(worker_env, "poll", "--wait", "--json", "--timeout", "60").stdout)
    assert (again["new"], again["duplicates"], again["failed"]) == (0, 0, 0)
    assert sum(len(v) for k, v in streams(r).items() if k != "storyline") == 7

    stats = json.loads(ingest(worker_env, "stats", "--json").stdout)
    assert stats["counters"]["article"] == 3 and stats["deadletter_reasons"]["http_404"] == 1
    assert stats["feeds"]["total"] == 1 and stats["feeds"]["failing"] == 0


def test_enqueue_wait_prints_each_outcome(local_site: Site, worker_env: dict[str, str]) -> None:
    urls = [local_site.url("/news/energy-pause.html"), local_site.url("/news/gone.html")]
    cp = ingest(worker_env, "enqueue", "--wait", "--json", *urls)
    assert cp.returncode == 0, cp.stderr
    rows = [json.loads(line) for line in cp.stdout.splitlines()]
    assert [r["outcome"] for r in rows] == ["article", "deadletter"]
    assert "energy-ceasefire" in rows[0]["storylines"] and rows[1]["reason"] == "http_404"
    again = [
        json.loads(line) for line in ingest(worker_env, "enqueue", "--wait", "--json", urls[0]).stdout.splitlines()
    ]
    assert again[0]["already_seen"] is True and again[0]["outcome"] == "article"

    items = ingest(worker_env, "items", "--stream", "storyline:energy-ceasefire", "--json")
    assert [json.loads(line)["url"] for line in items.stdout.splitlines()] == [urls[0]]
    consumed = ingest(worker_env, "consume", "--group", "alerts", "--count", "10")
    assert [json.loads(line)["url"] for line in consumed.stdout.splitlines()] == [urls[0]]
    assert ingest(worker_env, "consume", "--group", "alerts").stdout == ""  # acked: not delivered twice


def test_a_killed_worker_loses_nothing_and_publishes_nothing_twice(
    site: Site, redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    # Slow pages keep tasks in flight when the worker dies; a short visibility timeout brings them back.
    paras = ARTICLES["library_reopening"]["paragraphs"]
    links = []
    for n in range(8):
        links.append(
            site.add(
                f"/slow/{n}.html", page(f"Story {n}", [f"Story number {n} of the day. {p}" for p in paras]), delay=1.5
            )
        )
    site.add("/feeds/slow.xml", rss(links), content_type="application/rss+xml")
    # the shortest visibility timeout the deadlines allow (ingest/limits.py): 3 + 5 + 1.5 + 5 + 5 s
    env = env_for(
        redis_url,
        tmp_path,
        INGEST_VISIBILITY_TIMEOUT="20",
        INGEST_ATTEMPT_DEADLINE="3",
        INGEST_MAX_BODY_BYTES=str(2**20),
    )
    assert ingest(env, "feeds", "add", site.url("/feeds/slow.xml")).returncode == 0
    first = Worker(env, tmp_path / "w1.log")
    poll = subprocess.Popen(
        [sys.executable, "-m", "ingest", "poll", "--wait", "--json", "--timeout", "150"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while r.hget(keys.STATS, "article") is None:  # kill only once work is truly under way
        assert time.monotonic() < deadline, (tmp_path / "w1.log").read_text()[-3000:]
        time.sleep(0.1)
    first.kill()
    second = Worker(env, tmp_path / "w2.log")
    try:
        out, err = poll.communicate(timeout=200)
    finally:
        second.stop()
    assert poll.returncode == 0, out + err
    s = streams(r)
    urls = [d["url"] for d in s["articles"] + s["duplicates"] + s["deadletter"]]
    assert sorted(urls) == sorted(links)  # each exactly once: none lost, none twice


def test_an_updated_feed_entry_is_published_as_a_revision(
    site: Site, worker_env: dict[str, str], r: redis.Redis
) -> None:
    obs = ARTICLES["observatory"]
    link = site.add("/news/burst.html", page(obs["title"], obs["paragraphs"], "2025-03-21"))

    def feed(updated: str) -> None:
        site.add(
            "/atom.xml",
            f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>S</title>'
            f"<entry><id>urn:burst</id><title>t</title><link href='{link}'/><updated>{updated}</updated>"
            "</entry></feed>",
            content_type="application/atom+xml",
        )

    feed("2025-03-21T08:00:00Z")
    assert ingest(worker_env, "feeds", "add", site.url("/atom.xml")).returncode == 0
    first = json.loads(ingest(worker_env, "poll", "--wait", "--json", "--timeout", "120").stdout)
    assert first["new"] == 1
    site.add(
        "/news/burst.html",
        page(
            obs["title"] + " (updated)",
            [*obs["paragraphs"], "Update: a second observatory has confirmed the detection of the repeating pattern."],
            "2025-03-21",
        ),
    )
    feed("2025-03-21T15:00:00Z")
    second = json.loads(ingest(worker_env, "poll", "--wait", "--json", "--timeout", "120").stdout)
    assert (second["new"], second["duplicates"]) == (0, 1)
    (original,) = streams(r)["articles"]
    (revision,) = streams(r)["duplicates"]
    dup = revision["duplicate"]
    assert (dup["of"], dup["method"]) == (original["id"], "revision")
    assert dup["changes"]["title_changed"] is True
    assert dup["changes"]["new_text_length"] > dup["changes"]["old_text_length"]
    assert revision["id"] != original["id"] and revision["canonical_url"] == original["canonical_url"]


def test_transient_failures_are_retried_then_dead_lettered_and_busy_hosts_wait(
    site: Site, redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    obs = ARTICLES["observatory"]
    calls = {"flaky": 0}

    def flaky(_handler: object) -> Page:
        calls["flaky"] += 1
        if calls["flaky"] <= 2:
            return Page(b"try later", 503, {"Content-Type": "text/plain", "Retry-After": "1"})
        return Page(page(obs["title"], obs["paragraphs"]).encode(), 200, {"Content-Type": "text/html"})

    flaky_url = site.route("/flaky.html", flaky)
    down_url = site.add("/down.html", "down", status=503, content_type="text/plain")
    # Five pages of one host with a 1 s politeness delay and waits capped at 0.3 s: most attempts
    # meet a busy host, which must delay them, not use up their retries.
    lib = ARTICLES["library_reopening"]["paragraphs"]
    polite = [site.add(f"/polite/{n}.html", page(f"Story {n}", [f"Item {n}. {p}" for p in lib])) for n in range(5)]
    env = env_for(redis_url, tmp_path, INGEST_TASK_MAX_RETRIES="2", INGEST_HOST_DELAY="1", INGEST_MAX_HOST_WAIT="0.3")
    worker = Worker(env, tmp_path / "worker.log")
    try:
        cp = ingest(env, "enqueue", "--wait", "--json", "--timeout", "200", flaky_url, down_url, *polite)
    finally:
        worker.stop()
    assert cp.returncode == 0, cp.stdout + cp.stderr
    rows = {row["url"]: row for row in map(json.loads, cp.stdout.splitlines())}
    assert rows[flaky_url]["outcome"] == "article" and calls["flaky"] == 3
    assert (rows[down_url]["outcome"], rows[down_url]["reason"]) == ("deadletter", "http_503")
    assert site.hits("/down.html") == 3  # the first try and two retries
    assert all(rows[u]["outcome"] in ("article", "duplicate") for u in polite)
