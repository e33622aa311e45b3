"""Cleaning: golden files (page -> expected extraction) the project wrote itself, and bad pages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trafilatura

from ingest import clean
from ingest.errors import PermanentError
from ingest.urls import choose_canonical

FIXTURES = Path(__file__).parent / "fixtures" / "clean"
PAGE_URL = "https://example.org/page"


def extracted(name: str) -> dict[str, object]:
    ext = clean.extract((FIXTURES / name).read_bytes(), PAGE_URL)
    return {
        "title": ext.title,
        "author": ext.author,
        "published_at": ext.published_at.isoformat() if ext.published_at else None,
        "language": ext.language,
        "canonical_url": choose_canonical(PAGE_URL, ext.canonical_url),
        "text": ext.text,
    }


@pytest.mark.parametrize(
    "name", sorted(p.name for p in FIXTURES.glob("*.html") if (FIXTURES / (p.name + ".json")).exists())
)
def test_golden(name: str) -> None:
    expected = json.loads((FIXTURES / (name + ".json")).read_text(encoding="utf-8"))
    assert extracted(name) == expected


def test_boilerplate_is_not_in_the_text() -> None:
    text = extracted("article_en.html")["text"]
    assert isinstance(text, str)
    for noise in ("cookies", "Most read", "Subscribe", "All rights reserved", "Weather"):
        assert noise not in text


def test_page_without_article_is_empty_extraction() -> None:
    with pytest.raises(PermanentError) as err:
        clean.extract((FIXTURES / "no_article.html").read_bytes(), PAGE_URL)
    assert err.value.reason == "empty_extraction"


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00\x01\x02\xff\xfe binary", b"<html><body><p>unclosed <b>tags <i>everywhere", b"<" * 5000],
)
def test_broken_html_is_a_permanent_error_not_a_crash(body: bytes) -> None:
    with pytest.raises(PermanentError) as err:
        clean.extract(body, PAGE_URL)
    assert err.value.reason in ("empty_extraction", "broken_html")


def test_declared_charset_wins_over_utf8_guess() -> None:
    body = "<html><body><article><p>" + "Café déjà vu à Genève, naïve façade. " * 10 + "</p></article></body></html>"
    ext = clean.extract(body.encode("cp1252"), PAGE_URL, charset="windows-1252")
    assert "Café déjà vu à Genève" in ext.text


def test_language_is_detected_when_the_page_does_not_say() -> None:
    assert extracted("latin1_fr_no_lang.html")["language"] == "fr"
    assert clean.detect_language("short") is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2025-03-18T09:15:00+0100", "2025-03-18T09:15:00+01:00"),
        ("2025-03-18T00:00:00", "2025-03-18T00:00:00+00:00"),
        ("2025-03-18", "2025-03-18T00:00:00+00:00"),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_date(value: str | None, expected: str | None) -> None:
    parsed = clean.parse_date(value)
    assert (parsed.isoformat() if parsed else None) == expected


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.html")))
def test_extraction_equals_trafilaturas_own(name: str, fast: bool) -> None:
    # clean asks trafilatura only for the metadata an item uses: what it reads must stay what
    # trafilatura.bare_extraction gives with every metadata field
    html = clean.decode((FIXTURES / name).read_bytes(), None)
    full = trafilatura.bare_extraction(
        html,
        url=PAGE_URL,
        fast=fast,
        with_metadata=True,
        deduplicate=False,
        include_comments=False,
        date_extraction_params=clean._DATE_PARAMS,
    )
    ours = clean._bare_extraction(html, PAGE_URL, fast)
    assert (full is None) == (ours is None)
    if full is not None and ours is not None:
        fields = ("title", "author", "url", "hostname", "date", "text")
        assert {f: getattr(ours, f) for f in fields} == {f: getattr(full, f) for f in fields}
        assert ours.text and ours.categories is None and ours.license is None


def test_warm_up_loads_what_extraction_loads_on_first_use() -> None:
    # pool children fork from a warmed parent: a page on an IP host must not pay for the suffix list
    code = (
        "import tld.utils\n"
        "from ingest import pipeline, xpath_native\n"
        "assert not tld.utils.tld_names\n"
        "pipeline.warm_up()\n"
        "print(bool(tld.utils.tld_names), len(xpath_native.REPLACED) > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
