"""Look up one item by id or URL and explain it: why it was tagged, what it duplicates, why it failed.

Items are found through an index (item id -> stream entry) written as they are published, so a
lookup reads two keys, never a stream from its start. A URL leads to its job, the job to its item.
The tagging is recomputed with the current storyline definitions on the stored text: each rule's
contribution and each storyline's threshold. For a duplicate the original is looked up the same
way (or read from the seed corpus) and the longest passage the two texts share is quoted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import redis

from ingest import keys
from ingest.config import Settings
from ingest.errors import InvalidURL
from ingest.redisutil import text, texts
from ingest.storyline import Document, Storyline, load_storylines
from ingest.urls import canonicalize, item_id, job_id, validate_url

SHINGLE = 5  # words: a shared passage is at least this long
MAX_PASSAGE_CHARS = 1200
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Located:
    """An item and where it is: stream key and entry id."""

    stream: str
    entry_id: str
    data: dict[str, Any]

    @property
    def stream_name(self) -> str:
        """The name the CLI and API use for the stream (articles, duplicates, deadletter, storyline:ID)."""
        return self.stream.removeprefix(f"{keys.PREFIX}:")


def _entry(client: redis.Redis, where: str) -> Located | None:
    stream, _, eid = where.partition(" ")
    rows = cast(list[Any], client.xrange(stream, eid, eid))
    if not rows:
        return None  # trimmed by MAXLEN since
    fields = rows[0][1]
    try:
        data = json.loads(fields.get(b"data", fields.get("data", b"{}")))
    except ValueError:
        return None
    return Located(stream, eid, data) if isinstance(data, dict) else None


def by_id(client: redis.Redis, ref: str) -> Located | None:
    """The item (or dead letter) with this id, through the index; None if unknown or trimmed away."""
    live = texts(client.zrevrangebyscore(keys.ITEMS_INDEX_LIVE, "+inf", time.time()))
    if not live:
        return None
    pipe = client.pipeline(transaction=False)
    for n in sorted(live, key=int, reverse=True):  # newest first: a re-publish wins
        pipe.hget(keys.items_index(int(n)), ref)
    where = next((w for w in pipe.execute() if w is not None), None)
    return _entry(client, text(where)) if where is not None else None


def find(client: redis.Redis, ref: str) -> Located | None:
    """An item by id, or by URL (as requested or canonical): the item its job produced, else its id."""
    ref = ref.strip()
    if not ref.lower().startswith(("http://", "https://")):
        return by_id(client, ref)
    try:
        canonical = canonicalize(validate_url(ref))
    except InvalidURL:
        return None
    job = client.hmget(keys.job(job_id(canonical)), "item_id", "outcome")
    produced = text(job[0])
    for candidate in (produced, item_id(canonical), job_id(canonical)):
        found = by_id(client, candidate) if candidate else None
        if found is not None:
            return found
    return None


def _spans(s: str) -> list[tuple[str, int, int]]:
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(s)]


def shared_passage(a: str, b: str, min_words: int = SHINGLE) -> str | None:
    """The longest run of words text a shares with text b (quoted from a), or None below min_words."""
    wa, wb = _spans(a), _spans(b)
    if len(wa) < min_words or len(wb) < min_words:
        return None
    at: dict[tuple[str, ...], list[int]] = {}
    for j in range(len(wb) - min_words + 1):
        positions = at.setdefault(tuple(w for w, _, _ in wb[j : j + min_words]), [])
        if len(positions) < 8:  # boilerplate repeats: a few alignments are enough
            positions.append(j)
    best_len, best_at = 0, 0
    i = 0
    while i <= len(wa) - min_words:
        longest = 0
        for j in at.get(tuple(w for w, _, _ in wa[i : i + min_words]), ()):
            n = min_words
            while i + n < len(wa) and j + n < len(wb) and wa[i + n][0] == wb[j + n][0]:
                n += 1
            longest = max(longest, n)
        if longest > best_len:
            best_len, best_at = longest, i
        # a run found from i contains every later start inside it, on the same alignment
        i += max(1, longest - min_words + 1)
    if best_len < min_words:
        return None
    passage = a[wa[best_at][1] : wa[best_at + best_len - 1][2]]
    return passage if len(passage) <= MAX_PASSAGE_CHARS else passage[:MAX_PASSAGE_CHARS] + "…"


def _date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def tagging(storylines: Sequence[Storyline], data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each storyline's verdict on a stored item, recomputed: rule contributions, raw total, threshold."""
    doc = Document(
        str(data.get("title") or "") or None,
        str(data.get("text") or ""),
        data.get("language") or None,
        _date(data.get("published_at")),
    )
    published = {t.get("id"): t for t in data.get("storylines") or [] if isinstance(t, dict)}
    out = []
    for s in storylines:
        v = s.explain(doc)
        stored = published.get(s.id) or {}
        out.append(
            {
                "id": s.id,
                "title": s.title,
                "version": s.version,
                "on_storyline": v.on_storyline,
                "score": round(v.score, 4),
                "raw": round(v.raw, 3),
                "threshold": s.threshold,
                "contributions": [{"rule": name, "weight": w} for name, w in v.contributions],
                "labels": list(v.labels),
                "evidence": list(v.evidence),
                # what was published with the item; differs when the definition changed since
                "published": {k: stored.get(k) for k in ("on_storyline", "score", "version")} if stored else None,
            }
        )
    return out


