"""Publishing, jobs and consuming against a real Redis: once-only publication, runs, consumer groups."""

from __future__ import annotations

import json
import threading
import time

import redis

from ingest import keys
from ingest.config import Settings
from ingest.consume import Consumer, after, latest
from ingest.jobs import Jobs
from ingest.models import DeadLetter, Duplicate, Item, Job, Source, StorylineTag, utcnow
from ingest.publish import Publisher


class ListDispatcher:
    """Records what would be queued."""

    def __init__(self) -> None:
        self.articles: list[Job] = []

    def send_article(self, job: Job) -> None:
        self.articles.append(job)

    def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
        raise AssertionError("not used")


def make_item(n: int, on: bool = True, dup: Duplicate | None = None) -> Item:
    return Item(
        id=f"item{n}",
        url=f"https://a.example/{n}",
        canonical_url=f"https://a.example/{n}",
        title=f"T{n}",
        text="text",
        language="en",
        author=None,
        published_at=None,
        fetched_at=utcnow(),
        source=Source(via="manual"),
        duplicate=dup,
        storylines=[
            StorylineTag(
                id="energy-ceasefire",
                score=0.9 if on else 0.1,
                on_storyline=on,
                labels=["the-call"] if on else [],
                evidence=["pause"] if on else [],
            )
        ],
    )


def entries(r: redis.Redis, stream: str) -> list[dict[str, object]]:
    return [json.loads(f[b"data"]) for _id, f in r.xrange(stream)]


def test_item_is_published_once_with_its_storyline_stream(r: redis.Redis, settings: Settings) -> None:
    pub = Publisher(r, settings)
    job = Job("j1", "https://a.example/1")
    assert pub.item(job, make_item(1)) is True
    assert pub.item(job, make_item(1)) is False  # a re-run after a crash publishes nothing
    assert [e["id"] for e in entries(r, keys.ARTICLES)] == ["item1"]
    assert [e["id"] for e in entries(r, keys.storyline_stream("energy-ceasefire"))] == ["item1"]
    assert entries(r, keys.ARTICLES)[0]["schema"] == 1
    assert r.hget(keys.job("j1"), "state") == b"done"
    assert r.hget(keys.STATS, "article") == b"1"
    assert r.hget(keys.STATS_STORYLINE, "energy-ceasefire") == b"1"


def test_off_storyline_items_and_duplicates_stay_out_of_the_storyline_stream(
    r: redis.Redis, settings: Settings
) -> None:
    pub = Publisher(r, settings)
    pub.item(Job("j2", "https://a.example/2"), make_item(2, on=False))
    pub.item(Job("j3", "https://a.example/3"), make_item(3, dup=Duplicate(of="item1", method="near", score=0.9)))
    assert [e["id"] for e in entries(r, keys.ARTICLES)] == ["item2"]
    dups = entries(r, keys.DUPLICATES)
    assert [e["id"] for e in dups] == ["item3"] and dups[0]["duplicate"] == {
        "of": "item1",
        "method": "near",
        "score": 0.9,
        "changes": None,
    }
    assert r.xlen(keys.storyline_stream("energy-ceasefire")) == 0


def test_concurrent_publishers_of_one_job_publish_once(redis_url: str, settings: Settings) -> None:
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def go() -> None:
        client = redis.Redis.from_url(redis_url)
        barrier.wait()
        results.append(Publisher(client, settings).item(Job("jr", "https://a.example/r"), make_item(9)))
        client.close()

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert redis.Redis.from_url(redis_url).xlen(keys.ARTICLES) == 1


def test_deadletter_carries_reason_and_detail(r: redis.Redis, settings: Settings) -> None:
    pub = Publisher(r, settings)
    job = Job("jd", "https://a.example/missing")
    pub.deadletter(
        job,
        DeadLetter(
            id="jd",
            url=job.url,
            reason="http_404",
            detail="404 Not Found",
            source=Source(via="manual"),
            failed_at=utcnow(),
        ),
    )
    (letter,) = entries(r, keys.DEADLETTER)
    assert (letter["url"], letter["reason"], letter["detail"]) == (job.url, "http_404", "404 Not Found")
    assert r.hget(keys.STATS, "reason:http_404") == b"1"


def test_stream_retention_is_capped(r: redis.Redis, settings: Settings) -> None:
    pub = Publisher(r, settings.model_copy(update={"stream_maxlen": 10}))
    for n in range(300):
        pub.item(Job(f"m{n}", f"https://a.example/{n}"), make_item(n, on=False))
    assert r.xlen(keys.ARTICLES) < 300  # approximate trimming (MAXLEN ~) works in whole nodes


