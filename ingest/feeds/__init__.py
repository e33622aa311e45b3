"""Feeds: fetching and sniffing feed documents (RSS, Atom, RDF, JSON Feed, sitemaps), turning entries
into URLs to fetch, the feed list and its adaptive schedule in Redis, resumable batched polling, OPML.

`fetch_and_parse` checks one URL (used by `feeds add`); `poll` is what the worker runs per feed.
Names are loaded on first use: client commands that only read the feed list (FeedStore) must not
pay for importing feedparser and httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.feeds.model import FeedEntry, ParsedFeed, SitemapRef
    from ingest.feeds.parse import parse_document, parse_feed
    from ingest.feeds.polling import Checked, fetch_and_parse, poll
    from ingest.feeds.store import POLL_LEASE, FeedInfo, FeedStore, PollCounts

_WHERE = {
    "FeedEntry": "model",
    "ParsedFeed": "model",
    "SitemapRef": "model",
    "parse_document": "parse",
    "parse_feed": "parse",
    "Checked": "polling",
    "fetch_and_parse": "polling",
    "poll": "polling",
    "POLL_LEASE": "store",
    "FeedInfo": "store",
    "FeedStore": "store",
    "PollCounts": "store",
}

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


def __getattr__(name: str) -> Any:
    # PEP 562: import the submodule that defines a name when the name is first asked for.
    if name in _WHERE:
        return getattr(importlib.import_module(f"ingest.feeds.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'ingest.feeds' has no attribute {name!r}")
