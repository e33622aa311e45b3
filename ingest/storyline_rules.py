"""Multilingual term matching for storyline definitions: normalise, tokenise, match, find clusters.

Terms are data (``seeds/storylines/*.toml``); one term is a string:

  ``energy infrastructure``  consecutive words, case- and accent-insensitive (``é`` = ``e``, ``ё`` = ``е``);
                             hyphens and apostrophes separate words ("cessez-le-feu" = "cessez le feu")
  ``енергетичн*``            a trailing ``*`` matches every word starting with the stem: stemming for
                             inflected languages (Ukrainian, Russian, Polish, German...) without a stemmer
  ``~طاقة``                  a leading ``~`` matches anywhere, also inside a word (Arabic clitics, compounds)
  ``能源设施``                terms in scripts written without spaces (Chinese, Japanese, Thai...) match
                             anywhere, like ``~``

A concept's ``regex`` list holds raw regular expressions, run on the normalised text.

An article is normalised and split into words once (prepare_text), then every word is looked up in
dictionaries built at load time (Matcher.find), so the cost per article depends on the article's length,
not on how many terms or languages the definitions hold: a regex alternation of a thousand terms would
try each of them at every position of the text. Rules then look for their concepts close together
(clusters), and evidence phrases are cut around them (snippet).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

Span = tuple[int, int]

# A word: \w plus the combining marks that Python's \w leaves out (Indic vowel signs and viramas,
# Arabic and Hebrew points, zero-width joiners); without them "ऊर्जा" would split into pieces.
_WORD = re.compile(
    r"[\w\u0300-\u036f\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670"
    r"\u0900-\u0dff\u0e00-\u0eff\u1000-\u109f\u200c\u200d]+"
)


def _word_table() -> npt.NDArray[np.bool_]:
    """For every code point, whether it belongs to a word (by _WORD): tokenising becomes a table lookup.

    Built once at import (a few milliseconds). Code points beyond the Basic Multilingual Plane (emoji,
    rare CJK) count as separators; terms in those ranges would be substring terms anyway.
    """
    table = np.zeros(0x110000, dtype=np.bool_)
    bmp = "".join(map(chr, range(0xD800))) + "\ufffd" * 0x800 + "".join(map(chr, range(0xE000, 0x10000)))
    for m in _WORD.finditer(bmp):
        table[m.start() : m.end()] = True
    table[0xD800:0xE000] = False
    return table


_WORD_TABLE = _word_table()

# Scripts written without spaces between words (and Hangul, whose particles cling to the noun): their
# terms are matched as substrings.
_UNSEGMENTED = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff"
    r"\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
)

# Substring terms are searched only when the text holds a letter of their script: most articles are
# in Latin or Cyrillic script and skip all of them.
_SCRIPTS = {
    "hebrew": "\u0590-\u05ff",
    "arabic": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "thai-lao": "\u0e00-\u0eff",
    "cjk": "\u3040-\u30ff\u31f0-\u31ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef",
    "hangul": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "other": "\u1000-\u109f\u1780-\u17ff",
}
_SCRIPT_RE = {name: re.compile(f"[{chars}]") for name, chars in _SCRIPTS.items()}
_ANY_SCRIPT = re.compile("[" + "".join(_SCRIPTS.values()) + "]")


def _script_of(needle: str) -> str | None:
    for name, rx in _SCRIPT_RE.items():
        if rx.search(needle):
            return name
    return None


# Stems are indexed by their first MIN_STEM characters, so shorter ones are refused; they would also
# match too much ("en*", "на*"). Short inflected words are listed whole instead (हमला, हमले, हमलों).
MIN_STEM = 4
_FIRST = itemgetter(slice(0, MIN_STEM))


def _fold_table() -> dict[int, str]:
    """One character to one character, so offsets in the folded text are offsets in the original."""
    table: dict[int, str] = {}
    # Latin (incl. Vietnamese) and Greek letters with diacritics fold to their base letter. Cyrillic
    # is left alone: й, ї and ў are letters of their own, not accented и, і and у.
    for cp in (*range(0xC0, 0x250), *range(0x1E00, 0x1F00), *range(0x370, 0x400), *range(0x1F00, 0x2000)):
        decomposed = unicodedata.normalize("NFD", chr(cp))
        if len(decomposed) > 1 and all(unicodedata.combining(c) for c in decomposed[1:]):
            table[cp] = decomposed[0].lower()
    extra = {
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ı": "i",
        "ħ": "h",
        "ŀ": "l",
        "ё": "е",
        "ς": "σ",
        # Typographic apostrophes: Ukrainian writes об'єкт with any of these.
        "’": "'",
        "‘": "'",
        "ʼ": "'",
        "`": "'",
        "´": "'",
    }
    table.update({ord(k): v for k, v in extra.items()})
    return table


_FOLD = {chr(k): v for k, v in _fold_table().items()}
# Find the few distinct characters that change and replace each in one C-level pass: str.translate with
# a dict looks up every character of the text (5 times slower on a 2,000-character article), a regex
# callback runs Python once per accented letter.
_FOLD_CHARS = re.compile("[" + re.escape("".join(_FOLD)) + "]")


def prepare(text: str) -> str:
    """Text as the tagger reads it: NFC, so that composed and decomposed accents look the same."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower-case and strip diacritics, keeping the length, so a match's offsets index the input too."""
    if "İ" in text:  # Turkish capital dotted I lower-cases to two characters
        text = text.replace("İ", "I")
    low = text.lower()
    if low.isascii():
        return low
    if len(low) != len(text):
        # Any other letter that lower-cases to two characters: keep the first, keep offsets.
        low = "".join(c.lower()[:1] for c in text)
    for ch in set(_FOLD_CHARS.findall(low)):
        low = low.replace(ch, _FOLD[ch])
    return low


