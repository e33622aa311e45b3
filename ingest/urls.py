"""URL validation, canonical form (courlan), and the stable ids derived from URLs."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

from ingest import keys
from ingest.errors import InvalidURL

MAX_URL_LENGTH = 4096


def validate_url(url: str) -> str:
    """Return the URL stripped, or raise InvalidURL with the reason a person can act on."""
    url = url.strip()
    if not url:
        raise InvalidURL("empty URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in url):
        raise InvalidURL(f"URL contains whitespace: {url!r}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidURL(f"only http and https URLs can be fetched, not {url!r}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # e.g. a port that is not a number
        raise InvalidURL(f"{url!r}: {exc}") from None
    if not host:
        raise InvalidURL(f"URL has no host: {url!r}")
    if port == 0:
        raise InvalidURL(f"URL has port 0: {url!r}")
    return url


def canonicalize(url: str) -> str:
    """Canonical form for identity: tracking parameters removed, host lowercased, no fragment."""
    import courlan  # deferred: commands that never canonicalize start faster without it

    try:
        normal = courlan.normalize_url(url)
    except (ValueError, AttributeError):
        normal = url
    parts = urlsplit(normal)
    # Fragments never select a different document on the server.
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def choose_canonical(final_url: str, declared: str | None) -> str:
    """The declared rel=canonical when it is a valid http(s) URL, else the URL we ended on."""
    if declared:
        absolute = urljoin(final_url, declared.strip())
        try:
            return canonicalize(validate_url(absolute))
        except InvalidURL:
            pass
    return canonicalize(final_url)


def item_id(canonical_url: str) -> str:
    """Stable item id derived from the canonical URL."""
    return keys.digest(canonical_url)


def job_id(url: str) -> str:
    """Stable job id of a requested URL: the same URL entering twice is the same job."""
    return keys.digest(f"job\n{url}")


def host_of(url: str) -> str:
    """Lowercase host name (no port) of a URL, or '' when it has none."""
    return (urlsplit(url).hostname or "").lower()
