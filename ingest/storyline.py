"""Storyline tagging: definitions are data (seeds/storylines/*.toml), compiled once, applied per article.

A definition names *concepts* (multilingual terms, see ingest/storyline_rules.py), *rules* (concepts that
must occur together within ``near`` characters, adding ``weight``), *negatives* (cues of other stories,
subtracting theirs), a publication *window* and a *threshold*. For one article::

    raw   = sum(rule weight x title boost x repeat factor)       over the rules that match
          - sum(negative weight x title boost x repeat factor)   over the negatives that match
          - no_anchor_penalty                                    when no rule marked anchor matched
    a passing mention:   raw = min(raw, threshold) - passing_penalty   (always off)
    outside the window:  raw = min(raw, threshold) - outside_penalty   (always off)
    score = 1 / (1 + exp(-slope * (raw - threshold)))           so raw >= threshold <=> score >= 0.5

A *passing mention* is an article whose evidence for (every match of every rule that adds weight) lies
in one stretch of at most ``passing_span`` characters, none of it in the title, the first ``lead``
characters of the text or its first ``lead_share`` (background comes last): one background sentence in an
article about something else (``lead`` 0: off).

Evidence is the text around the matches that weighed most, copied from the article's own title or text.
"""

from __future__ import annotations

import math
import re
import tomllib
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from ingest import timecues
from ingest.errors import ConfigError
from ingest.models import StorylineTag
from ingest.storyline_rules import (
    Cluster,
    Matcher,
    Prepared,
    Span,
    TermError,
    clusters,
    merge,
    prepare,
    prepare_text,
    snippet,
)

__all__ = [
    "Document",
    "RuleScore",
    "Storyline",
    "Verdict",
    "explain_all",
    "load_storyline",
    "load_storylines",
    "tag_all",
]


@dataclass(frozen=True)
class Document:
    """The parts of a cleaned article the tagger reads."""

    title: str | None
    text: str
    # ISO 639-1 when known, else None. The tagger does not need it: every language's terms are matched at
    # once (dictionary lookups cost the same), so a missing or wrong language cannot hide an article.
    language: str | None
    published_at: datetime | None  # timezone-aware or None (a naive one is read as UTC)


@dataclass(frozen=True)
class RuleScore:
    """What one rule, negative cue or gate did to an article's raw total."""

    name: str
    kind: str  # "rule" (evidence for), "negative" (evidence against), "gate" (anchor, passing, window, time)
    weight: float  # as defined; a gate's is 0
    contribution: float  # what it added (negative: took away), title boost and repeats included
    phrase: str | None  # where it matched, from the article's own title or text
    note: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "weight": self.weight,
            "contribution": self.contribution,
            "phrase": self.phrase,
            "note": self.note,
        }


