"""Per-host politeness: at least settings.host_delay seconds between two requests to one host.

The spacing holds across every worker process and machine that shares the Redis: each request
reserves the next free slot of its host with one atomic Lua script, then sleeps until that slot.
The script reads the clock from Redis (TIME), so workers whose clocks disagree still agree on
the schedule. A wait longer than settings.max_host_wait is not slept through: the caller gets
TransientError("host_busy") and the task is retried later, so a popular host cannot pile up
sleeping workers.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from ingest import keys
from ingest.config import Settings
from ingest.errors import TransientError

log = logging.getLogger(__name__)

# KEYS[1]: the host's next-slot key. ARGV[1]: delay ms, ARGV[2]: longest acceptable wait ms.
# Returns {reserved (0/1), wait ms}. A wait over the limit reserves nothing, so hosts that are
# turned away do not push every later request further out.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local start = math.max(now, nxt)
local wait = start - now
if wait > tonumber(ARGV[2]) then
  return {0, wait}
end
local delay = tonumber(ARGV[1])
-- Once start + delay has passed the key means nothing, so it expires then.
redis.call('SET', KEYS[1], string.format('%d', start + delay), 'PX', string.format('%d', wait + delay))
return {1, wait}
"""


class Politeness:
    """Reserve request slots per host, in Redis when given one, else in this process only."""

    def __init__(self, settings: Settings, redis_client: redis.Redis | None = None) -> None:
        self.delay = settings.host_delay
        self.max_wait = settings.max_host_wait
        self._redis = redis_client
        self._script = redis_client.register_script(_RESERVE) if redis_client is not None else None
        self._local: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, host: str, max_wait: float | None = None) -> float:
        """Take the next slot of host; return the seconds to wait before using it.

        max_wait, when given, lowers settings.max_host_wait (what the caller's deadline leaves).
        """
        if self.delay <= 0:
            return 0.0
        limit = self.max_wait if max_wait is None else min(self.max_wait, max_wait)
        if self._script is not None:
            reserved, wait_ms = self._script(
                keys=[keys.host_next(host)],
                args=[round(self.delay * 1000), round(limit * 1000)],
            )
            wait = int(wait_ms) / 1000
        else:
            reserved, wait = self._reserve_local(host, limit)
        if not reserved:
            log.info("host busy", extra={"host": host, "reason": "host_busy", "wait": wait})
            raise TransientError("host_busy", f"next request to {host} allowed in {wait:.1f}s", retry_after=wait)
        return float(wait)

    def wait(self, host: str, max_wait: float | None = None) -> None:
        """Block until host may be requested again (or raise host_busy)."""
        pause = self.reserve(host, max_wait)
        if pause > 0:
            time.sleep(pause)

    def _reserve_local(self, host: str, max_wait: float) -> tuple[bool, float]:
        """The Lua script's logic for one process, when there is no Redis to share."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._local.get(host, 0.0))
            wait = start - now
            if wait > max_wait:
                return False, wait
            self._local[host] = start + self.delay
            if len(self._local) > 4096:  # forget hosts whose slot has passed
                self._local = {h: t for h, t in self._local.items() if t > now}
            return True, wait
