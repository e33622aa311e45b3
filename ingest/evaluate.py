"""Score a storyline definition on a labelled JSONL file: precision, recall and F1 per language, and every error
with each rule's share (``ingest storyline eval``).

Two row formats are read, one JSON object per line:

- the project's fixtures (tests/fixtures/storyline/): ``id``, ``label``, ``lang``, ``published`` (ISO date or
  null), ``title``, ``text``;
- corpus rows: ``id``, ``url``, ``label``, ``lang``, ``date_hint`` (ISO date or null), ``text``; a leading
  ``date YYYY-MM-DD`` line is dropped, the first paragraph is the title when it is short and more follow
  (else the title is made from the URL's slug, as a page's <title> would be).

Label ``storyline`` (or ``seed-duplicate``) is positive; ``related`` and ``off-topic`` are negative.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from ingest.errors import ConfigError
from ingest.storyline import Document, Storyline, Verdict

__all__ = ["Evaluation", "Scores", "evaluate", "read_rows", "to_document"]

POSITIVE = {"storyline", "seed-duplicate"}
NEGATIVE = {"related", "off-topic"}
_DATE_PREFIX = re.compile(r"^\s*date \d{4}-\d{2}-\d{2}\s*")
_MAX_TITLE = 160


class EvalError(ConfigError):
    """A labelled file that cannot be scored; the message names the file, the line and the problem."""


def read_rows(path: Path) -> list[dict[str, object]]:
    """The labelled rows of a JSONL file; EvalError names the first bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise EvalError(f"{path}: not UTF-8 text") from None
    rows: list[dict[str, object]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path}:{n}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise EvalError(f"{path}:{n}: expected a JSON object")
        label = row.get("label")
        if label not in POSITIVE | NEGATIVE:
            expected = ", ".join(sorted(POSITIVE | NEGATIVE))
            raise EvalError(f"{path}:{n}: label {label!r} is not one of {expected}")
        if not isinstance(row.get("text"), str) or not str(row["text"]).strip():
            raise EvalError(f"{path}:{n}: missing text")
        for key in ("published", "date_hint"):
            value = row.get(key)
            if value is not None and not _is_date(value):
                raise EvalError(f"{path}:{n}: {key} {value!r} is not an ISO date")
        rows.append(row)
    if not rows:
        raise EvalError(f"{path}: no labelled rows")
    return rows


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _stamp(value: object, hour: int) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    ts = datetime.fromisoformat(value)
    if len(value) <= len("2025-03-18"):
        ts = ts.replace(hour=hour)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def to_document(row: dict[str, object], ignore_dates: bool = False) -> Document:
    """One row as the tagger sees the article: fixture rows as they are, corpus rows as a served page."""
    raw_lang = row.get("lang")
    lang = raw_lang if isinstance(raw_lang, str) else None
    if "title" in row or "published" in row:
        title = row.get("title")
        return Document(
            title=title if isinstance(title, str) else None,
            text=str(row.get("text") or ""),
            language=lang,
            published_at=None if ignore_dates else _stamp(row.get("published"), 0),
        )
    text = _DATE_PREFIX.sub("", str(row.get("text") or "")).strip()
    paras = [p.strip() for p in re.split(r"\n+", text) if p.strip()]
    head: str | None = None
    if len(paras) > 1 and len(paras[0]) <= _MAX_TITLE:
        head, paras = paras[0], paras[1:]
    else:
        path = urlparse(str(row.get("url") or "")).path
        slug = [w for w in re.split(r"[-_/.]", path) if w.isalpha() and len(w) > 1]
        head = " ".join(slug[-12:]).capitalize() or None
    return Document(
        title=head,
        text="\n".join(paras),
        language=lang,
        published_at=None if ignore_dates else _stamp(row.get("date_hint"), 9),
    )


@dataclass
class Scores:
    """Counts of one language (or of all), and the measures they give (None where undefined)."""

    items: int = 0
    positives: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            # No positive and no false positive: every verdict was right, nothing to measure.
            return None if self.fp or self.fn else (1.0 if self.items else None)
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "items": self.items,
            "positives": self.positives,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "f1": _round(self.f1),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass
class Error:
    """A wrong verdict and its workings."""

    kind: str  # "FP" or "FN"
    row: dict[str, object]
    verdict: Verdict
    published: datetime | None  # as the tagger saw it (None with --ignore-dates)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "id": self.row.get("id"),
            "lang": self.row.get("lang"),
            "label": self.row.get("label"),
            "published": self.published.isoformat() if self.published else None,
            "verdict": self.verdict.as_dict(),
        }