class Prepared(NamedTuple):
    """A text ready for matching: shared by every storyline that tags the same article."""

    text: str  # NFC: what evidence phrases are cut from
    folded: str  # lower-cased, accents stripped, same length as text
    words: list[str]
    bounds: list[int]  # word k spans bounds[2k] .. bounds[2k + 1]


def prepare_text(text: str) -> Prepared:
    """Normalise, fold and split a text once; every Matcher.find can then read it."""
    nfc = prepare(text)
    folded = fold(nfc)
    # Words are the runs of word characters: classify every code point with one table lookup in numpy and
    # take the edges of the runs (a third faster than re.split, which builds a string per separator too).
    is_word = _WORD_TABLE[np.frombuffer(folded.encode("utf-32-le"), dtype=np.uint32)].view(np.int8)
    bounds: list[int] = np.flatnonzero(np.diff(is_word, prepend=0, append=0)).tolist()
    words = [folded[s:e] for s, e in zip(bounds[::2], bounds[1::2], strict=True)]
    return Prepared(nfc, folded, words, bounds)


class TermError(ValueError):
    """A term that cannot be compiled; the message says why."""


@dataclass(frozen=True)
class _Term:
    concept: int
    words: tuple[tuple[str, bool], ...]  # (word, is_stem) after the first word


def _compile_words(term: str) -> list[tuple[str, bool]]:
    words: list[tuple[str, bool]] = []
    for piece in term.split():
        stem = piece.endswith("*")
        core = piece.rstrip("*")
        if "*" in core:
            raise TermError(f"'*' may only end a word, in {term!r}")
        tokens = _WORD.findall(fold(prepare(core)))
        if not tokens:
            raise TermError(f"{term!r} has no letters or digits")
        words.extend((t, False) for t in tokens[:-1])
        # The first word is looked up by its first MIN_STEM characters; later words only confirm a
        # phrase already anchored ("30 дн*"), so a shorter stem there is harmless.
        shortest = MIN_STEM if not words else 2
        if stem and len(tokens[-1]) < shortest:
            raise TermError(f"stem {tokens[-1]!r}* in {term!r} is shorter than {shortest} characters")
        words.append((tokens[-1], stem))
    return words


