"""Redis clients with timeouts that fit what they do: short for commands, block time plus that for blocking reads.

redis-py's default socket timeout (5 s) also bounds a blocking XREADGROUP, so a consumer blocking
longer than that would die of a TimeoutError while idle; every client of the project is made here.
"""

from __future__ import annotations

import redis

from ingest.config import Settings
from ingest.embedded import resolve_url

# A "forever" blocking read is cut into reads of this many milliseconds, so a connection that died
# without a word (a host gone, a NAT that forgot us) is noticed within about this long.
MAX_BLOCK_MS = 30_000


def url_of(settings: Settings) -> str:
    """The Redis URL the service uses: REDIS_URL, else the embedded server of the data folder."""
    return resolve_url(settings.redis_url, settings.data_dir)


def connect(settings: Settings, url: str | None = None) -> redis.Redis:
    """A client for ordinary commands: every reply is due within INGEST_REDIS_SOCKET_TIMEOUT."""
    return redis.Redis.from_url(
        url or url_of(settings),
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_keepalive=True,
        health_check_interval=30,
    )


def connect_blocking(settings: Settings, block_ms: int, url: str | None = None) -> redis.Redis:
    """A client for blocking reads of up to block_ms: the socket waits that long plus the command timeout."""
    return redis.Redis.from_url(
        url or url_of(settings),
        socket_timeout=block_ms / 1000 + settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_keepalive=True,
        health_check_interval=30,
    )
