"""When to poll a feed next, and why: entry frequency within the operator's bounds, the publisher's hints.

Pure functions of the settings, the feed's record and what the last poll saw (miniflux's
entry_frequency scheduler, plus RSS <ttl>, sy:updatePeriod, Cache-Control/Expires, Retry-After).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

from ingest.config import Settings

WEEK = 7 * 86400


def cache_hints(headers: Mapping[str, str], now: float | None = None) -> dict[str, float]:
    """Seconds the response may be reused, from Cache-Control max-age or else Expires (RFC 9111 4.2.1)."""
    now = time.time() if now is None else now
    for directive in headers.get("cache-control", "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "max-age" and value.strip().strip('"').isdigit():
            return {"Cache-Control max-age": float(value.strip().strip('"'))}
    expires = headers.get("expires")
    if expires:
        try:
            when = parsedate_to_datetime(expires).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return {}
        return {"Expires": max(0.0, when - now)}
    return {}


def base_interval(settings: Settings, explicit: int | None, dates: Iterable[datetime], now: float) -> tuple[float, str]:
    """The interval before hints: the feed's own if set, else from its entry frequency over a week."""
    if explicit:
        return float(explicit), f"interval {explicit}s set for this feed"
    if not settings.feed_adaptive:
        return float(settings.feed_interval), f"INGEST_FEED_INTERVAL {settings.feed_interval}s"
    stamps = [d.timestamp() for d in dates]
    if not stamps:
        return float(settings.feed_interval), "entries carry no dates: INGEST_FEED_INTERVAL"
    recent = [s for s in stamps if now - WEEK <= s <= now + 3600]
    if not recent:
        return float(settings.feed_max_interval), "no entry in the last 7 days"
    # A feed shows only its latest entries: the rate is over the time they span, not over a week,
    # or a busy feed of 20 entries a day would look like 20 a week.
    span = max(now - min(recent), 3600.0)
    return _bounded(settings, span / len(recent)), f"{len(recent)} entries in the last {span / 3600:.0f} h"


def _bounded(settings: Settings, seconds: float) -> float:
    return min(max(seconds, settings.feed_min_interval), settings.feed_max_interval)


def after_success(settings: Settings, base: tuple[float, str], hints: Mapping[str, float]) -> tuple[float, str]:
    """Delay to the next poll after a good one: whichever of frequency and hints asks the longest wait."""
    delay, why = base
    for name, seconds in hints.items():
        if seconds > delay:
            delay, why = seconds, f"{name} {int(seconds)}s"
    if delay > settings.feed_max_interval:
        delay, why = float(settings.feed_max_interval), f"{why}, capped by INGEST_FEED_MAX_INTERVAL"
    return delay, why


def after_failure(
    settings: Settings, interval: float, failures: int, retry_after: float | None
) -> tuple[float, str, bool]:
    """Delay after a failed poll (exponential backoff, Retry-After), its reason, and whether the feed is broken."""
    broken = failures >= settings.feed_broken_after
    if broken:
        delay, why = float(settings.feed_max_backoff), f"broken: {failures} consecutive failures"
    else:
        delay = min(interval * 2 ** min(failures, 16), float(settings.feed_max_backoff))
        why = f"backoff after {failures} failure{'s' if failures > 1 else ''}"
    if retry_after and retry_after > delay:
        delay, why = min(retry_after, float(settings.feed_max_interval)), f"Retry-After {int(retry_after)}s"
    return delay, why, broken
