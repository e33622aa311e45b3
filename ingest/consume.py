"""Reading the streams: browsing without consuming, and consumer groups with reclaim of dead consumers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import redis


@dataclass(frozen=True)
class Entry:
    """One stream entry: its id and its decoded JSON document."""

    entry_id: str
    data: dict[str, Any]


def _decode(entry_id: Any, fields: Any) -> Entry:
    eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    raw = fields.get(b"data", fields.get("data", b"{}"))
    try:
        data = json.loads(raw)
    except ValueError:
        data = {"_undecodable": raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)}
    return Entry(eid, data)


def latest(client: redis.Redis, stream: str, count: int) -> list[Entry]:
    """The last `count` entries of a stream, oldest first."""
    # redis-py types replies as unions over protocol versions and decode modes; these are lists of pairs
    rows = cast(list[Any], client.xrevrange(stream, "+", "-", count=count))
    return [_decode(eid, fields) for eid, fields in reversed(rows)]


def after(client: redis.Redis, stream: str, after_id: str | None, count: int) -> list[Entry]:
    """Up to `count` entries strictly after an entry id (from the start when None)."""
    start = f"({after_id}" if after_id else "-"
    rows = cast(list[Any], client.xrange(stream, start, "+", count=count))
    return [_decode(eid, fields) for eid, fields in rows]


class Consumer:
    """A member of a consumer group: at-least-once delivery, ack after the handler returns."""

    def __init__(self, client: redis.Redis, stream: str, group: str, consumer: str, min_idle_ms: int = 60_000):
        self.redis, self.stream, self.group, self.consumer = client, stream, group, consumer
        self.min_idle_ms = min_idle_ms
        self._cursor = "0-0"
        try:
            # A new group starts at the beginning of the stream: a new consumer misses nothing.
            client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _drop_trimmed(self, ids: list[Any]) -> None:
        # Pending entries that MAXLEN trimmed away can never be delivered: clear them from the PEL.
        if ids:
            self.redis.xack(self.stream, self.group, *ids)

    def _own_pending(self, count: int) -> list[Entry]:
        # Entries delivered to this consumer name before and never acked (it crashed): first.
        # The caller acks each batch before asking for the next, so reading from "0" advances.
        resp = cast(list[Any], self.redis.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=count))
        rows = [(eid, f) for _s, entries in resp for eid, f in entries]
        self._drop_trimmed([eid for eid, f in rows if not f])
        return [_decode(eid, f) for eid, f in rows if f]

    def _reclaim(self, count: int) -> list[Entry]:
        # Entries another consumer took and has not acked for min_idle_ms: that consumer is dead.
        while self._cursor != "done":
            resp = self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.min_idle_ms, start_id=self._cursor, count=count
            )
            cursor = resp[0].decode() if isinstance(resp[0], bytes) else str(resp[0])
            self._cursor = "done" if cursor == "0-0" else cursor
            if len(resp) > 2:  # Redis 7 lists the ids it found trimmed
                self._drop_trimmed(list(resp[2]))
            self._drop_trimmed([eid for eid, f in resp[1] if not f])
            got = [_decode(eid, f) for eid, f in resp[1] if f]
            if got:
                return got
        return []

    def _new(self, count: int, block: int | None) -> list[Entry]:
        resp = cast(
            list[Any], self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=block)
        )
        return [_decode(eid, f) for _s, rows in resp for eid, f in rows]

    def batches(self, count: int | None, block: int | None) -> Iterator[list[Entry]]:
        """Yield batches: own pending, then reclaimed, then new; stops when a read comes back empty."""
        remaining = count
        batch = 100 if count is None else min(100, count)
        readers: list[Callable[[int], list[Entry]]] = [self._own_pending, self._reclaim]
        for reader in readers:
            while remaining is None or remaining > 0:
                got = reader(batch if remaining is None else min(batch, remaining))
                if not got:
                    break
                remaining = None if remaining is None else remaining - len(got)
                yield got
        while remaining is None or remaining > 0:
            got = self._new(batch if remaining is None else min(batch, remaining), block)
            if not got:
                return
            remaining = None if remaining is None else remaining - len(got)
            yield got

    def ack(self, entries: list[Entry]) -> None:
        """Acknowledge handled entries."""
        if entries:
            self.redis.xack(self.stream, self.group, *[e.entry_id for e in entries])
