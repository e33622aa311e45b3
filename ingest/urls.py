"""URL validation, canonical form, and the stable ids derived from URLs."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import idna

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
    return url


def _check_host_name(url: str, host: str) -> None:
    """Refuse a host name that no DNS name can be: empty labels, bad characters, too long."""
    name = host.rstrip(".")
    if not name or len(name) > MAX_HOST_LENGTH:
        raise InvalidURL(f"URL has an invalid host name: {url!r}")
    try:
        # IDNA 2008, as the HTTP client encodes host names (and decodes their xn-- labels); idna,
        # not httpx, so that client commands validating a URL stay quick to start
        labels = name.split(".") if name.isascii() else idna.encode(name).decode("ascii").split(".")
        for label in labels:
            if label.startswith("xn--"):
                idna.decode(label)
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise InvalidURL(f"URL has an invalid host name {host!r}: {exc}") from None
    for label in labels:
        if not _HOST_LABEL.match(label):
            raise InvalidURL(f"URL has an invalid host name {host!r}: {url!r}")


# Query parameters that only say how a reader arrived (campaign, click and mail trackers); nothing
# else is removed, since any other parameter, with or without a value (`news.php?1001`, Dotclear's
# `index.php?post/2025/03/19/slug`), may be what names the page.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "ysclid", "twclid",
        "ttclid", "li_fat_id", "igshid", "igsh", "mc_cid", "mc_eid", "mkt_tok", "_hsenc", "_hsmi", "__hssc",
        "__hstc", "__hsfp", "hsctatracking", "_ga", "_gl", "_openstat", "oly_anon_id", "oly_enc_id",
        "vero_id", "vero_conv", "rb_clickid", "wt.mc_id", "ref_src", "ref_url", "pk_campaign", "pk_kwd",
        "pk_source", "pk_medium", "pk_content", "s_kwcid", "ncid", "cmpid", "ocid",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "mtm_", "itm_")
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normal_escapes(part: str) -> str:
    """RFC 3986 6.2.2: percent-escapes in upper case, unreserved characters unescaped."""

    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(0)[1:], 16))
        return ch if ch in _UNRESERVED else m.group(0).upper()

    return _PERCENT.sub(fix, part) if "%" in part else part


def _is_tracking(param: str) -> bool:
    name = unquote(param.partition("=")[0]).strip().lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def _without_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, as browsers do before sending a request."""
    if "/." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        if seg == "..":
            if len(out) > 1:
                out.pop()
        elif seg != ".":
            out.append(seg)
        if seg in (".", "..") and i == len(segments) - 1:
            out.append("")
    return "/".join(out) or "/"


def canonicalize(url: str) -> str:
    """Canonical form for identity: known tracking parameters removed, host lowercased, no fragment.

    Only what cannot change the page is touched: scheme and host case, the default port, dot
    segments, percent-escape case, known tracking parameters, the fragment (except `#!` routes).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    host = netloc.rpartition("@")[2]
    netloc = netloc[: len(netloc) - len(host)] + host.lower()
    if (scheme == "http" and netloc.endswith(":80")) or (scheme == "https" and netloc.endswith(":443")):
        netloc = netloc.rpartition(":")[0]
    path = _normal_escapes(_without_dot_segments(parts.path)) or "/"
    query = "&".join(_normal_escapes(p) for p in parts.query.split("&") if p and not _is_tracking(p))
    # A fragment never selects a different document, except the `#!` routes of old AJAX sites.
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    return urlunsplit((scheme, netloc, path, query, fragment))


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