class Matcher:
    """Finds every concept's terms in a text; built once per storyline definition.

    Three indexes: single words (exact), phrases by their first word and the first two letters of the
    second ("for a", "30 da"), and stems by their first MIN_STEM letters.
    """

    def __init__(self, n_concepts: int) -> None:
        self.n_concepts = n_concepts
        self._words: dict[str, list[int]] = {}  # word -> concepts
        self._pairs: dict[str, list[_Term]] = {}
        self._pair_firsts: dict[str, bool] = {}  # first words of phrases: the cheap pre-test
        self._stems: dict[str, list[tuple[str, _Term]]] = {}
        # The big buckets of _stems (every language's energ*, elektr*...) by whole stem, built at the first find
        self._big_stems: dict[str, dict[str, list[_Term]]] | None = None
        self._substrings: list[tuple[str, int]] = []  # needles in Latin or Cyrillic script: always searched
        self._by_script: dict[str, list[tuple[str, int]]] = {}
        self._needles: dict[str, _Needles] = {}  # _by_script compiled for searching, rebuilt after add_term
        self._regexes: list[tuple[re.Pattern[str], int]] = []

    def add_concepts(self, n: int) -> int:
        """Make room for n more concepts; returns the index of the first."""
        base = self.n_concepts
        self.n_concepts += n
        return base

    def add_term(self, concept: int, term: str) -> None:
        """Compile one term of a concept; TermError explains a bad one."""
        term = term.strip()
        if not term:
            raise TermError("empty term")
        if term.startswith("~") or _UNSEGMENTED.search(term):
            needle = fold(prepare(term.lstrip("~").rstrip("*"))).strip()
            if not needle:
                raise TermError(f"{term!r} has nothing to match")
            if "*" in needle:
                raise TermError(f"'*' cannot be used inside a substring term {term!r}")
            script = _script_of(needle)
            group = self._substrings if script is None else self._by_script.setdefault(script, [])
            if (needle, concept) not in group:
                group.append((needle, concept))
                self._needles.pop(script or "", None)
            return
        words = _compile_words(term)
        first, is_stem = words[0]
        entry = _Term(concept, tuple(words[1:]))
        if not is_stem:
            if not entry.words:
                concepts = self._words.setdefault(first, [])
                if concept not in concepts:
                    concepts.append(concept)
                return
            pair = self._pairs.setdefault(f"{first} {entry.words[0][0][:2]}", [])
            if entry not in pair:
                pair.append(entry)
            self._pair_firsts[first] = True
            return
        self._big_stems = None
        bucket = self._stems.setdefault(first[:MIN_STEM], [])
        # Languages share stems (energi* in Swedish, Danish, Norwegian): one copy is enough, and a
        # stem already covered by a shorter one of the same concept would only duplicate its hits.
        if not entry.words and any(first.startswith(st) and t.concept == concept and not t.words for st, t in bucket):
            return
        if not entry.words:
            bucket[:] = [
                (st, t) for st, t in bucket if not (st.startswith(first) and t.concept == concept and not t.words)
            ]
        if (first, entry) not in bucket:
            bucket.append((first, entry))

    def add_regex(self, concept: int, pattern: str) -> None:
        """Compile a raw regular expression of a concept; TermError carries re's complaint."""
        try:
            self._regexes.append((re.compile(pattern), concept))
        except re.error as exc:
            raise TermError(f"bad regex {pattern!r}: {exc}") from None

    def compile(self) -> None:
        """Build now what find() would build on first use (a few scripts' tries take ~60 ms each)."""
        if self._big_stems is None:
            self._big_stems = _big_buckets(self._stems)
        for script, group in self._by_script.items():
            if script not in self._needles:
                self._needles[script] = _Needles(group, trie=script in _TRIE_SCRIPTS)

    def find(self, prepared: Prepared | str) -> list[list[Span]]:
        """Spans of every concept's matches in a text, per concept, sorted by position."""
        if isinstance(prepared, str):
            prepared = prepare_text(prepared)
        folded, words, bounds = prepared.folded, prepared.words, prepared.bounds
        hits: list[list[Span]] = [[] for _ in range(self.n_concepts)]
        n = len(words)
        # Every word is looked up inside map() and compress(), in C: a Python loop over all ~300 words
        # of an article costs more than everything else together. Python only sees the words that hit.
        word_hits = list(map(self._words.get, words))
        for i in compress(range(n), word_hits):
            span = (bounds[2 * i], bounds[2 * i + 1])
            for concept in word_hits[i] or ():
                hits[concept].append(span)
        pairs = self._pairs
        for i in compress(range(n - 1), map(self._pair_firsts.get, words)):
            for t in pairs.get(f"{words[i]} {words[i + 1][:2]}", ()):
                _extend(hits, t, i, words, bounds, n)
        if self._big_stems is None:
            self._big_stems = _big_buckets(self._stems)
        _stem_hits(hits, list(map(self._stems.get, map(_FIRST, words))), words, bounds, self._big_stems)
        for needle, concept in self._substrings:
            _find_all(hits, folded, needle, (concept,))
        if self._by_script and _ANY_SCRIPT.search(folded):
            for script, group in self._by_script.items():
                if _SCRIPT_RE[script].search(folded):
                    needles = self._needles.get(script)
                    if needles is None:
                        needles = self._needles[script] = _Needles(group, trie=script in _TRIE_SCRIPTS)
                    needles.find(hits, folded)
        for rx, concept in self._regexes:
            hits[concept].extend(m.span() for m in rx.finditer(folded) if m.end() > m.start())
        for c, h in enumerate(hits):
            if len(h) > 1:
                hits[c] = sorted(set(h))  # two terms of a concept can match the same words
        return hits


