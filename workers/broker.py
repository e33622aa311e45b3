"""kombu's Redis transport, with two changes: a channel of a closed connection fails as a connection
error, and a channel keeps one client object instead of building one per operation.

When the broker connection is lost, Celery closes it (kombu sets ``transport.client`` to None)
and opens a new one, but messages taken on the old channel are still acked from it once their
late-acked tasks finish, and timers of the old connection may still fire. Such a call has to
build a new connection pool from ``transport.client``, and kombu's ``_connparams`` then raises
``AttributeError: 'NoneType' object has no attribute 'hostname'``. That is not among the errors
Celery recovers from, so the worker stopped with "Unrecoverable error". Reporting it as what it
is, a broker connection error, lets Celery log the failed ack and carry on; the message stays in
kombu's unacked set and comes back after the visibility timeout, where the job is already done.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A Redis channel that refuses cleanly once its connection is closed, with one synchronous client.

    kombu builds a new redis.Redis for every ack, every reservation and every send; each copies
    redis-py's table of some 170 response callbacks, which was most of the worker parent's CPU per
    task (docs/benchmarks.md). A client object holds no connection of its own: each command takes
    one from the pool and returns it, so one client serves the channel as well as many did.
    """

    _sync_client: Any = None

    def _connparams(self, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.ConnectionError("this broker connection was closed after a connection loss")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]

    def _create_client(self, asynchronous: bool = False) -> Any:
        build = super()._create_client  # type: ignore[misc]  # private in kombu's stubs
        if asynchronous:
            return build(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = build()
        return client


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the Channel above (named in Celery's broker_transport)."""

    Channel = Channel
