"""Time the dashboard and /metrics at scale, and what the indexes cost per published article.

Fills a private redis-server (never a shared one) through the real Publisher: --articles accepted
articles on the energy-ceasefire storyline (90 days, 12 languages, 300 outlets, 8 labels, texts of
about 1,500 characters) plus a few dead letters; then serves the real app on uvicorn on 127.0.0.1
and times page renders over HTTP. Then registers --feeds feeds (a tenth of them failing) and times
a Prometheus scrape.

    python benchmarks/bench_web.py [--articles 100000] [--feeds 10000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import keys  # noqa: E402
from ingest.api import create_app  # noqa: E402
from ingest.config import Settings  # noqa: E402
from ingest.embedded import free_port, start_redis  # noqa: E402
from ingest.feeds import FeedStore  # noqa: E402
from ingest.models import DeadLetter, Item, Job, Source, StorylineTag  # noqa: E402
from ingest.publish import Publisher  # noqa: E402
from ingest.web import indexes  # noqa: E402

LANGS = ["en", "uk", "ru", "de", "fr", "es", "pt", "pl", "it", "tr", "ar", "ja"]
LABELS = ["the-call", "energy-infrastructure", "violations", "black-sea", "riyadh-talks", "zelensky-response"]
LABELS += ["expiry", "us-mediation"]
WORDS = [
    "pause",
    "strikes",
    "energy",
    "infrastructure",
    "ceasefire",
    "power",
    "plants",
    "moratorium",
    "talks",
    "grid",
    "drones",
    "Kyiv",
    "Moscow",
]


class NullDispatcher:
    """Sends nothing: the benchmark only reads."""

    def send_article(self, job: Job) -> None:
        """Nothing to send."""

    def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
        """Nothing to send."""


def make_item(n: int, rng: random.Random, start: datetime) -> Item:
    """One accepted article on the storyline."""
    text = " ".join(rng.choice(WORDS) for _ in range(190))
    day = start + timedelta(days=rng.randrange(90), hours=rng.randrange(24))
    return Item(
        id=f"bench{n}",
        url=f"https://outlet{rng.randrange(300)}.example/a/{n}",
        canonical_url=f"https://outlet{rng.randrange(300)}.example/a/{n}",
        title=f"Article {n} on the energy pause",
        text=text,
        language=rng.choice(LANGS),
        author=None,
        published_at=day if rng.random() < 0.5 else None,
        fetched_at=day,
        source=Source(via="feed", feed_url="https://outlet.example/feed"),
        storylines=[
            StorylineTag(
                id="energy-ceasefire",
                score=0.9,
                on_storyline=True,
                labels=rng.sample(LABELS, rng.randrange(1, 4)),
                evidence=["energy pause"],
            )
        ],
    )


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    """Median and worst milliseconds of GET path, and the response size."""
    client.get(path)  # warm
    times, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        resp = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
        size = len(resp.content)
    return statistics.median(times), max(times), size


def index_cost(
    client: redis.Redis, pub: Publisher, settings: Settings, rng: random.Random, start: datetime
) -> tuple[list[float], list[float]]:
    """Seconds per publish (indexes included), and per index update alone, over 4,000 articles."""
    sample = [make_item(i, rng, start) for i in range(4000)]
    with_ix, index_only = [], []
    for i, item in enumerate(sample):
        t = time.perf_counter()
        pub.item(Job(f"j{i}", item.url), item)
        with_ix.append(time.perf_counter() - t)
        t = time.perf_counter()
        indexes.record(client, f"{i + 1}-1", settings.stream_maxlen, item=item)
        index_only.append(time.perf_counter() - t)
    return with_ix, index_only


def main() -> None:
    """Fill, serve, measure, print a table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--feeds", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = random.Random(13)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp), persistent=False)
        client = redis.Redis.from_url(server.url)
        settings = Settings(redis_url=server.url, data_dir=Path(tmp) / "var")
        pub = Publisher(client, settings)
        start = datetime(2025, 3, 1, tzinfo=UTC)

        with_ix, index_only = index_cost(client, pub, settings, rng, start)
        client.flushall()

        t0 = time.perf_counter()
        for i in range(args.articles):
            item = make_item(i, rng, start)
            pub.item(Job(f"j{i}", item.url), item, {"fetch": 0.1, "extract": 0.03, "dedup": 0.002, "tag": 0.004})
        for i in range(200):
            url = f"https://gone{i}.example/x"
            letter = DeadLetter(
                id=f"d{i}",
                url=url,
                reason=rng.choice(["http_404", "timeout", "not_html"]),
                detail="x",
                source=Source(via="manual"),
                failed_at=datetime.now(UTC),
            )
            pub.deadletter(Job(f"d{i}", url), letter)
        fill = time.perf_counter() - t0

        app = create_app(settings, client, NullDispatcher())
        config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off")
        web = uvicorn.Server(config)
        threading.Thread(target=web.run, daemon=True).start()
        while not web.started:
            time.sleep(0.02)
        http = httpx.Client(base_url=f"http://127.0.0.1:{config.port}", timeout=60)
        rows = []
        for label, path in (
            ("storyline view (home)", "/"),
            ("storyline view, by outlet", "/storylines/energy-ceasefire?by=outlet"),
            ("filtered: language + label", "/storylines/energy-ceasefire?lang=uk&label=violations"),
            ("filtered: date range, page 20", "/storylines/energy-ceasefire?since=2025-03-10&until=2025-04-10&page=20"),
            ("text search (reads <= 2,000)", "/storylines/energy-ceasefire?q=article+99999"),
            ("article view", f"/items/{client.xrange(keys.ARTICLES, count=1)[0][0].decode()}"),
            ("dead letters view", "/deadletters"),
            ("system view", "/system"),
        ):
            rows.append((label, *timed(http, path, args.repeat)))

        store = FeedStore(client, settings)
        t0 = time.perf_counter()
        for i in range(args.feeds):
            url = f"https://feeds{i}.example/rss.xml"
            store.add(url)
            if i % 10 == 0:
                client.hset(keys.feed(url), mapping={"failures": 2, "last_status": "error"})
        feeds_fill = time.perf_counter() - t0
        rows.append((f"/metrics with {args.feeds:,} feeds", *timed(http, "/metrics", args.repeat)))
        rows.append((f"feeds view, page 1 of {args.feeds // 100}", *timed(http, "/feeds", args.repeat)))

        mem = client.info("memory")["used_memory"]
        index_mem = sum(int(client.memory_usage(k, samples=0) or 0) for k in client.scan_iter(f"{keys.WEB_PREFIX}*"))
        web.should_exit = True
        server.stop()

    print(f"filled {args.articles:,} articles in {fill:.0f} s; {args.feeds:,} feeds in {feeds_fill:.0f} s")
    print(f"redis memory with both: {mem / 2**20:.0f} MiB, of which the dashboard indexes {index_mem / 2**20:.1f} MiB")
    print(
        f"publish per article: {statistics.median(with_ix) * 1e3:.3f} ms median with indexes; "
        f"the index update alone {statistics.median(index_only) * 1e3:.3f} ms median"
    )
    print("\n| page | median ms | worst ms | bytes |\n|---|---:|---:|---:|")
    for label, med, worst, size in rows:
        print(f"| {label} | {med:.1f} | {worst:.1f} | {size:,} |")


if __name__ == "__main__":
    main()