# Scripts whose letters are few, so that nearly every needle's letters occur in any article: their needles are
# searched with one regex built as a trie, which reads the text once. In the others (Chinese characters, Hangul
# syllables) a needle whose characters do not all occur in the text is skipped without a search.
_TRIE_SCRIPTS = {"arabic", "hebrew", "thai-lao"}


class _Needles:
    """The substring terms of one script, ready to search: hundreds of them cost a few hundred microseconds."""

    def __init__(self, group: list[tuple[str, int]], trie: bool) -> None:
        concepts: dict[str, list[int]] = {}
        for needle, concept in group:
            concepts.setdefault(needle, []).append(concept)
        self.by_needle = {n: tuple(c) for n, c in concepts.items()}
        # By first character: only the needles whose first character occurs in the text are looked at.
        self.by_first: dict[str, list[tuple[str, frozenset[str], tuple[int, ...]]]] = {}
        for n, c in self.by_needle.items():
            self.by_first.setdefault(n[0], []).append((n, frozenset(n), c))
        self.trie: re.Pattern[str] | None = None
        self.prefixes: dict[str, list[tuple[int, int]]] = {}
        if trie:
            # A lookahead finds the longest needle at every position, overlapping ones included; the needles
            # that are prefixes of it matched there too.
            self.trie = re.compile(f"(?=({_trie_pattern(sorted(self.by_needle))}))")
            for n in self.by_needle:
                self.prefixes[n] = [(len(p), c) for p, cs in self.by_needle.items() if n.startswith(p) for c in cs]

    def find(self, hits: list[list[Span]], folded: str) -> None:
        """Record every needle's occurrences in the text."""
        if self.trie is not None:
            prefixes = self.prefixes
            for m in self.trie.finditer(folded):
                at = m.start()
                for length, concept in prefixes[m.group(1)]:
                    hits[concept].append((at, at + length))
            return
        chars = set(folded)
        for first in chars.intersection(self.by_first):
            for needle, needs, concepts in self.by_first[first]:
                if needs <= chars:
                    _find_all(hits, folded, needle, concepts)


