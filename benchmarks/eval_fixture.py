"""Score the storyline tagger on one of the project's own fixture sets (tests/fixtures/storyline/*.jsonl).

Each row (id, label, lang, published, title, text) becomes a Document exactly as the quality gate
(tests/test_storyline_quality.py) builds it: the row's title and text, its language, and the publication
date at 00:00 UTC or None. The storyline is the one the file is named after (``energy-ceasefire.blind`` ->
``energy-ceasefire``) unless --storyline says otherwise. Label ``storyline`` is positive, ``related`` and
``off-topic`` negative. Prints precision, recall, F1, non-English recall, the Brier score, and every error
with the rules that fired (Storyline.explain) and the evidence they found.

    python benchmarks/eval_fixture.py tests/fixtures/storyline/energy-ceasefire.blind.jsonl [-v]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.storyline import Document, Storyline, Verdict, load_storylines  # noqa: E402


def to_document(row: dict[str, object]) -> Document:
    """One fixture row as the quality gate builds it."""
    published = row.get("published")
    lang = row.get("lang")
    title = row.get("title")
    return Document(
        title=title if isinstance(title, str) else None,
        text=str(row.get("text") or ""),
        language=lang if isinstance(lang, str) else None,
        published_at=datetime.fromisoformat(published).replace(tzinfo=UTC) if isinstance(published, str) else None,
    )


def show(kind: str, row: dict[str, object], v: Verdict) -> None:
    """One article's verdict: score, what each rule added, the top evidence."""
    print(
        f"\n{kind} {row.get('id')} [{row.get('label')}, {row.get('lang')}, {row.get('published')}] "
        f"score {v.score:.3f} raw {v.raw:.2f}"
    )
    print(f"   title: {str(row.get('title'))[:110]!r}")
    print("   rules:", ", ".join(f"{name} {w:+.2f}" for name, w in v.contributions) or "-")
    for phrase in v.evidence[:3]:
        print(f"   evidence: {phrase!r}")


Judged = tuple[dict[str, object], Verdict]


def report(storyline: Storyline, rows: list[dict[str, object]], ignore_dates: bool, verbose: bool) -> list[Judged]:
    """Print the scores and every error; return the right answers (for the closest calls)."""
    tp = fp = fn = 0
    pos_non_en = hit_non_en = 0
    brier = 0.0
    errors: list[tuple[str, dict[str, object], Verdict]] = []
    right: list[Judged] = []
    wrong_by_kind: Counter[str] = Counter()
    for row in rows:
        v = storyline.explain(to_document({**row, "published": None} if ignore_dates else row))
        positive = row.get("label") == "storyline"
        brier += (v.score - positive) ** 2
        if positive and row.get("lang") != "en":
            pos_non_en += 1
            hit_non_en += v.on_storyline
        tp += positive and v.on_storyline
        fn += positive and not v.on_storyline
        fp += not positive and v.on_storyline
        if positive != v.on_storyline:
            errors.append(("FN" if positive else "FP", row, v))
            wrong_by_kind[f"{row.get('label')}/{'en' if row.get('lang') == 'en' else 'non-en'}"] += 1
        else:
            right.append((row, v))
            if verbose:
                errors.append(("ok", row, v))

    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    non_en = hit_non_en / pos_non_en if pos_non_en else 1.0
    print(f"precision {p:.3f}  recall {r:.3f}  F1 {f1:.3f}   (tp {tp}, fp {fp}, fn {fn})")
    print(f"recall on non-English positives {non_en:.3f} ({hit_non_en}/{pos_non_en})   Brier {brier / len(rows):.4f}")
    if wrong_by_kind:
        print("errors by label/language:", ", ".join(f"{k} {n}" for k, n in sorted(wrong_by_kind.items())))
    for kind, row, v in sorted(errors, key=lambda e: (e[0] == "ok", e[0], -e[2].raw)):
        show(kind, row, v)
    return right


def main(argv: list[str] | None = None) -> int:
    """Print the scores, every error and the closest right answers of one fixture set."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fixture", type=Path)
    ap.add_argument("--storylines", type=Path, default=ROOT / "seeds" / "storylines")
    ap.add_argument("--storyline", help="storyline id (default: the file name up to the first dot)")
    ap.add_argument("--ignore-dates", action="store_true", help="drop every published date")
    ap.add_argument("--closest", type=int, default=3, help="how many right answers nearest the threshold to show")
    ap.add_argument("-v", "--verbose", action="store_true", help="also list the correct verdicts")
    args = ap.parse_args(argv)

    name = args.storyline or args.fixture.name.split(".")[0]
    by_id = {s.id: s for s in load_storylines(args.storylines)}
    if name not in by_id:
        print(f"no storyline {name!r} in {args.storylines}", file=sys.stderr)
        return 2
    storyline = by_id[name]
    rows = [json.loads(line) for line in args.fixture.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"storyline {storyline.id} (version {storyline.version}) on {args.fixture} ({len(rows)} rows)")
    right = report(storyline, rows, args.ignore_dates, args.verbose)
    # The right answers closest to the threshold: where a new article is most likely to go wrong.
    print(f"\nclosest calls (threshold {storyline.threshold}):")
    for side in ("positive", "negative"):
        mine = [(row, v) for row, v in right if (row.get("label") == "storyline") == (side == "positive")]
        for row, v in sorted(mine, key=lambda m: abs(m[1].raw - storyline.threshold))[: args.closest]:
            show(f"near ({side})", row, v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
