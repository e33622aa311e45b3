"""robots.txt (RFC 9309): fetched once per origin, cached in Redis, matched with protego.

What a robots.txt answer means follows RFC 9309 section 2.3.1:

- 2xx: the rules in the body apply (at most 512 KiB are parsed, section 2.5).
- 4xx ("unavailable"): there are no rules, everything may be fetched (2.3.1.3).
- 5xx, a timeout or a broken response ("unreachable"): the crawler MUST assume complete
  disallow (2.3.1.4). We do not cache that or turn it into a permanent refusal: the article
  fails with the transient ``robots_unavailable`` and is retried once the server recovers.
  When the host cannot be reached at all (dns_error, connect_error) that reason is kept.
- more redirects than allowed: MAY be treated as unavailable (2.3.1.2), i.e. no rules.

Results are cached under keys.robots(origin) for settings.robots_ttl (2.4 asks for at most
24 hours, the default), and each process keeps the last ones it read for up to a minute, never
past the Redis entry's expiry. Without Redis, the in-process cache does the whole job.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis
from protego import Protego

from ingest import keys
from ingest.config import Settings
from ingest.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

# The product token matched against User-agent lines (RFC 9309 2.2.1); the full User-Agent
# header we send starts with it.
PRODUCT_TOKEN = "storyline-ingest"
# RFC 9309 2.5: crawlers SHOULD parse at least 500 KiB; anything after the limit is ignored.
MAX_ROBOTS_BYTES = 512 * 1024
_LOCAL_CACHE_SIZE = 256
# How long a process trusts its own copy of a robots.txt kept in Redis (see Robots._cache_get).
LOCAL_MAX_AGE = 60.0
# Failures of the redirect chain itself, which RFC 9309 2.3.1.2 lets us read as "unavailable".
_REDIRECT_FAILURES = frozenset({"too_many_redirects", "redirect_loop", "unsupported_scheme", "invalid_url"})
# Failures that say nothing about robots.txt in particular: the whole host cannot be resolved,
# refuses connections, or has no free politeness slot. Reported as they are, since they are more
# useful to an operator than robots_unavailable and equally transient.
_HOST_FAILURES = frozenset({"dns_error", "connect_error", "host_busy"})


@dataclass(frozen=True)
class RobotsAnswer:
    """What the server said when asked for robots.txt (body only for 2xx, already truncated)."""

    status: int
    body: bytes = b""
    retry_after: float | None = None


# Fetches a robots.txt URL through the guarded client (redirects, caps, politeness), without
# checking robots itself. Raises IngestError for failures below HTTP (timeouts, DNS, guard).
RobotsFetcher = Callable[[str], RobotsAnswer]


def origin_of(url: str) -> str:
    """scheme://host:port of a URL, the unit robots.txt applies to (RFC 9309 2.3)."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host}:{port}"


def robots_url(url: str) -> str:
    """The robots.txt URL that governs url."""
    parsed = httpx.URL(url)
    return str(httpx.URL(scheme=parsed.scheme, host=parsed.host, port=parsed.port, path="/robots.txt"))


class Robots:
    """Answer "may we fetch this URL?" for the storyline-ingest product token."""

    def __init__(self, settings: Settings, redis_client: redis.Redis | None, fetch: RobotsFetcher) -> None:
        self.ttl = settings.robots_ttl
        self._redis = redis_client
        self._fetch = fetch
        self._local: dict[str, tuple[float, str]] = {}
        # Parsing is the costly part (a big file takes milliseconds) and the same few hosts come
        # back again and again, so remember the last parses, keyed by the file's text.
        self._parse = functools.lru_cache(maxsize=64)(Protego.parse)

    def check(self, url: str) -> None:
        """Return if url may be fetched; raise robots_disallowed or robots_unavailable otherwise."""
        rules = self._parse(self.rules_text(origin_of(url), url))
        if not rules.can_fetch(url, PRODUCT_TOKEN):
            log.debug("robots disallowed", extra={"article_url": url, "reason": "robots_disallowed"})
            raise PermanentError("robots_disallowed", f"{robots_url(url)} disallows {url}")

    def rules_text(self, origin: str, url: str) -> str:
        """The cached robots.txt of origin, fetched on a miss ('' means no rules)."""
        cached = self._cache_get(origin)
        if cached is not None:
            return cached
        text = self._download(robots_url(url))
        self._cache_set(origin, text)
        return text

    def _download(self, url: str) -> str:
        """Fetch robots.txt and apply RFC 9309's reading of the outcome."""
        try:
            answer = self._fetch(url)
        except PermanentError as exc:
            if exc.reason in _REDIRECT_FAILURES:
                return ""
            raise  # e.g. blocked_private_address: the article's own host is refused too
        except TransientError as exc:
            if exc.reason in _HOST_FAILURES:
                raise  # the host itself is out of reach (or busy), not just its robots.txt
            raise TransientError(
                "robots_unavailable", f"{url} unreachable: {exc}", retry_after=exc.retry_after
            ) from None
        # 429 is a 4xx, but it says "not now", not "there is no file": treat it like a 5xx,
        # as the major crawlers do, rather than reading it as permission to fetch everything.
        if answer.status == 429 or answer.status >= 500:
            log.warning(
                "robots unavailable",
                extra={"robots_url": url, "reason": "robots_unavailable", "status": answer.status},
            )
            raise TransientError(
                "robots_unavailable", f"{url} answered {answer.status}", retry_after=answer.retry_after
            )
        if 200 <= answer.status < 300:
            # RFC 9309 2.2: the file is UTF-8; stray bytes must not stop the rest being read.
            return answer.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        return ""  # 4xx, or a 3xx we could not follow: unavailable, no rules

    def _cache_get(self, origin: str) -> str | None:
        # Every article asks, and the same few hosts come back again and again: a process keeps
        # what it read, but never past the shared entry's own expiry and for at most
        # LOCAL_MAX_AGE, so every process follows the copy in Redis within that time.
        now = time.monotonic()
        entry = self._local.get(origin)
        if entry is not None and entry[0] > now:
            return entry[1]
        if self._redis is None:
            return None
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.robots(origin))
        pipe.pttl(keys.robots(origin))
        raw, pttl = pipe.execute()
        if raw is None:
            return None
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        if pttl > 0:
            self._remember(origin, now + min(pttl / 1000, LOCAL_MAX_AGE), text)
        return text

    def _cache_set(self, origin: str, text: str) -> None:
        if self._redis is not None:
            self._redis.set(keys.robots(origin), text.encode("utf-8"), ex=self.ttl)
            self._remember(origin, time.monotonic() + min(self.ttl, LOCAL_MAX_AGE), text)
            return
        self._remember(origin, time.monotonic() + self.ttl, text)

    def _remember(self, origin: str, expires: float, text: str) -> None:
        self._local.pop(origin, None)
        if len(self._local) >= _LOCAL_CACHE_SIZE:
            self._local.pop(next(iter(self._local)))  # oldest first: dicts keep insertion order
        self._local[origin] = (expires, text)