def _trie_pattern(words: Sequence[str]) -> str:
    """A regular expression matching any of the words, longest first, branching one character at a time."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in node.items() if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and "" not in node else "(?:" + "|".join(branches) + ")"
        return body + "?" if "" in node else body

    return emit(trie)


def _find_all(hits: list[list[Span]], folded: str, needle: str, concepts: Sequence[int]) -> None:
    at = folded.find(needle)
    while at >= 0:
        for concept in concepts:
            hits[concept].append((at, at + len(needle)))
        at = folded.find(needle, at + len(needle))


# A bucket of more stems than this is searched by the word's prefixes (a dictionary lookup each) rather than
# by trying every stem: "energy" would otherwise be compared with 65 stems of 30 languages.
_BIG_BUCKET = 8


def _big_buckets(stems: dict[str, list[tuple[str, _Term]]]) -> dict[str, dict[str, list[_Term]]]:
    big: dict[str, dict[str, list[_Term]]] = {}
    for key, bucket in stems.items():
        if len(bucket) > _BIG_BUCKET:
            by_stem = big[key] = {}
            for stem, t in bucket:
                by_stem.setdefault(stem, []).append(t)
    return big


def _stem_hits(
    hits: list[list[Span]],
    candidates: list[list[tuple[str, _Term]] | None],
    words: list[str],
    bounds: list[int],
    big: dict[str, dict[str, list[_Term]]],
) -> None:
    """Record the stem terms that the words whose first letters hit an index entry really start with."""
    n = len(words)
    for i in compress(range(n), candidates):
        w = words[i]
        bucket = candidates[i] or []
        if len(bucket) > _BIG_BUCKET:
            by_stem = big[w[:MIN_STEM]]
            found = [t for end in range(MIN_STEM, len(w) + 1) for t in by_stem.get(w[:end], ())]
        else:
            found = [t for stem, t in bucket if w.startswith(stem)]
        for t in found:
            if t.words:
                _extend(hits, t, i, words, bounds, n)
            else:
                hits[t.concept].append((bounds[2 * i], bounds[2 * i + 1]))


def _extend(hits: list[list[Span]], t: _Term, i: int, words: list[str], bounds: list[int], n: int) -> None:
    """Record a phrase that starts at word i if its further words follow."""
    last = i + len(t.words)
    if last >= n:
        return
    for k, (w, is_stem) in enumerate(t.words, start=i + 1):
        if not (words[k].startswith(w) if is_stem else words[k] == w):
            return
    hits[t.concept].append((bounds[2 * i], bounds[2 * last + 1]))


class Cluster(NamedTuple):
    """One place where every group of a rule matched within the rule's distance."""

    start: int
    end: int
    spans: tuple[Span, ...]  # the hits inside, in the rule's group order


def clusters(
    groups: Sequence[Sequence[Span]],
    near: int,
    starts: Sequence[Sequence[int]] | None = None,
    limit: int = 1_000_000,
) -> list[Cluster]:
    """Up to `limit` non-overlapping places where every group has a hit, starting within `near` chars.

    Each hit of the scarcest group is a candidate centre; every other group contributes its hit
    nearest to it (two bisections in `starts`, each group's hit starts, computed when not given),
    and the candidate holds if all of them start within `near` of each other.
    """
    k = len(groups)
    if k == 0 or not all(groups):
        return []
    if starts is None:
        starts = [[sp[0] for sp in g] for g in groups]
    anchor = 0
    for g in range(1, k):
        if len(groups[g]) < len(groups[anchor]):
            anchor = g
    out: list[Cluster] = []
    taken_until = -1
    for a_start, a_end in groups[anchor]:
        if a_start < taken_until:
            continue
        chosen: list[Span] = []
        lo = hi_start = a_start
        hi = a_end
        for g in range(k):
            if g == anchor:
                chosen.append((a_start, a_end))
                continue
            st = starts[g]
            j = bisect_left(st, a_start)
            # The nearest start is the first at or after the centre, or the last before it.
            if j < len(st) and (j == 0 or st[j] - a_start <= a_start - st[j - 1]):
                best = j
            elif j > 0:
                best = j - 1
            else:
                break
            span = groups[g][best]
            if abs(span[0] - a_start) > near:
                break
            chosen.append(span)
            lo = min(lo, span[0])
            hi_start = max(hi_start, span[0])
            hi = max(hi, span[1])
        else:
            if hi_start - lo <= near:
                out.append(Cluster(lo, hi, tuple(chosen)))
                if len(out) >= limit:
                    break
                taken_until = hi
    return out


