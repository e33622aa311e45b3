"""Checking a feed URL when it is added, and finding the feeds an HTML page offers.

`check` fetches and parses a URL with the same functions a poll uses. When the URL is an HTML
page rather than a feed, the page's own declarations are read (``<link rel="alternate">`` with
an RSS, Atom or JSON Feed type); if it declares none, the usual feed paths of its site are tried
(/feed, /rss.xml, ...), keeping those that parse as feeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from ingest import feeds
from ingest.errors import IngestError, InvalidURL
from ingest.fetch import Fetcher, looks_like_html, parse_content_type
from ingest.urls import validate_url

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",  # JSON Feed before it had a type of its own
        "application/rdf+xml",
        "application/xml",
        "text/xml",
    }
)
GENERIC_TYPES = frozenset({"application/xml", "text/xml", "application/json"})
COMMON_PATHS = ("/feed", "/rss.xml", "/atom.xml", "/feed.xml", "/index.xml", "/rss", "/feed.json")
MAX_PROBES = len(COMMON_PATHS)


@dataclass
class FeedCheck:
    """What fetching a would-be feed URL showed."""

    url: str
    is_feed: bool
    title: str | None = None
    entries: int = 0
    problem: str | None = None  # why it is not a feed (or what is odd about a feed we can read)
    html: bool = False  # the URL is a web page
    feeds: list[str] = field(default_factory=list)  # feeds the page offers, when it is one


def feed_links(html: bytes | str, base_url: str) -> list[str]:
    """Feed URLs an HTML page declares with <link rel="alternate" type=...>, absolute, in page order."""
    import lxml.html  # deferred: only adding a feed reads HTML here

    try:
        doc = lxml.html.fromstring(html)
    except (ValueError, TypeError, lxml.etree.ParserError):
        return []
    base = base_url
    for href in doc.xpath("//base/@href")[:1]:
        base = urljoin(base_url, str(href).strip())
    out: list[str] = []
    for link in doc.xpath("//link[@href]"):
        rel = {r.lower() for r in str(link.get("rel") or "").split()}
        media = parse_content_type(link.get("type"))[0]
        if "alternate" not in rel or media not in FEED_TYPES:
            continue
        if media in GENERIC_TYPES and not _feedish(link.get("href")):
            continue
        try:
            url = validate_url(urljoin(base, str(link.get("href")).strip()))
        except InvalidURL:
            continue
        if url not in out:
            out.append(url)
    return out


def _feedish(href: str | None) -> bool:
    """A generic XML or JSON type is a feed only when the link looks like one (not a sitemap or an API)."""
    h = (href or "").lower()
    return any(w in h for w in ("feed", "rss", "atom"))


def _parse(fetcher: Fetcher, url: str) -> FeedCheck:
    resp = fetcher.fetch_feed(url)
    media, _ = parse_content_type(resp.content_type)
    try:
        parsed = feeds.parse_feed(resp.body, resp.final_url)
    except IngestError as exc:
        html = media in ("text/html", "application/xhtml+xml") or looks_like_html(resp.body)
        check = FeedCheck(url, False, problem=f"{exc.reason}: {exc.detail}", html=html)
        if html:
            check.feeds = feed_links(resp.body, resp.final_url)
        return check
    return FeedCheck(url, True, parsed.title, len(parsed.entries), parsed.problem)


def check(fetcher: Fetcher, url: str, *, probe: bool = True) -> FeedCheck:
    """Fetch and parse url; for an HTML page, list the feeds it offers (probing common paths if it declares none).

    Raises IngestError when the URL cannot be fetched at all (down, 404, refused).
    """
    result = _parse(fetcher, url)
    if result.html and not result.feeds and probe:
        result.feeds = probe_common_paths(fetcher, url)
    return result


def probe_common_paths(fetcher: Fetcher, page_url: str) -> list[str]:
    """The usual feed paths of a page's site that answer with a feed."""
    parts = urlsplit(page_url)
    found = []
    for path in COMMON_PATHS[:MAX_PROBES]:
        candidate = f"{parts.scheme}://{parts.netloc}{path}"
        try:
            if _parse(fetcher, candidate).is_feed:
                found.append(candidate)
        except IngestError:
            continue
    return found
