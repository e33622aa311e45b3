"""The article view: its text with the evidence phrases highlighted in place, the per-rule
contributions of each storyline, and its copies (the duplicates that point to it)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import redis
from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse

from ingest import explain, keys
from ingest.redisutil import text
from ingest.web.indexes import outlet_of
from ingest.web.pages import web_of

router = APIRouter()
ENTRY_ID = r"^\d{1,20}-\d{1,20}$"
MAX_COPIES = 200

Segment = tuple[str, bool]  # text, highlighted


def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    words = phrase.strip(" .,;:…\"'«»“”").split()
    if not words:
        return None
    return re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)


def highlight(body: str, evidence: list[str]) -> list[list[Segment]]:
    """Paragraphs of `body` as segments, the evidence phrases found in it marked (escaping is the template's)."""
    spans: list[tuple[int, int]] = []
    for phrase in evidence:
        pattern = _phrase_pattern(phrase)
        if pattern is not None:
            spans.extend(m.span() for m in pattern.finditer(body))
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    paragraphs: list[list[Segment]] = [[]]
    pos = 0

    def emit(chunk: str, marked: bool) -> None:
        for i, part in enumerate(chunk.split("\n")):
            if i:
                paragraphs.append([])
            if part:
                paragraphs[-1].append((part, marked))

    for s, e in merged:
        emit(body[pos:s], False)
        emit(body[s:e], True)
        pos = e
    emit(body[pos:], False)
    return [p for p in paragraphs if p]


def _find(web_redis: Any, eid: str) -> tuple[str, dict[str, Any]] | None:
    for stream in (keys.ARTICLES, keys.DUPLICATES):
        try:
            found = web_redis.xrange(stream, eid, eid)
        except redis.ResponseError:  # digits that overflow a stream id
            return None
        if found:
            return stream, json.loads(found[0][1][b"data"])
    return None


def copies(web_redis: Any, item_id: str) -> list[dict[str, Any]]:
    """The duplicates that point to an item, newest first: outlet, method, score."""
    ids = [text(x) for x in web_redis.zrevrange(keys.web_copies(item_id), 0, MAX_COPIES - 1)]
    pipe = web_redis.pipeline(transaction=False)
    for eid in ids:
        pipe.xrange(keys.DUPLICATES, eid, eid)
    out = []
    for eid, found in zip(ids, pipe.execute(), strict=True):
        if not found:
            continue
        d = json.loads(found[0][1][b"data"])
        dup = d.get("duplicate") or {}
        out.append(
            {
                "entry_id": eid,
                "title": d.get("title") or "(no title)",
                "outlet": outlet_of(d.get("canonical_url") or d.get("url") or ""),
                "url": d.get("canonical_url") or d.get("url") or "",
                "method": dup.get("method", ""),
                "score": dup.get("score", 0.0),
                "fetched_at": d.get("fetched_at"),
            }
        )
    return out


@router.get("/items/{entry_id}", response_class=HTMLResponse, include_in_schema=False)
def article_page(request: Request, entry_id: Annotated[str, Path(pattern=ENTRY_ID)]) -> HTMLResponse:
    """One article (or duplicate) as published, and why it is where it is."""
    web = web_of(request)
    web.readable(request)
    found = _find(web.redis, entry_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article or duplicate with entry id {entry_id}")
    stream, data = found
    title, body = data.get("title") or "", data.get("text") or ""
    # Contributions are recomputed with the current definitions (the template shows the version
    # published with the item next to the current one when they differ).
    verdicts = explain.tagging(web.storylines, data)
    evidence = [e for t in data.get("storylines", []) if t.get("on_storyline") for e in t.get("evidence", [])]
    dup = data.get("duplicate")
    original = passage = None
    if isinstance(dup, dict) and dup.get("of"):
        original = explain.original_of(web.redis, web.settings.seeds_dir, str(dup["of"]))
        if original is not None:
            passage = explain.shared_passage(body, original.pop("text"))
    return web.render(
        request,
        "article.html",
        "storyline",
        entry_id=entry_id,
        stream="duplicates" if stream == keys.DUPLICATES else "articles",
        item=data,
        outlet=outlet_of(data.get("canonical_url") or data.get("url") or ""),
        title_segments=highlight(title, evidence),
        paragraphs=highlight(body, evidence),
        evidence=evidence,
        verdicts=verdicts,
        duplicate=dup,
        original=original,
        passage=passage,
        copies=copies(web.redis, data.get("id", "")) if dup is None else [],
    )
