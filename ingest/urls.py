"""URL validation, canonical form (courlan), and the stable ids derived from URLs."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from ingest import keys
from ingest.errors import InvalidURL

MAX_URL_LENGTH = 4096
MAX_HOST_LENGTH = 253  # RFC 1035 2.3.4, in its text form without the trailing dot
# Unicode categories a URL never carries literally: controls (C0, DEL, C1), invisible format
# characters (zero-width, bidi overrides), surrogates, private use, line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def validate_url(url: str) -> str:
    """Return the URL stripped, or raise InvalidURL with the reason a person can act on.

    The one check every URL passes before anything is queued or fetched (CLI, API, feed
    entries, redirect targets): an absolute http(s) URL with a host name or IP literal that
    the HTTP client can send as it is.
    """
    if not isinstance(url, str):
        raise InvalidURL(f"URL must be a string, not {type(url).__name__}")
    url = url.strip()
    if not url:
        raise InvalidURL("empty URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    for ch in url:
        if ch.isspace():
            raise InvalidURL(f"URL contains whitespace: {url!r}")
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise InvalidURL(f"URL contains the control or invisible character U+{ord(ch):04X}: {url!r}")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # an unclosed or invalid [IPv6] literal, a port that is not a number
        raise InvalidURL(f"{url!r} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidURL(f"only http and https URLs can be fetched, not {url!r}")
    if not host:
        raise InvalidURL(f"URL has no host: {url!r}")
    if port == 0:
        raise InvalidURL(f"URL has port 0: {url!r}")
    if not parts.netloc.endswith("]") and "[" not in parts.netloc:
        _check_host_name(url, host)
    try:
        # What the HTTP client will send: its parser (IDNA included) must accept the URL too.
        parsed_host = httpx.URL(url).host  # .host decodes IDNA labels, and may refuse them
    except Exception as exc:  # httpx.InvalidURL, idna.IDNAError, UnicodeError...: refused either way
        raise InvalidURL(f"{url!r} is not a valid URL: {exc}") from None
    if not parsed_host:
        raise InvalidURL(f"URL has no host: {url!r}")
    return url


def _check_host_name(url: str, host: str) -> None:
    """Refuse a host name that no DNS name can be: empty labels, bad characters, too long."""
    name = host.rstrip(".")
    if not name or len(name) > MAX_HOST_LENGTH:
        raise InvalidURL(f"URL has an invalid host name: {url!r}")
    if not name.isascii():
        return  # an internationalised name: httpx's IDNA encoding judges it
    for label in name.split("."):
        if not _HOST_LABEL.match(label):
            raise InvalidURL(f"URL has an invalid host name {host!r}: {url!r}")


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
