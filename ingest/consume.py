"""Reading the streams: browsing without consuming, and consumer groups with reclaim of dead consumers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis

from ingest.redisconn import MAX_BLOCK_MS

T = TypeVar("T")


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
    """A member of a consumer group: at-least-once delivery, ack after the handler returns.

    The client must be made for blocking reads (ingest.redisconn.connect_blocking) when `block` is
    used. Redis going away (a restart) is waited out for `reconnect_for` seconds (None: forever);
    after it comes back the consumer carries on from its group's position.
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        consumer: str,
        min_idle_ms: int = 60_000,
        *,
        reconnect_for: float | None = 60.0,
        on_reconnect: Callable[[str], None] | None = None,
    ):
        self.redis, self.stream, self.group, self.consumer = client, stream, group, consumer
        self.min_idle_ms = min_idle_ms
        self.reconnect_for = reconnect_for
        self.on_reconnect = on_reconnect
        self._cursor = "0-0"
        self._own_unread = True  # entries this name was given but may never have seen
        self._call(self._create_group)

    def _create_group(self) -> None:
        try:
            # A new group starts at the beginning of the stream: a new consumer misses nothing.
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one Redis exchange, waiting out a Redis restart and recreating a group it lost."""
        delay, started, told = 0.2, time.monotonic(), False
        while True:
            try:
                result = fn()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self.reconnect_for is not None and time.monotonic() - started > self.reconnect_for:
                    raise
                if not told and self.on_reconnect is not None:
                    self.on_reconnect(f"Redis unavailable ({exc}); reconnecting")
                    told = True
                # A reply lost in the cut may have handed us entries we never saw: read our own first.
                self._own_unread = True
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._create_group()  # Redis came back without its data: start the group again
                continue
            if told and self.on_reconnect is not None:
                self.on_reconnect("Redis is back; carrying on from the group's position")
            return result

    def _drop_trimmed(self, ids: list[Any]) -> None:
        # Pending entries that MAXLEN trimmed away can never be delivered: clear them from the PEL.
        if ids:
            self._call(lambda: self.redis.xack(self.stream, self.group, *ids))

    def _own_pending(self, count: int) -> list[Entry]:
        # Entries delivered to this consumer name before and never acked (it crashed): first.
        # The caller acks each batch before asking for the next, so reading from "0" advances.
        resp = cast(
            list[Any],
            self._call(lambda: self.redis.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=count)),
        )
        rows = [(eid, f) for _s, entries in resp for eid, f in entries]
        self._drop_trimmed([eid for eid, f in rows if not f])
        return [_decode(eid, f) for eid, f in rows if f]

    def _reclaim(self, count: int) -> list[Entry]:
        # Entries another consumer took and has not acked for min_idle_ms: that consumer is dead.
        while self._cursor != "done":
            resp = self._call(
                lambda: self.redis.xautoclaim(
                    self.stream, self.group, self.consumer, self.min_idle_ms, start_id=self._cursor, count=count
                )
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
        """New entries; block=None returns at once, 0 waits forever, N waits up to N ms."""
        deadline = None if not block else time.monotonic() + block / 1000
        while True:
            if self._own_unread:
                self._own_unread = False
                own = self._own_pending(count)
                if own:
                    self._own_unread = True
                    return own
            # Waits are cut into reads of at most MAX_BLOCK_MS, each within the client's socket timeout.
            if block is None:
                wait: int | None = None
            elif deadline is None:
                wait = MAX_BLOCK_MS
            else:
                wait = max(1, min(MAX_BLOCK_MS, int((deadline - time.monotonic()) * 1000)))
            resp = cast(
                list[Any],
                self._call(
                    lambda wait=wait: self.redis.xreadgroup(  # type: ignore[misc]
                        self.group, self.consumer, {self.stream: ">"}, count=count, block=wait
                    )
                ),
            )
            got = [_decode(eid, f) for _s, rows in resp for eid, f in rows]
            if got or block is None or (deadline is not None and time.monotonic() >= deadline):
                return got

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
        self._own_unread = False
        while remaining is None or remaining > 0:
            got = self._new(batch if remaining is None else min(batch, remaining), block)
            if not got:
                return
            remaining = None if remaining is None else remaining - len(got)
            yield got

    def ack(self, entries: list[Entry]) -> None:
        """Acknowledge handled entries."""
        if entries:
            ids = [e.entry_id for e in entries]
            self._call(lambda: self.redis.xack(self.stream, self.group, *ids))
