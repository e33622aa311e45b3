"""Parse a feed document (RSS, Atom, RDF via feedparser; JSON Feed 1.0/1.1; sitemaps) into entries.

Every entry ends as a FeedEntry with a fetchable link, a FeedEntry whose link is invalid (it is
dead-lettered), or a count in ParsedFeed.skipped with its reason: none vanishes unseen.
"""

from __future__ import annotations

import calendar
import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser

from ingest.errors import PermanentError
from ingest.feeds import sitemap
from ingest.feeds.entries import Raw, identify, looks_like_permalink, parse_iso
from ingest.feeds.model import ParsedFeed
from ingest.feeds.sniff import GZIP_MAGIC, feedparser_content_type, gunzip, kind_of

# feedparser's warnings that say nothing about the feed once it parsed: the label was not an XML
# type (we hand it over as XML after sniffing), or feedparser chose another charset than declared.
BENIGN_BOZO = (feedparser.NonXMLContentType,)
JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1", "http://jsonfeed.org/version/1")
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", ""})
MEDIA_PREFIXES = ("audio/", "video/", "image/", "application/")
_XML_DECL = re.compile(r"^\ufeff?\s*<\?xml[^>]*>")
SY_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400, "yearly": 365 * 86400}


def parse_document(body: bytes, url: str, content_type: str = "", max_bytes: int = 50 * 1024 * 1024) -> ParsedFeed:
    """Parse whatever feed format the bytes hold; PermanentError not_feed / malformed_feed otherwise."""
    if body.startswith(GZIP_MAGIC):  # a .xml.gz sitemap or feed served without Content-Encoding
        body = gunzip(body, max_bytes)
    try:
        return _parse(body, url, content_type)
    except (RecursionError, ValueError, LookupError, UnicodeError) as exc:
        # Parsers of hostile documents fail in their own ways (nesting depth, unknown codecs).
        raise PermanentError("malformed_feed", f"{url}: {type(exc).__name__}: {exc}"[:300]) from None


def _parse(body: bytes, url: str, content_type: str) -> ParsedFeed:
    kind = kind_of(body)
    if kind == "html":
        raise PermanentError("not_feed", f"{url} is an HTML page, not a feed (look for its feed link)")
    if kind == "json":
        return parse_json_feed(body, url)
    if kind in ("urlset", "sitemapindex"):
        return sitemap.parse(body, url)
    if kind == "unknown" and b"<" not in body[:4096]:
        raise PermanentError("not_feed", f"{url} is not a feed: neither XML nor JSON")
    if kind == "opml":
        raise PermanentError("not_feed", f"{url} is an OPML list of feeds: import it with `ingest feeds import`")
    return parse_feed(body, url, content_type)


def parse_feed(body: bytes, feed_url: str, content_type: str = "") -> ParsedFeed:
    """Parse RSS/Atom/RDF bytes; PermanentError('malformed_feed') when nothing usable is in them."""
    headers = {"content-location": feed_url, "content-type": feedparser_content_type(body, content_type)}
    try:
        parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
    except Exception:  # feedparser's own bugs on broken input: KeyError, UnicodeDecodeError...
        # Once more as clean UTF-8 without its declaration, which is what trips feedparser's decoding.
        text = _XML_DECL.sub("", body.decode("utf-8", "replace"), count=1)
        headers["content-type"] = "application/xml; charset=utf-8"
        try:
            parsed = feedparser.parse(text.encode(), response_headers=headers, sanitize_html=False)
        except Exception as exc:  # the same bugs, twice: give up on this document
            raise PermanentError("malformed_feed", f"{feed_url}: unreadable: {type(exc).__name__}") from None
    problem = None
    if parsed.bozo and not isinstance(parsed.bozo_exception, BENIGN_BOZO):
        problem = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}"[:300]
    if not parsed.get("version") and not parsed.entries:
        if kind_of(body) == "unknown" and not body.strip():
            raise PermanentError("malformed_feed", f"{feed_url} sent an empty document")
        raise PermanentError("malformed_feed", problem or f"{feed_url} is not an RSS, Atom or JSON feed")
    skipped: Counter[str] = Counter()
    raw = []
    for e in parsed.entries:
        link = _feedparser_link(e, skipped)
        if link is None:
            continue
        stamp = e.get("published_parsed") or e.get("updated_parsed")
        published = datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None
        # dict.get: feedparser's own get() falls back from `updated` to `published` (with a warning),
        # which would make every dated entry look updated.
        raw.append((e.get("id") or None, link, e.get("title"), published, dict.get(e, "updated")))
    entries = identify(raw, feed_url, skipped)
    return ParsedFeed(
        parsed.feed.get("title"), entries, problem, parsed.get("version") or "feed", dict(skipped), _hints(parsed.feed)
    )


