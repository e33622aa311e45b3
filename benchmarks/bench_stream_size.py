"""Redis memory per published item, per stream, and what MAXLEN bounds it to.

Publishes items built from the project's own fixture articles (texts of 1-5 KB, like real news
pages after cleaning) through the real Publisher into a private redis-server, then asks Redis
for each stream's MEMORY USAGE. Run: python benchmarks/bench_stream_size.py [--items 3000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import redis

from ingest import keys
from ingest.config import Settings
from ingest.embedded import start_redis
from ingest.models import Duplicate, Item, Job, Source, StorylineTag, utcnow
from ingest.publish import Publisher

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def texts() -> list[tuple[str, str]]:
    """(title, text) of every fixture article."""
    arts = json.loads((FIXTURES / "dedup" / "articles.json").read_text())
    out = [(a["title"], "\n".join(a["paragraphs"])) for a in arts.values()]
    energy = json.loads((FIXTURES / "site" / "energy_pause.json").read_text())
    return [*out, (energy["title"], "\n".join(energy["paragraphs"]))]


def item(n: int, title: str, text: str, duplicate: bool) -> Item:
    tags = [
        StorylineTag(
            id=sid,
            score=0.93 if on else 0.04,
            on_storyline=on,
            version="2025.03-4",
            labels=["energy-infrastructure", "the-call"] if on else [],
            evidence=[text[i : i + 90] for i in range(0, 450, 90)] if on else [],
        )
        for sid, on in (("black-sea-ceasefire", False), ("energy-ceasefire", n % 2 == 0))
    ]
    return Item(
        id=f"{n:020x}",
        url=f"https://news.example/world/2025/03/{n}?utm_source=rss",
        canonical_url=f"https://news.example/world/2025/03/{n}",
        title=title,
        text=text,
        language="en",
        author="Jane Doe",
        published_at=utcnow(),
        fetched_at=utcnow(),
        source=Source(via="feed", feed_url="https://news.example/world/rss.xml"),
        duplicate=Duplicate(of=f"{n - 1:020x}", method="near", score=0.83) if duplicate else None,
        storylines=tags,
    )


def main() -> None:
    """Publish, measure, print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--redis-server", help="redis-server binary (default: the embedded mode's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp), persistent=False, binary=args.redis_server)
        try:
            client = redis.Redis.from_url(server.url)
            pub = Publisher(client, Settings(redis_url=server.url, data_dir=Path(tmp)))
            corpus = texts()
            sizes = []
            for n in range(args.items):
                title, text = corpus[n % len(corpus)]
                it = item(n, title, text, duplicate=n % 5 == 4)
                sizes.append(len(it.to_json().encode()))
                pub.item(Job(f"job{n}", it.url), it)
            report = {"items": args.items, "json_bytes_mean": round(statistics.mean(sizes))}
            for name, key in (
                ("articles", keys.ARTICLES),
                ("duplicates", keys.DUPLICATES),
                ("storyline:energy-ceasefire", keys.storyline_stream("energy-ceasefire")),
            ):
                length = int(client.xlen(key))
                used = int(client.memory_usage(key, samples=0) or 0)
                report[name] = {"entries": length, "bytes": used, "bytes_per_entry": round(used / max(1, length))}
            report["redis_version"] = client.info("server")["redis_version"]
            print(json.dumps(report, indent=1))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
