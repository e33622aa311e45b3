"""Sitemaps as sources: <urlset> (with the Google News extension) and <sitemapindex> (sitemaps.org 0.9)."""

from __future__ import annotations

import io
from collections import Counter
from xml.etree import ElementTree

from ingest.errors import PermanentError
from ingest.feeds.entries import Raw, identify, parse_iso
from ingest.feeds.model import ParsedFeed, SitemapRef


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse(body: bytes, url: str, depth: int = 0) -> ParsedFeed:
    """Entries of a urlset (loc, news:title, news:publication_date or lastmod) or children of an index."""
    skipped: Counter[str] = Counter()
    raw: list[Raw] = []
    children: list[SitemapRef] = []
    kind = ""
    try:
        # iterparse keeps memory flat on 50,000-URL files; expat neither fetches external
        # entities nor expands nested ones without bound.
        for _event, el in ElementTree.iterparse(io.BytesIO(body), events=("end",)):
            name = _local(el.tag)
            if name in ("urlset", "sitemapindex"):
                kind = name
            elif name == "url":
                # Only the Google News extension's title: image:title and video:title name media.
                fields = {
                    _local(c.tag): (c.text or "").strip()
                    for c in el.iter()
                    if _local(c.tag) != "title" or "sitemap-news" in c.tag
                }
                loc = fields.get("loc")
                if not loc:
                    skipped["no_link"] += 1
                else:
                    stamp = fields.get("publication_date") or fields.get("lastmod")
                    title = fields.get("title") or None
                    raw.append((None, loc, title, parse_iso(stamp), fields.get("lastmod") or None))
                el.clear()
            elif name == "sitemap":
                fields = {_local(c.tag): (c.text or "").strip() for c in el}
                if fields.get("loc"):
                    children.append(SitemapRef(fields["loc"], fields.get("lastmod") or None, depth + 1))
                el.clear()
    except ElementTree.ParseError as exc:
        if not (raw or children):
            raise PermanentError("malformed_feed", f"{url}: sitemap does not parse: {exc}") from None
        problem: str | None = f"sitemap cut short: {exc}"
    else:
        problem = None
    return ParsedFeed(None, identify(raw, url, skipped), problem, kind or "sitemap", dict(skipped), {}, children)