@dataclass
class Evaluation:
    """The scores of one storyline on one labelled file, overall and per language, with every error."""

    storyline: str
    version: str
    threshold: float
    source: str
    overall: Scores = field(default_factory=Scores)
    languages: dict[str, Scores] = field(default_factory=dict)
    errors: list[Error] = field(default_factory=list)
    undated: int = 0
    non_english_positives: int = 0
    non_english_found: int = 0

    @property
    def recall_non_english(self) -> float | None:
        return self.non_english_found / self.non_english_positives if self.non_english_positives else None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (``--json``)."""
        return {
            "storyline": self.storyline,
            "version": self.version,
            "threshold": self.threshold,
            "file": self.source,
            "undated": self.undated,
            "overall": {**self.overall.as_dict(), "recall_non_english": _round(self.recall_non_english)},
            "languages": {lang: s.as_dict() for lang, s in sorted(self.languages.items())},
            "errors": [e.as_dict() for e in self.errors],
        }

    def format(self) -> str:
        """The report as text: a table per language, then every error with each rule's share."""
        o = self.overall
        out = [
            f"storyline {self.storyline} (version {self.version}, threshold {self.threshold}) on {self.source}: "
            f"{o.items} articles, {o.positives} on the storyline, {self.undated} undated",
            "",
            f"{'language':<10}{'items':>6}{'on':>5}{'tp':>5}{'fp':>5}{'fn':>5}{'precision':>11}{'recall':>8}{'F1':>7}",
        ]
        rows = sorted(self.languages.items())
        for lang, s in [*rows, ("all", o)]:
            out.append(
                f"{lang:<10}{s.items:>6}{s.positives:>5}{s.tp:>5}{s.fp:>5}{s.fn:>5}"
                f"{_fmt(s.precision):>11}{_fmt(s.recall):>8}{_fmt(s.f1):>7}"
            )
        out.append(f"recall on non-English positives: {_fmt(self.recall_non_english)}")
        for kind, what in (("FP", "false positives"), ("FN", "false negatives")):
            errors = [e for e in self.errors if e.kind == kind]
            out.append("")
            out.append(f"{what}: {len(errors)}")
            for e in errors:
                out.extend(_format_error(e))
        return "\n".join(out)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _format_error(e: Error) -> list[str]:
    v, row = e.verdict, e.row
    when = e.published.date().isoformat() if e.published else "undated"
    lines = [
        f"  {e.kind} {row.get('id')} [{row.get('lang')}, {row.get('label')}, {when}] "
        f"score {v.score:.3f} raw {v.raw:.2f} (threshold {v.threshold})",
        f"     window: {v.window}",
    ]
    for r in v.rules:
        phrase = f"  {r.phrase!r}" if r.phrase else ""
        lines.append(f"     {r.contribution:+7.2f}  {r.kind:<8} {r.name}{phrase}")
    if not v.rules:
        lines.append("     (no rule matched)")
    return lines


def evaluate(
    storyline: Storyline, rows: Iterable[dict[str, object]], source: str = "", ignore_dates: bool = False
) -> Evaluation:
    """Tag every row, count per language, keep every wrong verdict with its explanation."""
    ev = Evaluation(storyline.id, storyline.version, storyline.threshold, source)
    for row in rows:
        doc = to_document(row, ignore_dates)
        v = storyline.explain(doc)
        positive = row.get("label") in POSITIVE
        lang = str(row.get("lang") or "?")
        ev.undated += doc.published_at is None
        for s in (ev.overall, ev.languages.setdefault(lang, Scores())):
            s.items += 1
            s.positives += positive
            s.tp += positive and v.on_storyline
            s.fp += not positive and v.on_storyline
            s.fn += positive and not v.on_storyline
        if positive and lang != "en":
            ev.non_english_positives += 1
            ev.non_english_found += v.on_storyline
        if positive != v.on_storyline:
            ev.errors.append(Error("FN" if positive else "FP", row, v, doc.published_at))
    return ev


def storyline_for(path: Path, storylines: Sequence[Storyline], wanted: str | None) -> Storyline:
    """The storyline named by --storyline, else by the file name (<id>[.<set>].jsonl); EvalError otherwise."""
    by_id = {s.id: s for s in storylines}
    defined = ", ".join(sorted(by_id)) or "none"
    if wanted is not None:
        if wanted not in by_id:
            raise EvalError(f"no storyline {wanted!r}; defined: {defined}")
        return by_id[wanted]
    name = path.name.split(".")[0]
    if name in by_id:
        return by_id[name]
    if len(by_id) == 1:
        return next(iter(by_id.values()))
    raise EvalError(f"{path.name} does not name a storyline: pass --storyline ID (defined: {defined})")
