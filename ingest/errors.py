"""Errors of the ingestion pipeline, each with a short stable reason code.

Callers catch at the level they need::

    IngestError
    ├── TransientError        worth retrying later: timeouts, 429, 5xx, a busy host
    │                         (carries retry_after seconds when the server said so)
    ├── PermanentError        retrying cannot help: goes to ingest:deadletter with its reason
    │   └── InvalidURL        a URL that is not an absolute http(s) URL (CLI exit code 2)
    ├── ConfigError           bad settings or storyline definitions, found at start-up (exit code 2)
    └── Unavailable           a service the command needs (Redis) cannot be found (exit code 1)

Reason codes are part of the public contract of the deadletter stream, so they are
snake_case constants that never change meaning:

    permanent  invalid_url unsupported_scheme blocked_private_address http_4xx (but 408, 429)
               not_html no_content not_feed too_large bad_encoding redirect_loop too_many_redirects
               robots_disallowed empty_extraction broken_html malformed_feed
               too_many_attempts internal_error
    transient  timeout dns_error connect_error protocol_error http_408 http_429 http_5xx
               robots_unavailable host_busy redis_unavailable
               (dead-lettered under the same code once retries run out)
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of every error the pipeline raises on purpose."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TransientError(IngestError):
    """A failure that may go away: retry with backoff, honouring retry_after when known."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


class PermanentError(IngestError):
    """A failure that retrying cannot fix: the URL goes to the deadletter stream."""


class InvalidURL(PermanentError):
    """Not an absolute http(s) URL."""

    def __init__(self, detail: str) -> None:
        super().__init__("invalid_url", detail)


class ConfigError(IngestError):
    """Invalid configuration or storyline definition, reported before anything runs."""

    def __init__(self, detail: str) -> None:
        super().__init__("config_error", detail)


class Unavailable(IngestError):
    """A service the command needs cannot be found or reached."""

    def __init__(self, detail: str) -> None:
        super().__init__("unavailable", detail)
