"""What a parsed feed or sitemap is made of: entries with their links, sitemap references, hints."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed or sitemap: its identity (GUID, else link), link and title.

    `invalid` holds why the link cannot be fetched (the entry is then dead-lettered, not dropped).
    """

    key: str
    link: str | None
    title: str | None
    published: datetime | None
    updated: str | None = None  # the entry's own last-modified stamp, as the feed wrote it
    invalid: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form, for the backlog of a poll that continues in another task."""
        return {
            "k": self.key,
            "l": self.link,
            "t": self.title,
            "p": self.published.isoformat() if self.published else None,
            "u": self.updated,
            "i": self.invalid,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FeedEntry:
        """Inverse of to_json."""
        published = datetime.fromisoformat(d["p"]) if d.get("p") else None
        return cls(d["k"], d.get("l"), d.get("t"), published, d.get("u"), d.get("i"))


@dataclass(frozen=True)
class SitemapRef:
    """A child sitemap named by a sitemap index, with its lastmod and its depth below the feed."""

    loc: str
    lastmod: str | None
    depth: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form, for the backlog."""
        return {"s": self.loc, "m": self.lastmod, "d": self.depth}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SitemapRef:
        """Inverse of to_json."""
        return cls(d["s"], d.get("m"), int(d.get("d", 1)))


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed or sitemap; `problem` names what was wrong with a document we could still read.

    `skipped` counts entries that name nothing fetchable, by reason (no_link, enclosure_only,
    repeated_in_feed); `hints` holds the publisher's own polling hints in seconds (ttl, sy:updatePeriod).
    """

    title: str | None
    entries: list[FeedEntry]
    problem: str | None = None
    kind: str = "rss"  # rss | atom | rdf | json | sitemap | sitemapindex | feedparser's version names
    skipped: dict[str, int] = field(default_factory=dict)
    hints: dict[str, float] = field(default_factory=dict)
    children: list[SitemapRef] = field(default_factory=list)
