"""The worker's Redis transport (workers/broker.py) against a real Redis: one client, messages still move."""

from __future__ import annotations

import redis
from kombu import Connection

from ingest import keys


def test_channel_keeps_one_client_and_acks_as_kombu_does(redis_url: str, r: redis.Redis) -> None:
    options = {"global_keyprefix": keys.CELERY_PREFIX}
    with Connection(redis_url, transport="workers.broker:Transport", transport_options=options) as conn:
        queue = conn.SimpleQueue("broker-test")
        channel = queue.channel
        assert channel._create_client() is channel._create_client()
        for n in range(3):
            queue.put({"n": n})
        got = [queue.get(timeout=5) for _ in range(3)]
        assert [m.payload["n"] for m in got] == [0, 1, 2]
        assert r.hlen(f"{keys.CELERY_PREFIX}unacked") == 3  # taken, not yet acked: a crash would restore them
        for m in got:
            m.ack()
        assert r.hlen(f"{keys.CELERY_PREFIX}unacked") == 0
        queue.close()