@dataclass(frozen=True)
class Verdict:
    """Everything the tagger decided about one article and why (``ingest show``, ``storyline eval``)."""

    raw: float
    score: float
    on_storyline: bool
    labels: tuple[str, ...]
    evidence: tuple[str, ...]
    contributions: tuple[tuple[str, float], ...]  # rule name -> what it added (negative: took away)
    storyline: str = ""
    version: str = ""
    threshold: float = 0.0
    rules: tuple[RuleScore, ...] = ()  # every rule, negative and gate that changed raw, in that order
    window: str = ""  # the publication-window decision, in words
    time_cues: tuple[str, ...] = ()  # without a date: the dates and time cues the text names

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (what the API and ``--json`` print)."""
        return {
            "storyline": self.storyline,
            "version": self.version,
            "on_storyline": self.on_storyline,
            "score": round(self.score, 4),
            "raw": round(self.raw, 3),
            "threshold": self.threshold,
            "labels": list(self.labels),
            "evidence": list(self.evidence),
            "rules": [r.as_dict() for r in self.rules],
            "window": self.window,
            "time_cues": list(self.time_cues),
        }


@dataclass(frozen=True)
class _Rule:
    name: str
    groups: tuple[tuple[int, ...], ...]  # each group: concept indexes, any one of which satisfies it
    near: int  # characters; 0 = anywhere in the article
    weight: float  # negative for negative cues
    labels: tuple[str, ...]
    anchor: bool
    undated_only: bool
    absent: frozenset[int]  # concepts that must not occur anywhere in the article
    note: str | None = None
    # Derived once, for the set tests that rule most rules out before any clustering.
    required: frozenset[int] = field(init=False)
    alternatives: tuple[frozenset[int], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "required", frozenset(g[0] for g in self.groups if len(g) == 1))
        object.__setattr__(self, "alternatives", tuple(frozenset(g) for g in self.groups if len(g) > 1))

    def possible(self, present: set[int]) -> bool:
        """Whether the concepts present allow this rule at all."""
        return self.required <= present and not any(alt.isdisjoint(present) for alt in self.alternatives)


@dataclass(frozen=True)
class _Scoring:
    threshold: float
    slope: float
    title_boost: float
    repeat_bonus: float
    max_repeats: int
    no_anchor_penalty: float
    lead: int  # characters of text after the title; 0 = no passing-mention gate
    lead_share: float  # ... or this share of the text, whichever is longer
    passing_span: int
    passing_penalty: float
    outside_penalty: float
    max_evidence: int
    context_words: int


@dataclass(frozen=True)
class _Undated:
    """How an article without a publication date is dated by its own text ([window.undated])."""

    event: tuple[int, ...]  # concepts that name the story's event: a date counts only next to one
    reader: timecues.TimeReader  # its terms live in the storyline's matcher: one lookup pass for both
    near: int
    inside: float  # added: a date inside the window
    later: float  # subtracted: a date after the window
    retrospective: float  # subtracted: "a year ago", "last year's"
    other_month: float  # subtracted: a month with no year that the window does not hold
    earlier: float  # subtracted: a date before the window
    week: float  # subtracted: a truce of a week
    frost: float  # subtracted: frost, a cold snap
    winter: float  # subtracted: winter, the heating season


class _Hit(NamedTuple):
    rule: _Rule
    contribution: float
    cluster: Cluster  # where to quote from: the first occurrence in the title, else the first one
    first: int  # start of the earliest occurrence
    last: int  # start of the latest occurrence seen (unbounded when the repeat limit cut the search short)


# A rule's latest occurrence when the search stopped at the repeat limit: not known to be near the first.
_UNBOUNDED = 1 << 62

# Per article: each rule group's merged hits and their start offsets.
_Cache = dict[tuple[int, ...], tuple[list[Span], list[int]]]
# Per article: the prepared "title\ntext", where the title ends, and every concept's hits.
_Found = tuple[Prepared, int, list[list[Span]]]


class Storyline:
    """One compiled storyline definition."""

    def __init__(
        self,
        *,
        id: str,
        title: str,
        version: str,
        concepts: tuple[str, ...],
        matcher: Matcher,
        rules: tuple[_Rule, ...],
        window: tuple[date, date],
        scoring: _Scoring,
        source: Path,
        undated: _Undated | None = None,
    ) -> None:
        self.id = id
        self.title = title
        self.version = version
        self.concepts = concepts
        self.window = window
        self.threshold = scoring.threshold
        self.source = source
        self._matcher = matcher
        self._rules = rules
        self._sc = scoring
        self._undated = undated

    def __repr__(self) -> str:
        return f"Storyline({self.id!r}, version={self.version!r})"

    def score_of(self, raw: float) -> float:
        """The calibrated score of a raw evidence total: logistic, 0.5 exactly at the threshold."""
        z = self._sc.slope * (raw - self._sc.threshold)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def tag(self, doc: Document) -> StorylineTag:
        """This storyline's verdict on one article."""
        return self._tag(doc, self._find(_prepare(doc)))

    def explain(self, doc: Document) -> Verdict:
        """The verdict with its workings: what each rule, negative and gate did, with the phrase it matched."""
        return self._verdict(doc, self._find(_prepare(doc)), explain=True)

    # ---- internals ----

    def _find(self, prepared: tuple[Prepared, int]) -> _Found:
        return prepared[0], prepared[1], self._matcher.find(prepared[0])

    def _tag(self, doc: Document, found: _Found) -> StorylineTag:
        v = self._verdict(doc, found)
        score = round(v.score, 4)
        return StorylineTag(
            id=self.id,
            score=score if v.on_storyline else min(score, 0.4999),
            on_storyline=v.on_storyline,
            labels=list(v.labels),
            evidence=list(v.evidence),
            version=self.version,
        )

    def _verdict(self, doc: Document, found: _Found, explain: bool = False) -> Verdict:
        sc = self._sc
        prepared, title_len, spans = found
        dated = doc.published_at is not None
        hits = self._hits(dated, spans, title_len)
        text = prepared.text
        raw = sum(h.contribution for h in hits)
        scores = [
            RuleScore(
                h.rule.name,
                "rule" if h.rule.weight > 0 else "negative",
                abs(h.rule.weight),
                round(h.contribution, 3),
                self._phrase(h.cluster, text, title_len) if explain else None,
                h.rule.note,
            )
            for h in hits
        ]

        def gate(name: str, delta: float, note: str, kind: str = "gate") -> None:
            scores.append(RuleScore(name, kind, 0.0, round(delta, 3), None, note))

        window = f"{self.window[0]}..{self.window[1]}"
        cues: list[str] = []
        undated = ""
        if not dated and self._undated is not None:
            # Before the caps below: a date in the text is evidence like any rule's, and a passing mention
            # or a missing anchor must not be lifted over the threshold by it.
            placed, cues = self._time_cues(prepared, spans)
            for kind, delta in sorted(placed, key=lambda kd: kd[0] in _LATER):
                # A later date or a retrospective is a publication date outside the window in all but name:
                # the same gate, however many rules the recalled truce satisfies.
                changed = min(raw, sc.threshold) + delta if kind in _LATER else raw + delta
                gate(f"(text: {kind})", changed - raw, f"undated; the text names: {'; '.join(cues)}", "time")
                raw = changed
            undated = ", ".join(kind for kind, _ in placed)
        if not any(h.rule.anchor for h in hits):
            raw -= sc.no_anchor_penalty
            gate("(no anchor)", -sc.no_anchor_penalty, "no rule marked anchor matched")
        if sc.lead and self._passing(hits, title_len, len(text)):
            # One sentence late in an article about something else: however many rules it satisfies at
            # once ("the 30-day moratorium on energy strikes expired last week"), it is background.
            capped = min(raw, sc.threshold) - sc.passing_penalty
            gate("(passing mention)", capped - raw, "all the evidence in one short stretch past the lead")
            raw = capped
        if doc.published_at is not None:
            day = _utc_day(doc.published_at)
            if self._in_window(doc.published_at):
                decision = f"published {day}: inside the window {window}"
            else:
                # A hard gate, not a weight: later truces reuse every word of this one, so no amount of
                # matching text may carry an article from outside the window onto the storyline.
                capped = min(raw, sc.threshold) - sc.outside_penalty
                decision = f"published {day}: outside the window {window}"
                gate("(outside window)", capped - raw, decision)
                raw = capped
        elif undated:
            decision = f"undated: the text dates it ({undated}) against the window {window}"
        elif self._undated is not None:
            decision = f"undated: the text names no date next to the event; the window {window} cannot apply"
        else:
            decision = f"undated: the window {window} cannot apply"

        on = raw >= sc.threshold
        labels: list[str] = []
        for h in hits if on else ():
            if h.contribution > 0:
                labels.extend(x for x in h.rule.labels if x not in labels)
        return Verdict(
            raw=raw,
            score=self.score_of(raw),
            on_storyline=on,
            labels=tuple(labels),
            evidence=tuple(self._evidence(hits, text, title_len, on)),
            contributions=tuple((r.name, r.contribution) for r in scores),
            storyline=self.id,
            version=self.version,
            threshold=sc.threshold,
            rules=tuple(scores),
            window=decision,
            time_cues=tuple(cues),
        )

    def _time_cues(self, prepared: Prepared, spans: list[list[Span]]) -> tuple[list[tuple[str, float]], list[str]]:
        """Date an undated article by the time cues its text names next to the event: what each weighs, and why."""
        u = self._undated
        assert u is not None
        event = merge(spans[c] for c in u.event)
        if not event:
            return [], []
        starts = [sp[0] for sp in event]
        kinds: set[str] = set()
        cues: list[str] = []

        def near(s: int, e: int) -> bool:
            return _near(event, starts, s, e, u.near)

        for m in u.reader.read(prepared, spans, near):
            if not near(m.start, m.end):
                continue
            kind = self._placed(m)
            if kind:
                kinds.add(kind)
                if len(cues) < 8:
                    cues.append(f"{prepared.text[m.start : m.end]!r} {kind}")
        weights = {
            "after the window": u.later,
            "until a day outside the window": u.later,
            "a year or more later": u.retrospective,
            "a week-long truce": u.week,
            "frost": u.frost,
            "winter": u.winter,
        }
        out = [(kind, -w) for kind, w in weights.items() if kind in kinds and w]
        # A later date outweighs an inside one (a report of 2026 recalls March 2025; one of March 2025
        # cannot name 2026), and an inside one the weak cues: a storyline report recalls the Jeddah
        # proposal of 11 March or the Qatar talks of last August.
        later = (_LATER | {"a week-long truce"}) & kinds
        if "inside the window" in kinds and not later and u.inside:
            out.append(("inside the window", u.inside))
        elif "inside the window" not in kinds:
            weak = (("in a month outside the window", u.other_month), ("before the window", u.earlier))
            out.extend((kind, -w) for kind, w in weak if kind in kinds and w)
        return out, cues

    def _placed(self, m: timecues.Mention) -> str:
        """Where a time reference falls against the window; empty when it cannot tell."""
        start, end = self.window
        phrase = _PHRASE_KINDS.get(m.kind)
        if phrase is not None:
            return phrase
        if m.kind == "month-only":
            for year in range(start.year, end.year + 1):
                if date(year, m.month, 1) <= end and (year, m.month) >= (start.year, start.month):
                    return "inside the window"
            # "Until 1 February": a truce that ends on a day the window does not hold is another truce.
            return "until a day outside the window" if m.until else "in a month outside the window"
        if m.first is None or m.last is None:
            return ""
        if m.first > end:
            return "after the window"
        if m.last < start:
            return "before the window"
        if m.kind == "year":
            return ""  # the window's own year: other events of that year share it
        return "inside the window"

    def _hits(self, dated: bool, spans: list[list[Span]], title_len: int) -> list[_Hit]:
        """The rules (and negatives) that match, in definition order."""
        present = {c for c, hits in enumerate(spans) if hits}
        cache: _Cache = {}
        hits: list[_Hit] = []
        for rule in self._rules:
            if (rule.undated_only and dated) or not rule.possible(present):
                continue
            if rule.absent and not rule.absent.isdisjoint(present):
                continue
            hit = self._rule_hit(rule, spans, title_len, cache)
            if hit is not None:
                hits.append(hit)
        return hits

    def _phrase(self, cluster: Cluster, text: str, title_len: int) -> str:
        """The words around a match, from the title or the text (never across the line between them)."""
        s, e = self._span(cluster, text, title_len)
        return text[s:e] if e > s else text[cluster.start : cluster.end]

    def _span(self, cluster: Cluster, text: str, title_len: int) -> Span:
        s, e = snippet(text, cluster, self._sc.context_words)
        # Title and text are matched as one string so that a headline and its lead combine; a
        # phrase must still come from one of them, so it never crosses the line between them.
        if s < title_len < e:
            e = title_len
        if title_len and s == title_len:  # the separator itself
            s += 1
        return s, e

    def _passing(self, hits: list[_Hit], title_len: int, text_len: int) -> bool:
        """Whether all the evidence for lies in one short stretch past the title and the lead."""
        positive = [h for h in hits if h.contribution > 0]
        if not positive:
            return False
        first = min(h.first for h in positive)
        last = max(h.last for h in positive)
        text_start = title_len + 1 if title_len else 0
        lead = max(self._sc.lead, self._sc.lead_share * (text_len - text_start))
        return first >= text_start + lead and last - first <= self._sc.passing_span

    def _in_window(self, ts: datetime) -> bool:
        return self.window[0] <= _utc_day(ts) <= self.window[1]

    def _rule_hit(self, rule: _Rule, spans: list[list[Span]], title_len: int, cache: _Cache) -> _Hit | None:
        """The rule's weight in this article, boosted in the title and for repeats; None if it does not match."""
        sc = self._sc
        groups: list[list[Span]] = []
        starts: list[list[int]] = []
        for group in rule.groups:
            if group not in cache:  # groups recur across rules: merge each once per article
                merged = spans[group[0]] if len(group) == 1 else merge(spans[c] for c in group)
                cache[group] = (merged, [sp[0] for sp in merged])
            groups.append(cache[group][0])
            starts.append(cache[group][1])
        if rule.near > 0:
            # Only the first max_repeats + 1 occurrences can change the score.
            limit = sc.max_repeats + 1
            found = clusters(groups, rule.near, starts, limit)
            if not found:
                return None
            count = len(found)
            first = min(c.start for c in found)
            last = max(c.start for c in found) if count < limit else _UNBOUNDED
        else:
            firsts = tuple(g[0] for g in groups)
            found = [Cluster(min(s for s, _ in firsts), max(e for _, e in firsts), firsts)]
            count = min(len(g) for g in groups)  # anywhere: as often as the scarcest group
            first, last = found[0].start, max(g[-1][0] for g in groups)
        in_title = next((c for c in found if c.start < title_len), None)
        factor = (sc.title_boost if in_title else 1.0) * (1.0 + sc.repeat_bonus * min(count - 1, sc.max_repeats))
        return _Hit(rule, rule.weight * factor, in_title or found[0], first, last)

    def _evidence(self, hits: list[_Hit], text: str, title_len: int, on: bool) -> list[str]:
        # On the storyline, show what put it there; off it, show first what kept it off.
        ordered = sorted(hits, key=lambda h: -h.contribution if on else h.contribution)
        out: list[str] = []
        used: list[Span] = []
        for h in ordered:
            if len(out) >= self._sc.max_evidence:
                break
            s, e = self._span(h.cluster, text, title_len)
            if e <= s or any(s < ue and us < e for us, ue in used):
                continue
            used.append((s, e))
            out.append(text[s:e])
        return out


