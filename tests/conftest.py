"""Shared fixtures: a private real redis-server, a real local HTTP site, settings for tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest.config import Settings
from ingest.embedded import RedisProcess, start_redis
from ingest.fetch import Fetcher
from tests.httpsite import Site


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One private redis-server for the test session (never the machine's shared one)."""
    server = start_redis(tmp_path_factory.mktemp("redis"), persistent=False)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> Iterator[str]:
    """URL of the private server, emptied before each test (it is ours to flush)."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the private server."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Settings for tests: the private Redis, loopback fetching allowed, no politeness delay."""
    return Settings(
        redis_url=redis_url,
        allow_private_networks=True,
        host_delay=0.0,
        data_dir=tmp_path / "var",
        connect_timeout=2.0,
        read_timeout=2.0,
        fetch_deadline=5.0,
    )


@pytest.fixture
def fetcher(settings: Settings, r: redis.Redis) -> Iterator[Fetcher]:
    """A Fetcher on the test settings and the private Redis."""
    with Fetcher(settings, r) as f:
        yield f


@pytest.fixture
def site() -> Iterator[Site]:
    """A real HTTP server on 127.0.0.1."""
    s = Site()
    yield s
    s.close()
