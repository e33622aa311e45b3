"""Canonical URLs: known tracking parameters go, everything that can name a page stays (table of real shapes)."""

from __future__ import annotations

import pytest

from ingest.urls import canonicalize, item_id

SAME = [
    # (url, canonical form)
    ("https://news.example/story?utm_source=rss&utm_medium=feed", "https://news.example/story"),
    ("https://news.example/story?id=7&utm_campaign=x&fbclid=AbC", "https://news.example/story?id=7"),
    ("https://news.example/story?gclid=1&mc_cid=2&mc_eid=3&msclkid=4", "https://news.example/story"),
    ("https://news.example/a?_ga=2.1&_gl=1*x&yclid=5&igshid=6", "https://news.example/a"),
    ("https://news.example/a?UTM_Source=x&Id=3", "https://news.example/a?Id=3"),
    ("https://news.example/a#comments", "https://news.example/a"),
    ("HTTPS://News.Example:443/a", "https://news.example/a"),
    ("http://news.example:80/a", "http://news.example/a"),
    ("http://news.example", "http://news.example/"),
    ("https://news.example/a/./b/../c", "https://news.example/a/c"),
    ("https://news.example/%7euser/caf%c3%a9", "https://news.example/~user/caf%C3%A9"),
    ("https://news.example/a?", "https://news.example/a"),
]

KEPT = [
    # query strings and parts that name pages: never removed
    "http://oldcms.example/news.php?1001",
    "http://oldcms.example/article.asp?12345",
    "http://blog.example/index.php?post/2025/03/19/Energy-pause-holds",
    "https://blog.example/?p=4711",
    "https://site.example/view?id=5&page=2",
    "https://site.example/view?page=2&id=5",  # order kept: some servers read it
    "https://site.example/search?q=a+b&lang=uk",
    "https://site.example/list?ad_id=9&ref=home",
    "https://site.example/app/#!/story/42",
    "https://site.example/path;jsessionid=abc",
    "https://site.example/a%2Fb",
]


@pytest.mark.parametrize(("url", "expected"), SAME)
def test_tracking_and_spelling_differences_are_removed(url: str, expected: str) -> None:
    assert canonicalize(url) == expected


@pytest.mark.parametrize("url", KEPT)
def test_what_names_a_page_is_kept(url: str) -> None:
    assert canonicalize(url) == url


def test_distinct_pages_keep_distinct_ids() -> None:
    distinct = [
        "http://oldcms.example/news.php?1001",
        "http://oldcms.example/news.php?1002",
        "http://oldcms.example/news.php",
        "http://blog.example/index.php?post/2025/03/19/a",
        "http://blog.example/index.php?post/2025/03/19/b",
        "https://site.example/view?id=5&page=2",
        "https://site.example/view?id=5&page=3",
    ]
    assert len({item_id(canonicalize(u)) for u in distinct}) == len(distinct)


def test_canonical_form_is_stable() -> None:
    for url, _ in SAME:
        once = canonicalize(url)
        assert canonicalize(once) == once