# What dates an undated article after the window: it is then treated like one published outside it.
_LATER = frozenset({"after the window", "until a day outside the window", "a year or more later"})

# Time cues that are phrases, not dates, and what they say about when the article was written.
_PHRASE_KINDS = {
    "retrospective": "a year or more later",
    "week": "a week-long truce",
    "frost": "frost",
    "winter": "winter",
}


def _near(spans: list[Span], starts: list[int], s: int, e: int, near: int) -> bool:
    """Whether [s, e) lies within `near` characters of one of the (sorted) spans."""
    i = bisect_left(starts, s)
    for j in (i - 1, i):
        if 0 <= j < len(spans):
            a, b = spans[j]
            if max(0, s - b, a - e) <= near:
                return True
    return False


def _utc_day(ts: datetime) -> date:
    """The UTC calendar day of a timestamp (a naive one is read as UTC)."""
    return (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).astimezone(UTC).date()


def _prepare(doc: Document) -> tuple[Prepared, int]:
    """The title and text as one string, a line apart, and where the title ends (0 without a title)."""
    title = prepare(doc.title or "").replace("\n", " ").strip()
    if not title:
        return prepare_text(doc.text or ""), 0
    return prepare_text(f"{title}\n{doc.text or ''}"), len(title)


# ---------------------------------------------------------------- loading and validation

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LANG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
_RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TOP_KEYS = {
    "id",
    "title",
    "version",
    "description",
    "window",
    "scoring",
    "evidence",
    "labels",
    "concepts",
    "rules",
    "negatives",
}
_SCORING_KEYS = {
    "threshold",
    "slope",
    "title_boost",
    "repeat_bonus",
    "max_repeats",
    "no_anchor_penalty",
    "lead",
    "lead_share",
    "passing_span",
    "passing_penalty",
}
_RULE_KEYS = {"name", "all", "any", "none", "near", "weight", "labels", "anchor", "when", "note"}


