"""Score the storyline tagger on a labelled corpus (e.g. ../shared/eval/dev-corpus.jsonl).

Articles are built the way the end-to-end benchmark (../shared/tools/evalbench.py) serves them: a leading
"date YYYY-MM-DD" is stripped, the first paragraph is the title when there is more than one paragraph and
it is at most 160 characters (otherwise the title is made from the URL's slug, as a page's <title> would
be; --no-slug-titles leaves it empty), the rest is the text; language is the row's ``lang`` and the
publication date its ``date_hint`` (09:00 UTC, may be null). Label ``storyline`` is positive, ``related``
and ``off-topic`` are negative.

The corpus is read at run time only: its texts are third-party and never copied into this repository.

    python benchmarks/eval_tagger.py ../shared/eval/dev-corpus.jsonl [--storyline energy-ceasefire] [-v]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.storyline import Document, Verdict, load_storylines  # noqa: E402

DATE_PREFIX = re.compile(r"^\s*date \d{4}-\d{2}-\d{2}\s*")
POSITIVE = {"storyline", "seed-duplicate"}


def to_document(row: dict[str, object], slug_titles: bool = True) -> Document:
    """One corpus row as the pipeline would see the served page."""
    text = DATE_PREFIX.sub("", str(row.get("text") or "")).strip()
    paras = [p.strip() for p in re.split(r"\n+", text) if p.strip()]
    title: str | None = None
    if len(paras) > 1 and len(paras[0]) <= 160:
        title, paras = paras[0], paras[1:]
    elif slug_titles:
        path = urlparse(str(row.get("url") or "")).path
        slug = [w for w in re.split(r"[-_/.]", path) if w.isalpha() and len(w) > 1]
        title = " ".join(slug[-12:]).capitalize() or None
    hint = row.get("date_hint")
    published = None
    if isinstance(hint, str) and hint:
        published = datetime.fromisoformat(hint).replace(hour=9, tzinfo=UTC)
    lang = row.get("lang")
    return Document(
        title=title, text="\n".join(paras), language=lang if isinstance(lang, str) else None, published_at=published
    )


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 (0 when undefined)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main(argv: list[str] | None = None) -> int:
    """Print precision, recall, F1, non-English recall and every error with its evidence."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--storylines", type=Path, default=ROOT / "seeds" / "storylines")
    ap.add_argument("--storyline", default="energy-ceasefire")
    ap.add_argument("--no-slug-titles", action="store_true", help="leave the title empty instead of the slug")
    ap.add_argument(
        "--ignore-dates",
        action="store_true",
        help="drop every date_hint: how well the text alone separates the storyline",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="also list correct verdicts with their scores")
    args = ap.parse_args(argv)

    by_id = {s.id: s for s in load_storylines(args.storylines)}
    if args.storyline not in by_id:
        print(f"no storyline {args.storyline!r} in {args.storylines}", file=sys.stderr)
        return 2
    storyline = by_id[args.storyline]
    rows = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]

    tp = fp = fn = 0
    pos_non_en = hit_non_en = 0
    errors: list[tuple[str, dict[str, object], Verdict]] = []
    margins: list[tuple[float, str, dict[str, object], Verdict]] = []  # distance to the threshold
    for row in rows:
        seen = {**row, "date_hint": None} if args.ignore_dates else row
        verdict = storyline.explain(to_document(seen, slug_titles=not args.no_slug_titles))
        positive = row.get("label") in POSITIVE
        if positive == verdict.on_storyline:
            margin = abs(verdict.raw - storyline.threshold)
            margins.append((margin, "positive" if positive else "negative", row, verdict))
        if positive and row.get("lang") != "en":
            pos_non_en += 1
            hit_non_en += verdict.on_storyline
        if positive and verdict.on_storyline:
            tp += 1
        elif positive:
            fn += 1
            errors.append(("FN", row, verdict))
        elif verdict.on_storyline:
            fp += 1
            errors.append(("FP", row, verdict))
        elif args.verbose:
            errors.append(("ok", row, verdict))
        if args.verbose and positive and verdict.on_storyline:
            errors.append(("ok", row, verdict))

    p, r, f1 = prf(tp, fp, fn)
    print(f"storyline {storyline.id} (version {storyline.version}) on {args.corpus} ({len(rows)} rows)")
    print(f"precision {p:.3f}  recall {r:.3f}  F1 {f1:.3f}   (tp {tp}, fp {fp}, fn {fn})")
    non_en = hit_non_en / pos_non_en if pos_non_en else 0.0
    print(f"recall on non-English positives {non_en:.3f} ({hit_non_en}/{pos_non_en})")
    for kind, row, v in sorted(errors, key=lambda e: (e[0] == "ok", -e[2].raw)):
        show(kind, row, v)
    # The right answers closest to the threshold: where a new article is most likely to go wrong.
    print(f"\nclosest calls (threshold {storyline.threshold}):")
    for side in ("positive", "negative"):
        for _m, _side, row, v in sorted((m for m in margins if m[1] == side), key=lambda m: m[0])[:3]:
            show(f"near ({side})", row, v)
    return 0


def show(kind: str, row: dict[str, object], v: Verdict) -> None:
    """One article's verdict: score, what each rule added, the top evidence."""
    print(
        f"\n{kind} {row.get('id')} [{row.get('label')}, {row.get('lang')}, {row.get('date_hint')}] "
        f"score {v.score:.3f} raw {v.raw:.2f}"
    )
    print("   rules:", ", ".join(f"{name} {w:+.2f}" for name, w in v.contributions) or "-")
    for phrase in v.evidence[:3]:
        print(f"   evidence: {phrase!r}")


if __name__ == "__main__":
    sys.exit(main())