# ---- jobs and runs ----


def test_the_same_url_is_one_job(r: redis.Redis) -> None:
    jobs, dispatcher = Jobs(r), ListDispatcher()
    run = jobs.new_run("enqueue")
    first = jobs.enqueue(dispatcher, "https://a.example/story?utm_source=x", via="manual", run_id=run)
    again = jobs.enqueue(dispatcher, "https://a.example/story", via="manual", run_id=run)
    assert first.is_new and not again.is_new and first.job_id == again.job_id
    assert len(dispatcher.articles) == 1
    assert r.hget(keys.STATS, "already_seen") == b"1"


def test_wait_returns_when_every_job_of_the_run_is_done(r: redis.Redis, settings: Settings) -> None:
    jobs, dispatcher, pub = Jobs(r), ListDispatcher(), Publisher(r, settings)
    run = jobs.new_run("enqueue")
    for n in range(3):
        jobs.enqueue(dispatcher, f"https://a.example/{n}", via="manual", run_id=run)
    assert jobs.wait(run, timeout=0.2).pending == 3

    def finish() -> None:
        for n, job in enumerate(dispatcher.articles):
            time.sleep(0.05)
            pub.item(job, make_item(n))

    t = threading.Thread(target=finish)
    t0 = time.monotonic()
    t.start()
    progress = jobs.wait(run, timeout=10)
    t.join()
    assert progress.finished and progress.count("article") == 3
    assert time.monotonic() - t0 < 5  # woken by the events, not by the timeout


def test_in_flight_jobs_older_than_the_limit_are_stale(r: redis.Redis) -> None:
    jobs, dispatcher = Jobs(r), ListDispatcher()
    jobs.enqueue(dispatcher, "https://a.example/lost", via="manual")
    assert jobs.stale(older_than=3600) == []
    stale = jobs.stale(older_than=-1)
    assert [j.url for j in stale] == ["https://a.example/lost"]


def test_begin_counts_crashed_attempts_and_refuses_finished_jobs(r: redis.Redis, settings: Settings) -> None:
    jobs = Jobs(r)
    job = Job("jb", "https://a.example/b")
    assert jobs.begin(job) == 0  # the first attempt
    jobs.retried(job.job_id)  # ... ended in a scheduled retry: not a crash
    assert jobs.begin(job) == 0
    assert jobs.begin(job) == 1  # the previous attempt neither finished nor retried: it crashed
    Publisher(r, settings).item(job, make_item(5))
    assert jobs.begin(job) is None


# ---- reading ----


def fill(r: redis.Redis, settings: Settings, n: int) -> None:
    pub = Publisher(r, settings)
    for i in range(n):
        pub.item(Job(f"f{i}", f"https://a.example/{i}"), make_item(i, on=False))


def test_latest_and_after_page_through_a_stream(r: redis.Redis, settings: Settings) -> None:
    fill(r, settings, 5)
    assert [e.data["id"] for e in latest(r, keys.ARTICLES, 2)] == ["item3", "item4"]
    page1 = after(r, keys.ARTICLES, None, 3)
    page2 = after(r, keys.ARTICLES, page1[-1].entry_id, 3)
    assert [e.data["id"] for e in page1 + page2] == [f"item{i}" for i in range(5)]


def test_consumer_group_delivers_each_entry_once_and_acks(r: redis.Redis, settings: Settings) -> None:
    fill(r, settings, 5)
    c1 = Consumer(r, keys.ARTICLES, "g", "c1")
    seen = []
    for batch in c1.batches(count=None, block=None):
        seen += [e.data["id"] for e in batch]
        c1.ack(batch)
    assert seen == [f"item{i}" for i in range(5)]
    assert list(Consumer(r, keys.ARTICLES, "g", "c2").batches(count=None, block=None)) == []
    assert r.xpending(keys.ARTICLES, "g")["pending"] == 0


def test_entries_left_pending_by_a_dead_consumer_are_reclaimed(r: redis.Redis, settings: Settings) -> None:
    fill(r, settings, 4)
    dead = Consumer(r, keys.ARTICLES, "g", "dead")
    taken = next(iter(dead.batches(count=2, block=None)))  # read, never acked: the consumer "dies"
    assert len(taken) == 2
    time.sleep(0.05)
    alive = Consumer(r, keys.ARTICLES, "g", "alive", min_idle_ms=10)
    got = []
    for batch in alive.batches(count=None, block=None):
        got += [e.data["id"] for e in batch]
        alive.ack(batch)
    assert sorted(got) == [f"item{i}" for i in range(4)]
    assert r.xpending(keys.ARTICLES, "g")["pending"] == 0


