"""How the deadlines nest: one fetch attempt inside the task's time limits, inside the visibility timeout.

An attempt at an article (every redirect hop, robots.txt request and politeness wait) must end
within ``settings.attempt_deadline``; extraction, dedup and publishing get a margin on top that
grows with the body cap, which is the task's soft time limit; the hard limit kills a task that ignored the soft
one; and the broker's visibility timeout must be longer still, or Redis hands a running task
to a second worker. ``check`` refuses settings that break that order, at start-up.
"""

from __future__ import annotations

from ingest.config import Settings
from ingest.errors import ConfigError

# After the fetch: extraction of a page at the body cap (trafilatura needs about a second per
# MiB of HTML on a slow core; half as much again for safety), dedup and publishing.
PROCESSING_BASE = 5.0
PROCESSING_PER_MIB = 1.5
# Between the soft limit (the task is told to stop) and the hard one (its process is killed).
KILL_MARGIN = 5.0
# Between the hard limit and the visibility timeout: the ack or requeue of a killed task.
REDELIVERY_MARGIN = 5.0


def processing_margin(settings: Settings) -> float:
    """Seconds the task gets after its fetch: extraction (by the body cap), dedup, publishing."""
    return PROCESSING_BASE + PROCESSING_PER_MIB * settings.max_body_bytes / 2**20


def soft_time_limit(settings: Settings) -> float:
    """Seconds after which a task is asked to stop (its attempt counts as a timeout)."""
    return settings.attempt_deadline + processing_margin(settings)


def hard_time_limit(settings: Settings) -> float:
    """Seconds after which a task's process is killed."""
    return soft_time_limit(settings) + KILL_MARGIN


def outcome_bound(settings: Settings) -> float:
    """Longest a URL takes from its first attempt to its outcome (article or dead letter).

    Every attempt ends within the soft limit; between attempts there is at most the longest
    retry delay. Not counted: time queued behind other work, and waits for a busy host.
    """
    retries = settings.task_max_retries
    return (retries + 1) * soft_time_limit(settings) + retries * settings.retry_countdown_max


def check(settings: Settings) -> None:
    """Raise ConfigError when the deadlines do not nest."""
    hard = hard_time_limit(settings)
    if settings.visibility_timeout < hard + REDELIVERY_MARGIN:
        raise ConfigError(
            f"INGEST_VISIBILITY_TIMEOUT ({settings.visibility_timeout}s) must be at least "
            f"{hard + REDELIVERY_MARGIN:g}s: the task hard time limit ({hard:g}s, from INGEST_ATTEMPT_DEADLINE "
            f"and INGEST_MAX_BODY_BYTES) plus {REDELIVERY_MARGIN:g}s, or a running task is handed to a second worker"
        )