def merge(spans: Iterable[Sequence[Span]]) -> list[Span]:
    """Union of several concepts' hits, sorted (an "any of these" group of a rule)."""
    out = [s for group in spans for s in group]
    out.sort()
    return out


# ---------------------------------------------------------------- evidence phrases

_MAX_FOCUS = 90  # a cluster longer than this is shown around its first hit only: phrases stay short
_MAX_PHRASE = 140
_MAX_WORD = 40  # a "word" longer than this is a URL or a run of CJK text: do not take it whole
_CJK_CONTEXT = 8  # characters of context on each side in scripts without spaces
_SENTENCE_END = re.compile(r"[.!?;\n\r\t。！？；]")
_TRIM = " ,:;«»\"'()\u201c\u201d\u201e，、"


def snippet(text: str, cluster: Cluster, words: int) -> Span:
    """Where in `text` to quote a cluster: its hits and a few words around, within one sentence."""
    s, e = cluster.start, cluster.end
    if e - s > _MAX_FOCUS:
        # Keep the first group's hit and whatever other hits sit close to it.
        s, e = cluster.spans[0]
        for hs, he in cluster.spans[1:]:
            if max(e, he) - min(s, hs) <= _MAX_FOCUS:
                s, e = min(s, hs), max(e, he)
    if _UNSEGMENTED.match(text, max(0, s - 1)) or _UNSEGMENTED.match(text, min(e, len(text) - 1)):
        s, e = _expand_chars(text, s, e)
    else:
        s, e = _expand_words(text, s, e, words)
    if e - s > _MAX_PHRASE:
        cut = text.rfind(" ", s, s + _MAX_PHRASE)
        e = cut if cut > s else s + _MAX_PHRASE
    while s < e and text[s] in _TRIM:
        s += 1
    while e > s and text[e - 1] in _TRIM:
        e -= 1
    return s, e


def _expand_chars(text: str, s: int, e: int) -> Span:
    stop = _SENTENCE_END.search(text, max(0, s - _CJK_CONTEXT), s)
    lo = max(0, s - _CJK_CONTEXT)
    while stop is not None:
        lo = stop.end()
        stop = _SENTENCE_END.search(text, lo, s)
    stop = _SENTENCE_END.search(text, e, e + _CJK_CONTEXT)
    hi = stop.start() if stop is not None else min(len(text), e + _CJK_CONTEXT)
    return lo, hi


def _expand_words(text: str, s: int, e: int, words: int) -> Span:
    for _ in range(words):
        i = s
        while i > 0 and text[i - 1] == " ":
            i -= 1
        j = text.rfind(" ", max(0, i - _MAX_WORD), i) + 1
        if j >= i or (j == 0 and i > _MAX_WORD) or _SENTENCE_END.search(text, j, i):
            break
        s = j
    for _ in range(words):
        i = e
        while i < len(text) and text[i] == " ":
            i += 1
        j = text.find(" ", i, i + _MAX_WORD + 1)
        if j < 0:
            j = len(text) if len(text) - i <= _MAX_WORD else -1
        if j <= i:
            break
        stop = _SENTENCE_END.search(text, i, j)
        if stop is not None:
            if stop.start() > i:  # keep a word that ends the sentence ("...the grid."), stop there
                e = stop.start()
            break
        e = j
    return s, e
