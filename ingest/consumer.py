"""Reading the streams from Python: a consumer-group member that yields typed items.

    from ingest.consumer import Consumer

    for item in Consumer("alerts", stream="storyline:energy-ceasefire"):
        print(item.title)  # acked when the loop asks for the next item

Delivery is at least once: an item is acknowledged only after the body of the loop ran for it, so
an item whose handling raised (or a program that died) is delivered again, first to the same
consumer name when it restarts, else to another member of the group once `min_idle_ms` has passed.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from pydantic import BaseModel, ValidationError

from ingest import keys
from ingest.config import Settings, load_settings
from ingest.consume import Consumer as GroupReader
from ingest.consume import Entry
from ingest.models import DeadLetter, Item
from ingest.redisconn import MAX_BLOCK_MS, connect_blocking

log = logging.getLogger(__name__)

FIXED_STREAMS = ("articles", "duplicates", "deadletter")


class UnknownStream(ValueError):
    """A stream or storyline name that does not exist (the message names the known ones)."""


def defined_storylines(directory: Path) -> list[str]:
    """Ids of the storyline definitions in a folder (without compiling them)."""
    ids = []
    for path in sorted(directory.glob("*.toml")):
        try:
            sid = tomllib.loads(path.read_text(encoding="utf-8")).get("id", path.stem)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            sid = path.stem
        ids.append(str(sid))
    return ids


def known_storylines(client: redis.Redis, settings: Settings) -> list[str]:
    """Storylines defined here plus those the service has published items for."""
    found = set(defined_storylines(settings.storylines_path))
    found.update(k.decode() if isinstance(k, bytes) else str(k) for k in client.hkeys(keys.STATS_STORYLINE))
    return sorted(found)


def stream_key(name: str, client: redis.Redis, settings: Settings) -> str:
    """The key of a stream named as users name it (articles, ..., storyline:ID); UnknownStream otherwise."""
    short = name.removeprefix(f"{keys.PREFIX}:")
    if short in FIXED_STREAMS:
        return f"{keys.PREFIX}:{short}"
    known = known_storylines(client, settings)
    if short.startswith("storyline:"):
        sid = short.removeprefix("storyline:")
        if sid in known or client.exists(keys.storyline_stream(sid)):
            return keys.storyline_stream(sid)
        listed = ", ".join(f"storyline:{k}" for k in known) or "none defined"
        raise UnknownStream(f"unknown storyline {sid!r}; known storylines: {listed}")
    choices = ", ".join([*FIXED_STREAMS, *(f"storyline:{k}" for k in known)])
    raise UnknownStream(f"unknown stream {name!r}; known streams: {choices}")


def _strip(data: Any, loc: tuple[int | str, ...]) -> None:
    for part in loc[:-1]:
        data = data[part]
    data.pop(loc[-1], None)


def parse(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """Validate an entry against the item schema, ignoring fields a newer service added."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        extra = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
        if not extra or len(extra) != len(exc.errors()):
            raise
        trimmed = copy.deepcopy(data)
        for loc in extra:
            _strip(trimmed, loc)
        return model.model_validate(trimmed)


class Consumer:
    """Iterate the items of a stream as member `consumer` of consumer group `group`, acking each after its turn."""

    def __init__(
        self,
        group: str,
        stream: str = "articles",
        consumer: str | None = None,
        redis_url: str | None = None,
        *,
        idle_timeout: float | None = None,
        min_idle_ms: int = 60_000,
        settings: Settings | None = None,
    ) -> None:
        """`idle_timeout`: seconds to wait for a new item before the iteration ends (None: forever)."""
        self.settings = settings or load_settings()
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.idle_timeout = idle_timeout
        block_ms = MAX_BLOCK_MS if idle_timeout is None else min(MAX_BLOCK_MS, max(1, int(idle_timeout * 1000)))
        url = redis_url or self.settings.redis_url
        self.redis = connect_blocking(self.settings, block_ms, url)
        self.stream = stream_key(stream, self.redis, self.settings)
        self.model: type[BaseModel] = DeadLetter if self.stream == keys.DEADLETTER else Item
        self.entry_id: str | None = None  # entry id of the item being handled
        self._reader = GroupReader(
            self.redis,
            self.stream,
            group,
            self.consumer,
            min_idle_ms,
            reconnect_for=None if idle_timeout is None else max(60.0, idle_timeout),
            on_reconnect=log.warning,
        )

    def __iter__(self) -> Iterator[Any]:
        """Items (models.Item, or models.DeadLetter on the deadletter stream), oldest first."""
        block = 0 if self.idle_timeout is None else max(1, int(self.idle_timeout * 1000))
        for batch in self._reader.batches(None, block):
            for entry in batch:
                item = self._typed(entry)
                if item is not None:
                    self.entry_id = entry.entry_id
                    yield item  # the caller's loop body runs here
                self._reader.ack([entry])

    def _typed(self, entry: Entry) -> BaseModel | None:
        try:
            return parse(self.model, entry.data)
        except ValidationError as exc:
            # Not an item of this schema: it stays in the stream (ingest items shows it), consumers skip it.
            log.warning(
                "skipping an entry that is not a schema-1 item: %s",
                exc.errors()[0]["msg"],
                extra={"item_id": entry.entry_id},
            )
            return None

    def close(self) -> None:
        """Release the connection."""
        self.redis.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