class _Reader:
    """Typed access to parsed TOML that names the file and the key in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def table(self, data: dict[str, Any], key: str, where: str = "", required: bool = True) -> dict[str, Any]:
        if key not in data:
            if required:
                raise self.fail(where + key, "missing table")
            return {}
        if not isinstance(data[key], dict):
            raise self.fail(where + key, "must be a table")
        return data[key]  # type: ignore[no-any-return]

    def string(self, data: dict[str, Any], key: str, where: str = "", required: bool = True) -> str:
        if key not in data:
            if required:
                raise self.fail(where + key, "missing key")
            return ""
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where + key, "must be a non-empty string")
        return value.strip()

    def number(
        self, data: dict[str, Any], key: str, where: str, default: float | None = None, minimum: float = 0.0
    ) -> float:
        if key not in data:
            if default is None:
                raise self.fail(where + key, "missing key")
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(where + key, "must be a number")
        if value < minimum:
            raise self.fail(where + key, f"must be >= {minimum}")
        return float(value)

    def strings(self, data: dict[str, Any], key: str, where: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(where + key, "must be a list of non-empty strings")
        return value

    def day(self, data: dict[str, Any], key: str, where: str) -> date:
        value = data.get(key)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail(where + key, f"must be a date (YYYY-MM-DD), not {value!r}")

    def only(self, data: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(where + key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def load_storyline(path: Path, matcher: Matcher | None = None) -> Storyline:
    """Parse, validate and compile one definition file; ConfigError names the file and the bad key.

    Given a matcher, the definition's concepts are added to it: storylines loaded together share one
    matcher, so tag_all reads an article once however many storylines there are.
    """
    r = _Reader(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    r.only(data, _TOP_KEYS, "")
    sid = r.string(data, "id")
    if not _ID.match(sid):
        raise r.fail("id", f"{sid!r} must be lower-case letters, digits and hyphens")
    title, version = r.string(data, "title"), r.string(data, "version")
    r.string(data, "description", required=False)
    window, scoring = _window(r, data), _scoring(r, data)
    labels = r.table(data, "labels", required=False)
    for key in labels:
        r.string(labels, key, "labels.")
    matcher = matcher if matcher is not None else Matcher(0)
    base = matcher.n_concepts
    names = _concepts(r, data, matcher)
    index = {name: base + i for i, name in enumerate(names)}
    rules = _rules(r, data, index, labels)
    undated = _undated(r, data, index, matcher)
    if scoring.no_anchor_penalty and not any(rule.anchor for rule in rules):
        raise r.fail("scoring.no_anchor_penalty", "is set but no rule has anchor = true")
    return Storyline(
        id=sid,
        title=title,
        version=version,
        concepts=names,
        matcher=matcher,
        rules=rules,
        window=window,
        scoring=scoring,
        source=path,
        undated=undated,
    )


def _window(r: _Reader, data: dict[str, Any]) -> tuple[date, date]:
    window = r.table(data, "window")
    r.only(window, {"start", "end", "outside_penalty", "undated"}, "window.")
    start, end = r.day(window, "start", "window."), r.day(window, "end", "window.")
    if end < start:
        raise r.fail("window.end", f"{end} is before window.start {start}")
    return start, end


def _undated(r: _Reader, data: dict[str, Any], index: dict[str, int], matcher: Matcher) -> _Undated | None:
    undated = r.table(data["window"], "undated", "window.", required=False)
    if not undated:
        return None
    where = "window.undated."
    weights = ("inside", "later", "retrospective", "other_month", "earlier", "week", "frost", "winter")
    r.only(undated, {"event", "near", *weights}, where)
    event = r.strings(undated, "event", where)
    if not event:
        raise r.fail(where + "event", "must name at least one concept")
    for name in event:
        if name not in index:
            raise r.fail(where + "event", f"unknown concept {name!r}")
    near = r.number(undated, "near", where, default=120)
    if near != int(near):
        raise r.fail(where + "near", "must be a whole number of characters")
    if matcher not in _READERS:  # storylines that share a matcher share its time terms
        _READERS[matcher] = timecues.TimeReader(matcher)
    return _Undated(
        event=tuple(index[name] for name in event),
        reader=_READERS[matcher],
        near=int(near),
        **{w: r.number(undated, w, where, default=0.0) for w in weights},
    )


_READERS: WeakKeyDictionary[Matcher, timecues.TimeReader] = WeakKeyDictionary()


def _scoring(r: _Reader, data: dict[str, Any]) -> _Scoring:
    scoring = r.table(data, "scoring")
    r.only(scoring, _SCORING_KEYS, "scoring.")
    evidence = r.table(data, "evidence", required=False)
    r.only(evidence, {"max_phrases", "context_words"}, "evidence.")
    window = data["window"]
    return _Scoring(
        threshold=r.number(scoring, "threshold", "scoring.", minimum=-1e9),
        slope=r.number(scoring, "slope", "scoring.", default=1.0, minimum=1e-6),
        title_boost=r.number(scoring, "title_boost", "scoring.", default=1.0, minimum=1.0),
        repeat_bonus=r.number(scoring, "repeat_bonus", "scoring.", default=0.0),
        max_repeats=int(r.number(scoring, "max_repeats", "scoring.", default=0)),
        no_anchor_penalty=r.number(scoring, "no_anchor_penalty", "scoring.", default=0.0),
        lead=int(r.number(scoring, "lead", "scoring.", default=0)),
        lead_share=r.number(scoring, "lead_share", "scoring.", default=0.0),
        passing_span=int(r.number(scoring, "passing_span", "scoring.", default=300)),
        passing_penalty=r.number(scoring, "passing_penalty", "scoring.", default=1.0),
        outside_penalty=r.number(window, "outside_penalty", "window.", default=100.0),
        max_evidence=int(r.number(evidence, "max_phrases", "evidence.", default=5, minimum=1)),
        context_words=int(r.number(evidence, "context_words", "evidence.", default=3)),
    )


def _concepts(r: _Reader, data: dict[str, Any], matcher: Matcher) -> tuple[str, ...]:
    table = r.table(data, "concepts")
    if not table:
        raise r.fail("concepts", "defines no concept")
    names = tuple(table)
    base = matcher.add_concepts(len(names))
    for offset, name in enumerate(names):
        i = base + offset
        where = f"concepts.{name}"
        concept = r.table(table, name, "concepts.")
        n_terms = 0
        for key in concept:
            if key == "description":
                r.string(concept, key, where + ".")
                continue
            if key not in ("regex", "common") and not _LANG.match(key):
                raise r.fail(
                    f"{where}.{key}",
                    "expected a language code (en, uk, zh-hant...), 'common' "
                    "(terms of every language), 'regex' or 'description'",
                )
            for term in r.strings(concept, key, where + "."):
                try:
                    matcher.add_regex(i, term) if key == "regex" else matcher.add_term(i, term)
                except TermError as exc:
                    raise r.fail(f"{where}.{key}", str(exc)) from None
                n_terms += 1
        if n_terms == 0:
            raise r.fail(where, "has no terms")
    return names


def _rules(r: _Reader, data: dict[str, Any], index: dict[str, int], labels: dict[str, Any]) -> tuple[_Rule, ...]:
    out: list[_Rule] = []
    for section, sign in (("rules", 1.0), ("negatives", -1.0)):
        entries = data.get(section, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise r.fail(section, f"must be an array of tables ([[{section}]])")
        if section == "rules" and not entries:
            raise r.fail("rules", "defines no rule")
        for k, entry in enumerate(entries):
            rule = _rule(r, entry, f"{section}[{k}]", index, labels, sign)
            if any(rule.name == other.name for other in out):
                raise r.fail(f"{section}[{k}].name", f"duplicate rule name {rule.name!r}")
            out.append(rule)
    return tuple(out)


def _rule(
    r: _Reader, entry: dict[str, Any], where: str, index: dict[str, int], labels: dict[str, Any], sign: float
) -> _Rule:
    r.only(entry, _RULE_KEYS, where + ".")
    name = r.string(entry, "name", where + ".")
    if not _RULE_NAME.match(name):
        raise r.fail(f"{where}.name", f"{name!r} must be lower-case letters, digits, '-' or '_'")

    def group(key: str, refs: object) -> tuple[int, ...]:
        # A group is one concept, or a list of concepts any one of which satisfies it.
        items = [refs] if isinstance(refs, str) else refs
        if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
            raise r.fail(f"{where}.{key}", "entries must be concept names or lists of concept names")
        for ref in items:
            if ref not in index:
                raise r.fail(f"{where}.{key}", f"unknown concept {ref!r}")
        return tuple(index[ref] for ref in items)

    all_of = entry.get("all", [])
    if not isinstance(all_of, list):
        raise r.fail(f"{where}.all", "must be a list")
    groups = [group("all", g) for g in all_of] + ([group("any", entry["any"])] if "any" in entry else [])
    if not groups:
        raise r.fail(where, "needs concepts in 'all' or 'any'")
    near = r.number(entry, "near", where + ".", default=0)
    if near != int(near):
        raise r.fail(f"{where}.near", "must be a whole number of characters")
    rule_labels = r.strings(entry, "labels", where + ".")
    for label in rule_labels:
        if label not in labels:
            raise r.fail(f"{where}.labels", f"label {label!r} is not declared in [labels]")
    anchor = entry.get("anchor", False)
    if not isinstance(anchor, bool) or (anchor and sign < 0):
        raise r.fail(f"{where}.anchor", "must be true or false, and a negative cue cannot be an anchor")
    when = entry.get("when", "always")
    if when not in ("always", "undated"):
        raise r.fail(f"{where}.when", "must be 'always' or 'undated'")
    note = r.string(entry, "note", where + ".") if "note" in entry else None
    return _Rule(
        name=name,
        groups=tuple(groups),
        near=int(near),
        weight=sign * r.number(entry, "weight", where + "."),
        labels=tuple(rule_labels),
        anchor=anchor,
        undated_only=when == "undated",
        absent=frozenset(group("none", entry["none"])) if "none" in entry else frozenset(),
        note=note,
    )


def load_storylines(directory: Path) -> list[Storyline]:
    """Every *.toml definition in a folder, sorted by id; ConfigError on any problem or duplicate id."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: storyline folder not found")
    out: dict[str, Storyline] = {}
    shared = Matcher(0)
    for path in sorted(directory.glob("*.toml")):
        s = load_storyline(path, shared)
        if s.id in out:
            raise ConfigError(f"{path}: id: duplicate storyline id {s.id!r} (also in {out[s.id].source})")
        out[s.id] = s
    # Loaded once per process, used for every article: the first article in Arabic or Thai script
    # must not pay for building that script's search (pool processes build it when they start).
    shared.compile()
    return [out[k] for k in sorted(out)]


def explain_all(storylines: Sequence[Storyline], doc: Document) -> list[Verdict]:
    """Every storyline's verdict on one article with its workings (the article is matched once)."""
    prepared = _prepare(doc)
    found: dict[int, _Found] = {}
    out = []
    for s in storylines:
        key = id(s._matcher)
        if key not in found:
            found[key] = s._find(prepared)
        out.append(s._verdict(doc, found[key], explain=True))
    return out


def tag_all(storylines: Sequence[Storyline], doc: Document) -> list[StorylineTag]:
    """Every storyline's verdict on one article, in the order given (matched once per shared matcher)."""
    prepared = _prepare(doc)  # the text is normalised and split once for all storylines
    found: dict[int, _Found] = {}
    tags = []
    for s in storylines:
        key = id(s._matcher)
        if key not in found:
            found[key] = s._find(prepared)
        tags.append(s._tag(doc, found[key]))
    return tags
