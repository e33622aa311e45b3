"""Time the storyline tagger: microseconds per article of about 2,000 characters.

Articles are assembled from the project's own fixture texts (tests/fixtures/storyline/*.jsonl), a few
thousand of them, each about --chars long: a fixture's title and text followed by further texts in the
same language (an article is written in one language), in a fixed pseudo-random order. Nearly all of
them are war news dense in the storyline's terms, so this is a heavy load for the matcher, not a light
one. Loading (parsing and compiling the definitions) is timed separately: it happens once per process.

    python benchmarks/bench_tagger.py [--articles 3000] [--chars 2000] [--repeat 3]
    python benchmarks/bench_tagger.py --corpus ../shared/eval/dev-corpus.jsonl   # real articles instead
    python benchmarks/bench_tagger.py --undated   # every article undated: time cues read in each

With --corpus, the articles are a labelled corpus's rows (read at run time, built as eval_tagger.py
builds them), repeated up to --articles.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.storyline import Document, load_storylines, tag_all  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "storyline"


def build_articles(n: int, chars: int, seed: int = 7) -> list[Document]:
    """n articles of roughly `chars` characters, each a title plus paragraphs from several fixtures."""
    rows = [
        json.loads(line)
        for p in sorted(FIXTURES.glob("*.jsonl"))
        for line in p.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    by_lang: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_lang.setdefault(row["lang"], []).append(row)
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        lead = rng.choice(rows)
        same = by_lang[lead["lang"]]
        paras = [lead["text"]]
        while sum(len(p) + 1 for p in paras) < chars:
            paras.append(rng.choice(same)["text"])
        text = "\n".join(paras)[:chars]
        published = None
        if lead["published"] and rng.random() < 0.9:
            published = datetime.fromisoformat(lead["published"]).replace(tzinfo=UTC)
        docs.append(Document(lead["title"], text, lead["lang"], published))
    return docs


def main(argv: list[str] | None = None) -> int:
    """Print load time and microseconds per article (mean of the best run, and p95)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--chars", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--storylines", type=Path, default=ROOT / "seeds" / "storylines")
    ap.add_argument("--corpus", type=Path, help="time on this JSONL corpus's articles instead")
    ap.add_argument(
        "--undated", action="store_true", help="drop every publication date: the text's own time cues are read"
    )
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    storylines = load_storylines(args.storylines)
    load_ms = (time.perf_counter() - t0) * 1000
    if args.corpus is not None:
        from benchmarks.eval_tagger import to_document

        lines = args.corpus.read_text(encoding="utf-8").splitlines()
        real = [to_document(json.loads(line)) for line in lines if line.strip()]
        docs = (real * (args.articles // len(real) + 1))[: args.articles]
    else:
        docs = build_articles(args.articles, args.chars)
    if args.undated:
        docs = [Document(d.title, d.text, d.language, None) for d in docs]
    mean_chars = statistics.mean(len(d.text) + len(d.title or "") for d in docs)

    for d in docs[:50]:  # warm up caches and lazily built tables
        tag_all(storylines, d)
    best: list[float] = []
    best_cpu = float("inf")
    for _ in range(args.repeat):
        times = []
        cpu = time.process_time()
        for d in docs:
            t = time.perf_counter()
            tag_all(storylines, d)
            times.append(time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        if not best or sum(times) < sum(best):
            best = times
    n = len(storylines)
    best.sort()
    mean_us = statistics.mean(best) * 1e6
    p95_us = best[int(len(best) * 0.95)] * 1e6
    cpu_us = best_cpu / len(docs) * 1e6
    print(f"loaded {n} storylines ({', '.join(s.id for s in storylines)}) in {load_ms:.1f} ms")
    print(f"{len(docs)} articles, mean {mean_chars:.0f} characters, best of {args.repeat} runs")
    # CPU time is what tagging costs; wall time also counts waiting for a core on a shared machine.
    print(
        f"all {n} storylines: {cpu_us:.0f} us CPU per article ({cpu_us / n:.0f} per storyline); "
        f"wall {mean_us:.0f} us (p95 {p95_us:.0f})"
    )
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average {load} on {os.cpu_count()} CPUs")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