def test_a_consumer_restarting_under_its_name_gets_its_own_pending_first(r: redis.Redis, settings: Settings) -> None:
    fill(r, settings, 3)
    first = Consumer(r, keys.ARTICLES, "g", "me")
    next(iter(first.batches(count=1, block=None)))  # crashed before ack
    again = Consumer(r, keys.ARTICLES, "g", "me")
    batch = next(iter(again.batches(count=None, block=None)))
    assert [e.data["id"] for e in batch] == ["item0"]


def test_claim_and_publish_in_one_script_writes_what_two_steps_wrote(r: redis.Redis, settings: Settings) -> None:
    from pathlib import Path

    from ingest.dedup import Candidate, DedupIndex, fingerprint
    from ingest.urls import host_of, item_id

    articles = json.loads((Path(__file__).parent / "fixtures" / "dedup" / "articles.json").read_text())
    rail = "\n".join(articles["rail_strike"]["paragraphs"])
    other = "\n".join(articles["rail_strike_other_outlet"]["paragraphs"])
    fire = "\n".join(articles["harbour_fire"]["paragraphs"])
    # most of the fire report, one paragraph swapped for another story's: a near copy scoring below 1
    edited = "\n".join(articles["harbour_fire"]["paragraphs"][:-1] + articles["rail_strike"]["paragraphs"][:1])
    fetched = utcnow()
    # (job, url, text, title): new; URL copy; content copy; another outlet's report; new; same-host
    # revision; edited copy;
    # a new text under a known URL; and a re-run of the first job
    arrivals = [
        ("j1", "https://ledger.example/rail", rail, "Rail strike"),
        ("j2", "https://ledger.example/rail", rail, "Rail strike"),
        ("j3", "https://mirror.example/copy", rail, "Rail strike"),
        ("j4", "https://courier.example/rail", other, "Rail walkout"),
        ("j5", "https://harbour.example/fire", fire, "Harbour fire"),
        ("j6", "https://harbour.example/fire-2", fire + "\nUpdated with a late detail.", "Harbour fire (update)"),
        ("j7", "https://briefs.example/fire", edited, "Fire, edited"),
        ("j8", "https://ledger.example/rail", fire, "Rail strike"),
        ("j1", "https://ledger.example/rail", rail, "Rail strike"),
    ]

    def item(n: int, url: str, body: str, title: str, ident: str, dup: Duplicate | None) -> Item:
        base = make_item(n, on=n % 2 == 1, dup=dup)
        return base.model_copy(
            update={"id": ident, "url": url, "canonical_url": url, "title": title, "text": body, "fetched_at": fetched}
        )

    def run(one_script: bool) -> tuple[list[object], list[object]]:
        r.flushall()
        index, pub = DedupIndex(r, settings), Publisher(r, settings)
        outcomes: list[object] = []
        for n, (jid, url, body, title) in enumerate(arrivals):
            job = Job(jid, url, run_id="run1")
            cand = Candidate(item_id(url), item_id(f"{url}#{n}"), url, host_of(url), title, len(body))
            fp = fingerprint(body)
            if one_script:
                claim, created = pub.claim_and_publish(
                    job, index, cand, fp, item(n, url, body, title, cand.item_id, None)
                )
            else:
                claim = index.claim(keys.job(jid), cand, fp)
                created = pub.item(job, item(n, url, body, title, claim.item_id, claim.duplicate))
            outcomes.append((claim, created, r.hgetall(keys.job(jid))))
        streams = [keys.ARTICLES, keys.DUPLICATES, keys.storyline_stream("energy-ceasefire")]
        written = [(s, [f[b"data"] for _id, f in r.xrange(s)]) for s in streams]
        return outcomes, [*written, r.hgetall(keys.STATS), r.hgetall(keys.run("run1"))]

    two_steps, one = run(False), run(True)
    methods = [c.duplicate.method if c.duplicate else None for c, _created, _job in two_steps[0]]  # type: ignore[union-attr]
    assert methods == [None, "url", "content", None, None, "revision", "near", "revision", None]
    for (c1, created1, job1), (c2, created2, job2) in zip(one[0], two_steps[0], strict=True):  # type: ignore[misc]
        assert (c1, created1) == (c2, created2)
        for when in (b"finished", b"published"):  # times: the clock and the stream entry id
            job1.pop(when), job2.pop(when)
        assert job1 == job2
    assert one[1] == two_steps[1]  # byte for byte, every stream, counters and run
