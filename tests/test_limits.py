"""Deadlines nest (attempt < soft < hard < visibility timeout); the broker channel fix behind Redis restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from kombu import Connection, Queue

from ingest import limits
from ingest.config import Settings
from ingest.errors import ConfigError
from tests.test_e2e import env_for, ingest
from workers.app import configure


def test_default_deadlines_nest() -> None:
    s = Settings()
    assert s.fetch_deadline <= s.attempt_deadline < limits.soft_time_limit(s) < limits.hard_time_limit(s)
    assert limits.hard_time_limit(s) + limits.REDELIVERY_MARGIN <= s.visibility_timeout
    limits.check(s)
    # the bound the README states for the defaults
    assert limits.outcome_bound(s) == 780


def test_celery_limits_come_from_the_settings(redis_url: str) -> None:
    s = Settings(redis_url=redis_url, attempt_deadline=30, visibility_timeout=100)
    conf = configure(s, redis_url).conf
    assert conf.task_soft_time_limit == 50 and conf.task_time_limit == 55
    assert conf.broker_transport_options["visibility_timeout"] == 100


def test_a_visibility_timeout_below_the_hard_limit_is_refused(redis_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="INGEST_VISIBILITY_TIMEOUT"):
        configure(Settings(redis_url=redis_url, attempt_deadline=200, visibility_timeout=120), redis_url)
    cp = ingest(env_for(redis_url, tmp_path, INGEST_ATTEMPT_DEADLINE="200"), "worker", timeout=60)
    assert cp.returncode == 2 and "INGEST_VISIBILITY_TIMEOUT" in cp.stderr and "Traceback" not in cp.stderr


def test_a_channel_of_a_closed_broker_connection_fails_as_a_connection_error(redis_url: str) -> None:
    # The state Celery leaves behind after a connection loss: the connection is closed (kombu
    # drops transport.client) while a late-acked message of its channel is still to be acked.
    conn = Connection(redis_url, transport="workers.broker:Transport")
    queue = Queue("limits-test")
    with conn.Producer() as producer:
        producer.publish({"n": 1}, routing_key="limits-test", declare=[queue])
    got = []
    consumer = conn.Consumer([queue], callbacks=[lambda body, message: got.append(message)])
    consumer.consume()
    conn.drain_events(timeout=5)
    message = got[0]
    channel = message.channel
    conn._do_close_transport()  # what Connection.collect()/close() do after a connection loss
    channel._disconnect_pools()
    with pytest.raises(redis.ConnectionError):
        message.ack()
    # The message stays in Redis's unacked set (redelivered after the visibility timeout); this
    # process need not try to restore it at exit through the closed connection.
    channel.qos._on_collect.cancel()
    # ...which Celery treats as a lost connection (logged, the worker carries on), not a crash
    assert isinstance(
        redis.ConnectionError(), Connection(redis_url, transport="workers.broker:Transport").connection_errors
    )
