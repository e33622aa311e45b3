"""kombu's Redis transport, keeping one client object per channel instead of building one per operation."""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A Redis channel whose synchronous client is built once per connection pool.

    kombu builds a new redis.Redis for every ack, every reservation and every send; each copies
    redis-py's table of some 170 response callbacks, which was most of the worker parent's CPU per
    task (docs/benchmarks.md). A client object holds no connection of its own: each command takes
    one from the pool and returns it, so one client serves the channel as well as many did.
    """

    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        build = super()._create_client  # type: ignore[misc]  # private in kombu's stubs
        if asynchronous:
            return build(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = build()
        return client


class Transport(kombu_redis.Transport):
    """The Redis transport with that channel."""

    Channel = Channel
