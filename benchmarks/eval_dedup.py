"""Dedup quality on real article text: copies the way outlets make them, and distinct real articles.

The synthetic corpus of bench_dedup.py measures scale; this measures judgement on real prose. It
reads real articles at run time (nothing is copied into the repository):

* ``../shared/data/aeb``: 181 article pages with their ground-truth bodies, on many topics;
* ``../shared/eval/dev-corpus.jsonl``: 65 news excerpts on the energy-ceasefire story and the war
  around it, many of them different outlets' reports of the same event, with the same quotes.

For each copy kind, a fresh private redis-server indexes every original (each under its own URL
and host), then claims one copy of each original under another outlet's URL and host. A copy is
found when the claim names its own original; naming another article is a wrong original. Every
original is itself claimed against all the others first: any duplicate among them is a false
duplicate, since the sources hold no two copies of one article.

Copy kinds (made here from each original, deterministic from --seed):

* ``template``  (aeb only) the text this project's clean stage extracts from the page, against the
  ground-truth body: the same article inside another site's template;
* ``exact``     the same text under another URL;
* ``wire``      a dateline, a credit line, a "Read more" line, a picture caption and a newsletter
  line added, as a syndicating site does;
* ``teaser``    the leading paragraphs, up to a third of the words;
* ``paragraphs`` a quarter of the paragraphs dropped and one new paragraph added;
* ``edited``    light copy editing: British spelling, one word in 30 changed, one sentence cut;
* ``teaser_edited`` both.

    python benchmarks/eval_dedup.py [--json-out FILE] [-v]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from ingest import keys  # noqa: E402
from ingest.clean import extract  # noqa: E402
from ingest.config import Settings  # noqa: E402
from ingest.dedup import SHINGLE_SIZE, Candidate, Claim, DedupIndex, fingerprint, words  # noqa: E402
from ingest.embedded import start_redis  # noqa: E402
from ingest.errors import PermanentError  # noqa: E402
from ingest.urls import host_of  # noqa: E402

KINDS = ("template", "exact", "wire", "teaser", "paragraphs", "edited", "teaser_edited")
BRITISH = {
    "color": "colour",
    "center": "centre",
    "defense": "defence",
    "labor": "labour",
    "favor": "favour",
    "organization": "organisation",
    "organizations": "organisations",
    "recognize": "recognise",
    "recognized": "recognised",
    "criticized": "criticised",
    "program": "programme",
    "percent": "per cent",
    "analyze": "analyse",
    "neighbor": "neighbour",
    "neighboring": "neighbouring",
    "authorized": "authorised",
    "emphasized": "emphasised",
}
DATELINES = ("KYIV", "MOSCOW", "WASHINGTON", "LONDON", "NEW YORK", "BRUSSELS", "PARIS", "BERLIN")
WIRES = ("Reuters", "AP", "AFP", "Bloomberg", "dpa")


@dataclass(frozen=True)
class Article:
    """A real article: where it came from, its text, and the page it was extracted from (aeb)."""

    ident: str
    text: str
    html: bytes | None
    url: str


def load_articles(shared: Path) -> list[Article]:
    """The aeb ground-truth bodies (with their pages) and the dev-corpus excerpts."""
    out: list[Article] = []
    aeb = shared / "data" / "aeb"
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    for digest, row in sorted(truth.items()):
        page = aeb / "html" / f"{digest}.html.gz"
        html = gzip.decompress(page.read_bytes()) if page.exists() else None
        out.append(
            Article(f"aeb:{digest[:12]}", row["articleBody"], html, row.get("url") or f"https://aeb.example/{digest}")
        )
    with open(shared / "eval" / "dev-corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out.append(Article(f"dev:{row['id']}", row["text"], None, row["url"]))
    return out


def paragraphs(text: str) -> list[str]:
    """Non-empty paragraphs (lines) of a text."""
    return [p for p in (line.strip() for line in text.split("\n")) if p]


def teaser(paras: list[str]) -> list[str]:
    """Leading paragraphs holding at least a third of the words."""
    total = sum(len(p.split()) for p in paras)
    out, n = [], 0
    for p in paras:
        out.append(p)
        n += len(p.split())
        if n * 3 >= total:
            break
    return out


def new_paragraph(rng: random.Random, vocab: list[str]) -> str:
    """A paragraph of words in no order any article has: text no original shares."""
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(30, 60))).capitalize() + "."


def edit(paras: list[str], rng: random.Random) -> list[str]:
    """Light copy editing: British spelling, one word in 30 swapped for another of the text, a sentence cut."""
    words_of_text = [w for p in paras for w in p.split()]
    out = []
    for p in paras:
        ws = [BRITISH.get(w.lower(), w) for w in p.split()]
        ws = [rng.choice(words_of_text) if rng.random() < 1 / 30 else w for w in ws]
        out.append(" ".join(ws))
    sentences = [(i, m.start(), m.end()) for i, p in enumerate(out) for m in re.finditer(r"[^.!?]+[.!?]", p)]
    if len(sentences) > 3:
        i, a, b = sentences[rng.randrange(1, len(sentences))]
        out[i] = (out[i][:a] + out[i][b:]).strip()
    return [p for p in out if p]


def make_copy(kind: str, art: Article, rng: random.Random, vocab: list[str]) -> str | None:
    """The copy of an article of one kind, or None when the kind does not apply to it."""
    paras = paragraphs(art.text)
    if kind == "template":
        if art.html is None:
            return None
        try:
            return extract(art.html, art.url).text
        except PermanentError:
            return None
    if kind == "exact":
        return art.text
    if kind == "wire":
        wire = rng.choice(WIRES)
        lead = f"{rng.choice(DATELINES)} ({wire}) - {paras[0]}"
        body = [lead, *paras[1:]]
        body.insert(min(len(body), 2), "Read more: " + " ".join(rng.choice(vocab) for _ in range(9)))
        body.insert(1, "Photo: " + " ".join(rng.choice(vocab) for _ in range(12)) + f". {wire}")
        body.append(f"Reporting by {rng.choice(vocab).title()} {rng.choice(vocab).title()}; editing by staff")
        body.append("Sign up for our daily briefing to get the news that matters in your inbox.")
        return "\n".join(body)
    if kind == "teaser":
        return "\n".join(teaser(paras))
    if kind == "paragraphs":
        kept = [p for i, p in enumerate(paras) if i == 0 or rng.random() >= 0.25]
        kept.insert(rng.randint(1, len(kept)), new_paragraph(rng, vocab))
        return "\n".join(kept)
    if kind == "edited":
        return "\n".join(edit(paras, rng))
    if kind == "teaser_edited":
        return "\n".join(edit(teaser(paras), rng))
    raise ValueError(kind)


def containment(a: str, b: str) -> float:
    """Exact containment of the smaller text's word shingles in the larger's (what the sketch estimates)."""

    def shingles(text: str) -> set[str]:
        toks = words(text)
        return {" ".join(toks[i : i + SHINGLE_SIZE]) for i in range(len(toks) - SHINGLE_SIZE + 1)}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / max(1, min(len(sa), len(sb)))


def original_url(a: Article) -> str:
    """The URL an original is indexed under: its own host, so no copy is a same-host revision."""
    return f"https://orig-{keys.digest(a.ident, 6)}.example/{keys.digest(a.ident)}"


class Claimer:
    """Claims texts against one private Redis; --reset empties it (it is this run's own server)."""

    def __init__(self, client: redis.Redis, url: str) -> None:
        self.client = client
        self.index = DedupIndex(client, Settings(redis_url=url))
        self.n = 0

    def reset(self) -> None:
        """Empty the private server and start a fresh index."""
        self.client.flushall()

    def claim(self, text: str, url: str) -> Claim:
        """Claim one text under url; the Claim."""
        self.n += 1
        fp = fingerprint(text)
        item = keys.digest(url)
        cand = Candidate(item, keys.digest(f"{url}#{fp.content.hex()}"), url, host_of(url), "", len(text))
        return self.index.claim(f"eval:job:{self.n}", cand, fp)


class Evaluation:
    """The originals, a private Redis to claim against, and what each copy kind scored."""

    def __init__(self, articles: list[Article], claimer: Claimer, seed: int) -> None:
        self.articles = articles
        self.claimer = claimer
        self.seed = seed
        self.threshold = Settings().near_duplicate_threshold
        self.vocab = sorted({w.lower() for a in articles for w in re.findall(r"[A-Za-z]{4,}", a.text)})
        self.by_id = {keys.digest(original_url(a)): a for a in articles}
        self.misses: list[dict[str, Any]] = []

    def name(self, item_id: str) -> str:
        """The article an item id belongs to (a copy's own id when it is not an original)."""
        return self.by_id[item_id].ident if item_id in self.by_id else item_id

    def index_originals(self) -> list[dict[str, Any]]:
        """A fresh index of every original; each one judged a duplicate of another is a false duplicate."""
        self.claimer.reset()
        false_dups = []
        for a in self.articles:
            dup = self.claimer.claim(a.text, original_url(a)).duplicate
            if dup is not None:
                false_dups.append(
                    {"article": a.ident, "of": self.name(dup.of), "method": dup.method, "score": dup.score}
                )
        return false_dups

    def kind(self, kind: str) -> dict[str, Any]:
        """Claim one copy of each original, of one kind, against a fresh index of the originals."""
        self.index_originals()
        rng = random.Random(f"{self.seed}:{kind}")
        found = wrong = total = below = 0
        scores: list[float] = []
        methods: Counter[str] = Counter()
        for a in self.articles:
            text = make_copy(kind, a, rng, self.vocab)
            if not text or not text.strip():
                continue
            total += 1
            dup = self.claimer.claim(text, f"https://copy-{total}.example/{kind}/{keys.digest(a.ident)}").duplicate
            if dup is not None and self.by_id.get(dup.of) is a:
                found += 1
                scores.append(dup.score)
                methods[dup.method] += 1
            elif dup is not None:
                wrong += 1
                self.misses.append({"kind": kind, "article": a.ident, "wrong_original": self.name(dup.of)})
            else:
                true = round(containment(text, a.text), 3)
                below += true < self.threshold
                self.misses.append({"kind": kind, "article": a.ident, "words": len(text.split()), "containment": true})
        scores.sort()
        return {
            "copies": total,
            "found": found,
            "recall": found / total if total else None,
            "wrong_original": wrong,
            # misses whose exact shingle containment is under the threshold: the edit made them no
            # longer copies by the definition, rather than the sketch missing them
            "missed_below_threshold": below,
            "methods": dict(methods),
            "score_min": scores[0] if scores else None,
            "score_p10": scores[len(scores) // 10] if scores else None,
        }


def run(shared: Path, seed: int) -> dict[str, Any]:
    """Every copy kind over every article; false duplicates among the originals."""
    articles = [a for a in load_articles(shared) if len(a.text.split()) >= 40]
    server = start_redis(Path(tempfile.mkdtemp(prefix="eval-dedup-")), persistent=False)
    try:
        ev = Evaluation(articles, Claimer(redis.Redis.from_url(server.url), server.url), seed)
        false_dups = ev.index_originals()
        kinds: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            k = kinds[kind] = ev.kind(kind)
            print(
                f"  {kind:<14} recall {k['found']}/{k['copies']} = {k['recall']:.3f}  wrong original "
                f"{k['wrong_original']}  (missed, under the threshold by exact containment: "
                f"{k['missed_below_threshold']})",
                flush=True,
            )
        return {
            "articles": len(articles),
            "originals_false_duplicates": false_dups,
            "kinds": kinds,
            "recall": sum(k["found"] for k in kinds.values()) / sum(k["copies"] for k in kinds.values()),
            "wrong_original": sum(k["wrong_original"] for k in kinds.values()),
            "misses": ev.misses,
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print the headline."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared directory (data/aeb, eval/)")
    ap.add_argument("--seed", type=int, default=20250318)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    args = ap.parse_args(argv)
    result = run(args.shared, args.seed)
    if args.verbose:
        for m in result["misses"]:
            print("  missed", m)
    fd = result["originals_false_duplicates"]
    for d in fd:
        print("  false duplicate among originals:", d)
    print(
        f"articles={result['articles']} recall={result['recall']:.3f} wrong_original={result['wrong_original']} "
        f"false_dup={len(fd)}"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