def _feedparser_link(e: Any, skipped: Counter[str]) -> str | None:
    """The link of a feedparser entry: its link, a permalink GUID, an HTML enclosure; else counted."""
    if e.get("link"):
        return str(e["link"])
    guid = e.get("id")
    # RSS 2.0: a GUID is a permalink unless isPermaLink="false"; feedparser already copied a
    # permalink GUID into `link`, so a GUID here is opaque, used only when it is plainly a page URL.
    if guid and looks_like_permalink(str(guid)):
        return str(guid)
    enclosures = [ln for ln in e.get("links", []) if ln.get("rel") == "enclosure" and ln.get("href")]
    pages = [ln for ln in enclosures if str(ln.get("type", "")).split(";")[0].strip().lower() in HTML_TYPES]
    if pages and not _looks_like_media(pages[0]["href"]):
        return str(pages[0]["href"])
    skipped["enclosure_only" if enclosures else "no_link"] += 1
    return None


def _looks_like_media(href: str) -> bool:
    path = urlsplit(href).path.lower()
    return path.endswith((".mp3", ".m4a", ".ogg", ".mp4", ".webm", ".jpg", ".jpeg", ".png", ".gif", ".pdf", ".wav"))


def _hints(feed: Any) -> dict[str, float]:
    """The publisher's polling hints, in seconds: RSS <ttl> (minutes) and sy:updatePeriod/Frequency."""
    hints: dict[str, float] = {}
    ttl = str(feed.get("ttl") or "").strip()
    if ttl.isdigit() and int(ttl) > 0:
        hints["ttl"] = int(ttl) * 60.0
    period = SY_PERIODS.get(str(feed.get("sy_updateperiod") or "").strip().lower())
    if period:
        freq = str(feed.get("sy_updatefrequency") or "1").strip()
        hints["sy:updatePeriod"] = period / max(1, int(freq) if freq.isdigit() else 1)
    return hints


def parse_json_feed(body: bytes, feed_url: str) -> ParsedFeed:
    """JSON Feed 1.0 / 1.1 (https://www.jsonfeed.org/version/1.1/), with the same entry handling."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise PermanentError("malformed_feed", f"{feed_url} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(JSON_FEED_VERSIONS):
        raise PermanentError("not_feed", f"{feed_url} is JSON but not a JSON Feed (no jsonfeed.org version)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise PermanentError("malformed_feed", f"{feed_url}: JSON Feed without an items list")
    skipped: Counter[str] = Counter()
    raw: list[Raw] = []
    for item in items:
        if not isinstance(item, dict):
            skipped["no_link"] += 1
            continue
        guid = str(item["id"]) if isinstance(item.get("id"), (str, int)) and str(item["id"]) else None
        link = _json_str(item, "url") or _json_str(item, "external_url")
        if not link and guid and looks_like_permalink(guid):
            link = guid
        if not link:
            kinds = [a for a in item.get("attachments") or [] if isinstance(a, dict)]
            skipped["enclosure_only" if kinds else "no_link"] += 1
            continue
        published = parse_iso(_json_str(item, "date_published") or _json_str(item, "date_modified"))
        raw.append((guid, link, _json_str(item, "title"), published, _json_str(item, "date_modified")))
    title = doc.get("title") if isinstance(doc.get("title"), str) else None
    version = "json" + str(doc["version"]).rsplit("/", 1)[-1].replace(".", "")
    return ParsedFeed(title, identify(raw, feed_url, skipped), None, version, dict(skipped))


def _json_str(d: dict[str, Any], name: str) -> str | None:
    v = d.get(name)
    return v if isinstance(v, str) and v.strip() else None