def _seed(seeds_dir: Path, of: str) -> dict[str, Any] | None:
    name = of.removeprefix("seed:")
    path = seeds_dir / name
    if "/" in name or not path.is_file():
        return None
    body = path.read_text(encoding="utf-8", errors="replace")
    title = next((line.strip() for line in body.splitlines() if line.strip()), None)
    return {"id": of, "url": None, "title": title, "stream": "seeds", "entry_id": None, "text": body}


def original_of(client: redis.Redis, seeds_dir: Path, of: str) -> dict[str, Any] | None:
    """The item a duplicate duplicates: id, URL, title, where it is, and its text (None if gone)."""
    if of.startswith("seed:"):
        return _seed(seeds_dir, of)
    found = by_id(client, of)
    if found is None:
        return None
    d = found.data
    return {
        "id": of,
        "url": d.get("url"),
        "canonical_url": d.get("canonical_url"),
        "title": d.get("title"),
        "stream": found.stream_name,
        "entry_id": found.entry_id,
        "text": d.get("text") or "",
    }


def explain(
    client: redis.Redis, settings: Settings, ref: str, storylines: Sequence[Storyline] | None = None
) -> dict[str, Any] | None:
    """An item and why: tagging per storyline, the original of a duplicate and the shared passage,
    the reason of a dead letter. None when no item has this id or URL.

    Storylines are loaded from the settings' folder unless given (a server passes them, loaded once).
    """
    found = find(client, ref)
    if found is None:
        return None
    d = found.data
    out: dict[str, Any] = {"stream": found.stream_name, "entry_id": found.entry_id, "item": d}
    if found.stream == keys.DEADLETTER:
        retried = client.hget(keys.DEADLETTER_RETRIED, found.entry_id)
        out["deadletter"] = {
            "reason": d.get("reason"),
            "detail": d.get("detail"),
            "retried_by_run": text(retried) or None,
        }
        return out
    if storylines is None:
        storylines = load_storylines(settings.storylines_path)
    out["storylines"] = tagging(storylines, d)
    dup = d.get("duplicate")
    if isinstance(dup, dict) and dup.get("of"):
        original = original_of(client, settings.seeds_dir, str(dup["of"]))
        passage = shared_passage(str(d.get("text") or ""), original.pop("text")) if original else None
        out["duplicate"] = {**dup, "original": original, "shared_passage": passage}
    return out
