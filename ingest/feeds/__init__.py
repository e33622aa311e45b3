"""Feeds: fetching and sniffing feed documents (RSS, Atom, RDF, JSON Feed, sitemaps), turning entries
into URLs to fetch, the feed list and its adaptive schedule in Redis, resumable batched polling, OPML.

`fetch_and_parse` checks one URL (used by `feeds add`); `poll` is what the worker runs per feed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ingest.feeds.model import FeedEntry, ParsedFeed, SitemapRef
from ingest.feeds.store import POLL_LEASE, FeedInfo, FeedStore, PollCounts

if TYPE_CHECKING:
    from ingest.feeds.parse import parse_document, parse_feed
    from ingest.feeds.poll import Checked, fetch_and_parse, poll

# Client commands (`feeds list`, `poll`, `stats`) need only the store: the parsers and the HTTP
# stack behind these names load on first use, so those commands start fast.
_LAZY = {
    "parse_document": "ingest.feeds.parse",
    "parse_feed": "ingest.feeds.parse",
    "Checked": "ingest.feeds.poll",
    "fetch_and_parse": "ingest.feeds.poll",
    "poll": "ingest.feeds.poll",
}


def __getattr__(name: str) -> Any:
    """Load the parsing and polling names on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        # bound here so that `poll` names the function, not the submodule of the same name
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "POLL_LEASE",
    "Checked",
    "FeedEntry",
    "FeedInfo",
    "FeedStore",
    "ParsedFeed",
    "PollCounts",
    "SitemapRef",
    "fetch_and_parse",
    "parse_document",
    "parse_feed",
    "poll",
]
