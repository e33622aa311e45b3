"""Feeds: fetching and sniffing feed documents (RSS, Atom, RDF, JSON Feed, sitemaps), turning entries
into URLs to fetch, the feed list and its adaptive schedule in Redis, resumable batched polling, OPML.

`fetch_and_parse` checks one URL (used by `feeds add`); `poll` is what the worker runs per feed.
"""

from __future__ import annotations

from ingest.feeds.model import FeedEntry, ParsedFeed, SitemapRef
from ingest.feeds.parse import parse_document, parse_feed
from ingest.feeds.poll import Checked, fetch_and_parse, poll
from ingest.feeds.store import POLL_LEASE, FeedInfo, FeedStore, PollCounts

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
