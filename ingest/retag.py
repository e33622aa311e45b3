"""Re-tagging: re-score stored articles after a storyline definition changed; publish the newcomers once."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import redis

from ingest import keys
from ingest.config import Settings
from ingest.models import Item
from ingest.redisutil import text
from ingest.storyline import Document, Storyline
from ingest.web import indexes

log = logging.getLogger(__name__)

# Publishes an item to a storyline stream unless it is there already: the published set is the
# storyline's memory of what it holds, shared with the pipeline's publish script.
_ADD_LUA = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
return 1
"""


@dataclass
class RetagReport:
    """What a retag run found."""

    storyline: str
    version: str
    scanned: int = 0
    entered: list[str] = field(default_factory=list)  # newly on the storyline: published now
    left: list[str] = field(default_factory=list)  # were on, are not any more (streams are append-only)
    stayed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "storyline": self.storyline,
            "version": self.version,
            "scanned": self.scanned,
            "entered": len(self.entered),
            "left": len(self.left),
            "stayed_on": self.stayed,
            "entered_ids": self.entered,
            "left_ids": self.left,
        }


def _articles(client: redis.Redis, batch: int = 500) -> Iterator[tuple[str, dict[str, Any]]]:
    start = "-"
    while True:
        rows = cast(list[Any], client.xrange(keys.ARTICLES, start, "+", count=batch))
        for entry_id, fields in rows:
            try:
                yield text(entry_id), json.loads(fields[b"data"])
            except (KeyError, ValueError):
                log.warning("retag skipped an undecodable entry", extra={"item_id": entry_id})
        if len(rows) < batch:
            return
        last = rows[-1][0]
        start = "(" + (last.decode() if isinstance(last, bytes) else str(last))


def _document(item: dict[str, Any]) -> Document:
    published = item.get("published_at")
    return Document(
        item.get("title"),
        item.get("text") or "",
        item.get("language"),
        datetime.fromisoformat(published) if published else None,
    )


def retag(client: redis.Redis, settings: Settings, storyline: Storyline) -> RetagReport:
    """Re-score every stored article with the current definition of one storyline."""
    add = client.register_script(_ADD_LUA)
    report = RetagReport(storyline.id, storyline.version)
    published = keys.storyline_published(storyline.id)
    for entry_id, item in _articles(client):
        report.scanned += 1
        tag = storyline.tag(_document(item))
        before = next((t for t in item.get("storylines", []) if t.get("id") == storyline.id), None)
        was_on = bool(before and before.get("on_storyline"))
        if tag.on_storyline:
            # The item as it stands now: its other storylines unchanged, this one re-scored.
            others = [t for t in item.get("storylines", []) if t.get("id") != storyline.id]
            updated = {**item, "storylines": [*others, tag.model_dump()]}
            args = [item["id"], json.dumps(updated, ensure_ascii=False), settings.stream_maxlen, storyline.id]
            if add(keys=[published, keys.storyline_stream(storyline.id), keys.STATS_STORYLINE], args=args):
                report.entered.append(item["id"])
                indexes.record_retagged(client, entry_id, settings.stream_maxlen, Item.model_validate(updated), tag)
            else:
                report.stayed += 1
        elif was_on:
            report.left.append(item["id"])
    return report
