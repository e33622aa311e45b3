"""Runs, retries, heartbeats and explanations against a real Redis (the worker side is in test_e2e_runs.py)."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
import redis

from ingest import explain, heartbeat, keys
from ingest.config import Settings
from ingest.jobs import Jobs
from ingest.models import DeadLetter, Duplicate, Item, Job, Source, utcnow
from ingest.publish import Publisher
from ingest.retry import RetryError, parse_since, retry
from ingest.storyline import load_storylines

ROOT = Path(__file__).resolve().parent.parent
ENERGY = json.loads((Path(__file__).parent / "fixtures" / "site" / "energy_pause.json").read_text())


class ListDispatcher:
    """Records what would be queued (the queue itself is exercised end to end in test_e2e_runs.py)."""

    def __init__(self) -> None:
        self.articles: list[Job] = []

    def send_article(self, job: Job) -> None:
        self.articles.append(job)

    def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
        raise AssertionError("not used")


def commands(r: redis.Redis) -> int:
    """Commands the server has run since the last reset (the INFO asking is not counted)."""
    stats = r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def reset(r: redis.Redis) -> None:
    r.config_resetstat()


def letter(job: Job, reason: str, detail: str = "d") -> DeadLetter:
    return DeadLetter(
        id=job.job_id, url=job.url, reason=reason, detail=detail, source=Source(via="manual"), failed_at=utcnow()
    )


# ---- per-run counters ----


def test_counts_cost_the_same_whatever_the_size_of_the_run(r: redis.Redis, settings: Settings) -> None:
    jobs, pub, d = Jobs(r), Publisher(r, settings), ListDispatcher()
    cost = {}
    for size in (10, 1000):
        run = jobs.new_run("enqueue")
        for n in range(size):
            jobs.enqueue(d, f"https://a.example/{size}/{n}", via="manual", run_id=run)
        for job in d.articles[-size:][: size // 2]:
            pub.deadletter(job, letter(job, "http_404"))
        reset(r)
        c = jobs.counts([run])
        cost[size] = commands(r)
        assert (c.jobs, c.done, c.outcomes["deadletter"], c.finished) == (size, size // 2, size // 2, False)
    # a wake-up of the waiter reads three keys per run, never the run's jobs
    assert cost[10] == cost[1000] <= 4


def test_wait_ends_when_the_counters_say_so_and_reads_the_jobs_once(r: redis.Redis, settings: Settings) -> None:
    jobs, pub, d = Jobs(r), Publisher(r, settings), ListDispatcher()
    run = jobs.new_run("enqueue")
    for n in range(300):
        jobs.enqueue(d, f"https://a.example/{n}", via="manual", run_id=run)
    seen: list[int] = []

    def finish() -> None:
        for job in d.articles:
            pub.deadletter(job, letter(job, "http_404"))

    reset(r)
    t = threading.Thread(target=finish)
    t.start()
    progress = jobs.wait(run, timeout=60, poll_every=0.2, on_progress=lambda c: seen.append(c.done))
    t.join()
    assert progress.finished and progress.count("deadletter") == 300
    stats = r.info("commandstats")
    # 300 publishes ran one script each; the waiter read each job once (HGETALL) at the end,
    # not once per wake-up as it did when it re-read the run after every finished job.
    assert int(stats["cmdstat_hgetall"]["calls"]) <= 300 + 2 * len(seen) + 2
    assert seen[-1] == 300


def test_bursts_are_read_as_one_but_the_last_job_ends_the_wait_at_once(
    r: redis.Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long reading interval: the waiter coalesces the burst, yet must not sit out the interval
    # once the events it has counted may be the run's last ones.
    monkeypatch.setattr("ingest.jobs.MIN_READ_INTERVAL", 30.0)
    jobs, pub, d = Jobs(r), Publisher(r, settings), ListDispatcher()
    run = jobs.new_run("enqueue")
    for n in range(20):
        jobs.enqueue(d, f"https://a.example/{n}", via="manual", run_id=run)
    seen: list[int] = []
    last_published = 0.0

    def finish() -> None:
        nonlocal last_published
        for job in d.articles[:19]:
            pub.deadletter(job, letter(job, "http_404"))
        time.sleep(0.5)
        pub.deadletter(d.articles[19], letter(d.articles[19], "http_404"))
        last_published = time.monotonic()

    t = threading.Thread(target=finish)
    t.start()
    progress = jobs.wait(run, timeout=120, poll_every=60, on_progress=lambda c: seen.append(c.done))
    ended = time.monotonic()
    t.join()
    assert progress.finished and progress.count("deadletter") == 20
    assert ended - last_published < 5, "the wait sat out its reading interval after the last job"
    assert len(seen) <= 3 and seen[-1] == 20


def test_a_url_another_run_has_in_flight_is_waited_on_and_a_done_one_is_listed_as_seen(
    r: redis.Redis, settings: Settings
) -> None:
    jobs, pub, d = Jobs(r), Publisher(r, settings), ListDispatcher()
    first = jobs.new_run("enqueue")
    jobs.enqueue(d, "https://a.example/shared", via="manual", run_id=first)
    jobs.enqueue(d, "https://a.example/done", via="manual", run_id=first)
    pub.deadletter(d.articles[1], letter(d.articles[1], "http_404"))
    second = jobs.new_run("enqueue")
    assert jobs.enqueue(d, "https://a.example/shared", via="manual", run_id=second).status == "queued"
    assert jobs.enqueue(d, "https://a.example/done", via="manual", run_id=second).status == "done"
    c = jobs.counts([second])
    assert (c.jobs, c.foreign_left, c.finished) == (0, 1, False)
    pub.deadletter(d.articles[0], letter(d.articles[0], "timeout"))
    assert jobs.counts([second]).finished
    p = jobs.progress(second)
    assert [j["url"] for j in p.seen.values()] == ["https://a.example/done"]
    assert [j["outcome"] for j in p.jobs.values()] == ["deadletter"]


# ---- retry ----


def test_retry_filters_keep_the_entries_and_give_each_url_a_new_job(r: redis.Redis, settings: Settings) -> None:
    jobs, pub, d = Jobs(r), Publisher(r, settings), ListDispatcher()
    run = jobs.new_run("enqueue")
    for url in ("https://a.example/404", "https://a.example/priv", "https://a.example/late"):
        jobs.enqueue(d, url, via="manual", run_id=run)
    pub.deadletter(d.articles[0], letter(d.articles[0], "http_404"))
    pub.deadletter(d.articles[1], letter(d.articles[1], "blocked_private_address"))
    time.sleep(0.01)
    cut = time.time()
    time.sleep(0.01)
    pub.deadletter(d.articles[2], letter(d.articles[2], "http_404"))
    first_jobs = [j.job_id for j in d.articles]

    # the URL is remembered as seen: enqueueing it again does nothing
    assert jobs.enqueue(d, "https://a.example/404", via="manual").status == "done"

    res = retry(r, d, reason="http_404", since=cut)
    assert (res.matched, res.enqueued, res.urls) == (1, 1, ["https://a.example/late"])
    assert d.articles[-1].url == "https://a.example/late" and d.articles[-1].job_id not in first_jobs
    assert d.articles[-1].run_id == res.run_id

    res = retry(r, d, reason="http_404")
    assert (res.matched, res.enqueued, res.already_retried) == (2, 1, 1)
    assert retry(r, d, urls=["https://a.example/priv"]).enqueued == 1
    assert retry(r, d).enqueued == 0  # every entry was retried once already
    assert retry(r, d, again=True, dry_run=True).urls  # ... unless asked again
    assert r.xlen(keys.DEADLETTER) == 3  # the entries stay

    entry = r.xrange(keys.DEADLETTER)[0][0].decode()
    assert retry(r, d, entry_id=entry, again=True).urls == ["https://a.example/404"]
    sent = len(d.articles)
    with pytest.raises(RetryError, match=re.escape("no dead letter for https://nowhere.example/x")):
        retry(r, d, urls=["https://a.example/404", "https://nowhere.example/x"])
    with pytest.raises(RetryError, match="no dead letter with entry id"):
        retry(r, d, entry_id="1-0")
    with pytest.raises(RetryError, match="not a stream entry id"):
        retry(r, d, entry_id="yesterday")
    assert len(d.articles) == sent  # a bad request enqueues nothing


def test_parse_since_reads_dates_times_and_ages() -> None:
    assert parse_since("2025-03-18") == parse_since("2025-03-18T00:00:00Z")
    assert abs(parse_since("2h") - (time.time() - 7200)) < 5
    assert parse_since("1900-01-01") == 0.0  # before any entry: everything
    for bad in ("soon", "99999999999999d", "²d", "2025-13-01", ""):
        with pytest.raises(RetryError, match="cannot read time"):
            parse_since(bad)


# ---- heartbeat ----


def test_heartbeats_list_living_workers_and_forget_silent_ones(r: redis.Redis) -> None:
    now = time.time()
    heartbeat.beat(r, "host-a", 11, 4, now - 100, now=now)
    heartbeat.beat(r, "host-b", 22, 2, now - 100, now=now - keys.HEARTBEAT_TTL - 1)
    alive = heartbeat.workers_alive(r, now=now)
    assert [(w.hostname, w.pid, w.concurrency) for w in alive] == [("host-a", 11, 4)]
    assert alive[0].last_seen == pytest.approx(now)
    heartbeat.stop(r, alive[0].name)
    assert heartbeat.workers_alive(r) == []


# ---- explain ----


def article(n: int, text: str, title: str, dup: Duplicate | None = None, published: str | None = None) -> Item:
    from datetime import datetime

    return Item(
        id=f"item{n}",
        url=f"https://a.example/{n}",
        canonical_url=f"https://a.example/{n}",
        title=title,
        text=text,
        language="en",
        author=None,
        published_at=datetime.fromisoformat(published) if published else None,
        fetched_at=utcnow(),
        source=Source(via="manual"),
        duplicate=dup,
        storylines=[],
    )


def test_show_explains_tagging_and_quotes_what_a_duplicate_shares(r: redis.Redis, settings: Settings) -> None:
    jobs, pub, d = Jobs(r), Publisher(r, settings), ListDispatcher()
    text = "\n".join(ENERGY["paragraphs"])
    jobs.enqueue(d, "https://a.example/1", via="manual")
    pub.item(d.articles[0], article(1, text, ENERGY["title"], published=f"{ENERGY['published']}T08:00:00+00:00"))
    teaser = "Breaking. " + " ".join(ENERGY["paragraphs"][1].split()[:40]) + " More later."
    pub.item(
        Job("j2", "https://b.example/2"), article(2, teaser, "Teaser", Duplicate(of="item1", method="near", score=0.8))
    )
    storylines = load_storylines(settings.storylines_path)

    shown = explain.explain(r, settings, "https://a.example/1", storylines)
    assert shown is not None and shown["item"]["id"] == "item1" and shown["stream"] == "articles"
    energy = next(s for s in shown["storylines"] if s["id"] == "energy-ceasefire")
    assert energy["on_storyline"] and energy["raw"] >= energy["threshold"]
    assert energy["contributions"] and sum(c["weight"] for c in energy["contributions"]) == pytest.approx(
        energy["raw"], abs=0.01
    )
    # the tagger's own explanation: each rule's kind and the phrase it matched, and the window decision
    rules = [c for c in energy["contributions"] if c["kind"] == "rule"]
    assert rules and all(c["phrase"] and c["phrase"] in f"{ENERGY['title']}\n{text}" for c in rules)
    assert energy["window"].startswith(f"published {ENERGY['published']}: inside the window")

    dup = explain.explain(r, settings, "item2")
    assert dup is not None and dup["stream"] == "duplicates"
    assert dup["duplicate"]["original"]["url"] == "https://a.example/1"
    assert dup["duplicate"]["original"]["title"] == ENERGY["title"]
    # quoted from word to word: the passage ends on the last shared word, not on its punctuation
    assert dup["duplicate"]["shared_passage"] == " ".join(ENERGY["paragraphs"][1].split()[:40]).rstrip(".,;")
    assert explain.explain(r, settings, "nope", storylines) is None
    # the index lives in time slices that expire whole once their URLs are no longer remembered
    (live,) = r.zrange(keys.ITEMS_INDEX_LIVE, 0, -1)
    index = keys.items_index(int(live))
    ttl_days = r.ttl(index) / 86400
    assert settings.seen_ttl_days < ttl_days <= settings.seen_ttl_days * (1 + 1 / keys.ITEMS_INDEX_SLICES) + 0.01
    assert explain.explain(r, settings, "https://a.example/unknown", storylines) is None


def test_show_a_dead_letter_gives_its_reason(r: redis.Redis, settings: Settings) -> None:
    jobs, pub, d = Jobs(r), Publisher(r, settings), ListDispatcher()
    jobs.enqueue(d, "https://a.example/gone", via="manual")
    pub.deadletter(d.articles[0], letter(d.articles[0], "http_404", "HTTP 404 Not Found"))
    shown = explain.explain(r, settings, "https://a.example/gone", [])
    assert shown is not None and shown["deadletter"] == {
        "reason": "http_404",
        "detail": "HTTP 404 Not Found",
        "retried_by_run": None,
    }


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("one two three four five six", "x one two three four five y", "one two three four five"),
        ("Alpha, beta gamma delta epsilon!", "alpha beta gamma delta epsilon zeta", "Alpha, beta gamma delta epsilon"),
        ("short text", "short text", None),
        ("a b c d e f g", "z y x w v u t", None),
    ],
)
def test_shared_passage(a: str, b: str, expected: str | None) -> None:
    assert explain.shared_passage(a, b) == expected


# ---- stream names ----


def test_a_misspelled_storyline_stream_is_refused_and_nothing_is_created(redis_url: str, r: redis.Redis) -> None:
    import subprocess
    import sys

    env = {"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"}
    for args in (
        ["items", "--stream", "storyline:energy-ceasfire"],
        ["consume", "--group", "g", "--stream", "storyline:x"],
    ):
        cp = subprocess.run([sys.executable, "-m", "ingest", *args], env=env, cwd=ROOT, capture_output=True, text=True)
        assert cp.returncode == 2 and "Traceback" not in cp.stderr
        assert "unknown storyline" in cp.stderr and "storyline:energy-ceasefire" in cp.stderr
    assert r.keys("*") == []  # no stream, no group
    ok = subprocess.run(
        [sys.executable, "-m", "ingest", "items", "--stream", "storyline:energy-ceasefire"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and ok.stdout == ""
