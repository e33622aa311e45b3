"""Entry identity and links: the one place a feed link becomes a URL to fetch, and GUIDs become keys."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from ingest.errors import InvalidURL
from ingest.feeds.model import FeedEntry
from ingest.urls import validate_url

_TAB_NEWLINE = re.compile(r"[\t\n\r]")


def entry_url(link: str, base: str) -> str:
    """A feed link as a browser would request it, or InvalidURL.

    WHATWG URL: tabs and newlines are removed, leading and trailing spaces stripped, inner spaces
    sent as %20. Validation is the project's one URL check (ingest.urls.validate_url).
    """
    cleaned = _TAB_NEWLINE.sub("", link).strip(" \x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f")
    try:
        cleaned = urljoin(base, cleaned.replace(" ", "%20")) if cleaned else cleaned
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise InvalidURL(f"{link!r}: {exc}") from None
    return validate_url(cleaned)


def looks_like_permalink(guid: str) -> bool:
    """True for a GUID that is an http(s) URL naming a page (a path or a query, not a bare site)."""
    try:
        parts = urlsplit(guid.strip())
    except ValueError:
        return False
    return (
        parts.scheme.lower() in ("http", "https")
        and "." in (parts.hostname or "")
        and (parts.path not in ("", "/") or bool(parts.query))
    )


Raw = tuple[str | None, str, str | None, datetime | None, str | None]


def identify(raw: Iterable[Raw], base: str, skipped: Counter[str]) -> list[FeedEntry]:
    """Give entries keys: the GUID, or the link where one GUID is shared by different links."""
    rows = list(raw)
    links_of_guid: dict[str, set[str]] = {}
    for guid, link, *_ in rows:
        if guid:
            links_of_guid.setdefault(guid, set()).add(link)
    entries, keys_seen = [], set()
    for guid, link, title, published, updated in rows:
        invalid = None
        try:
            url = entry_url(link, base)
        except InvalidURL as exc:
            url, invalid = link, exc.detail
        # RSS says <guid> identifies an item, but some feeds repeat one GUID for different
        # entries: those are told apart by their links, so that neither is lost.
        key = guid if guid and len(links_of_guid[guid]) == 1 else url
        if key in keys_seen:
            skipped["repeated_in_feed"] += 1
            continue
        keys_seen.add(key)
        entries.append(FeedEntry(key, url, title, published, updated, invalid))
    return entries


def parse_iso(value: str | None) -> datetime | None:
    """An RFC 3339 date (JSON Feed, sitemaps), as an aware datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
