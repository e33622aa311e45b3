"""Cleaning: trafilatura turns a page into article text, title, author, date, language, canonical URL."""

from __future__ import annotations

import codecs
import logging
import re
from datetime import UTC, datetime
from typing import Any

import py3langid
from courlan import extract_domain
from htmldate import find_date
from trafilatura.core import trafilatura_sequence
from trafilatura.metadata import examine_meta, extract_author, extract_meta_json, extract_title, extract_url
from trafilatura.settings import Document, Extractor
from trafilatura.utils import load_html
from trafilatura.xml import xmltotxt

from ingest.errors import PermanentError
from ingest.models import Extracted

log = logging.getLogger(__name__)

MIN_WORDS = 12  # fewer words than a sentence or two: navigation, a paywall stub or an error page

# Date with time when the page gives one; htmldate's extensive search is off because it
# guesses from any date-like string in the page (sidebars, copyright lines) and a wrong date
# is worse than none: the storyline tagger reads it.
_DATE_PARAMS: dict[str, Any] = {
    "extensive_search": False,
    "original_date": True,
    "outputformat": "%Y-%m-%dT%H:%M:%S%z",
}

_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)?", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_\-]+)", re.I)
_WORD = re.compile(r"\w+")


def decode(body: bytes, charset: str | None) -> str | bytes:
    """Text of the page by its declared charset (header, then meta), else bytes for trafilatura to sniff."""
    for name in (charset, _meta_charset(body), "utf-8"):
        if not name:
            continue
        try:
            codecs.lookup(name)
            return body.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return body


def _meta_charset(body: bytes) -> str | None:
    m = _META_CHARSET.search(body[:4096])
    return m.group(1).decode("ascii") if m else None


def page_language(body: bytes) -> str | None:
    """The language the page declares on <html lang=...>, as an ISO 639 code."""
    m = _HTML_LANG.search(body[:8192])
    return m.group(1).decode("ascii").lower() if m else None


def detect_language(text: str) -> str | None:
    """Language of a text by py3langid (an identifier trained on 97 languages), or None if too short."""
    if len(text) < 40:
        return None
    lang, _score = py3langid.classify(text[:3000])
    return str(lang)


def parse_date(value: str | None) -> datetime | None:
    """Timezone-aware datetime from htmldate's output; a date without zone is taken as UTC."""
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _metadata(tree: Any, url: str) -> Document:
    """The metadata fields an item uses (title, author, canonical URL, host, date), as trafilatura finds them.

    The steps of trafilatura.metadata.extract_metadata for those fields, in its order, without the
    site name, categories, tags and licence it also looks for: no item carries them, and the XPath
    searches behind them cost about a tenth of the extraction (docs/benchmarks.md).
    """
    meta = examine_meta(tree)
    if meta.author and " " not in meta.author:
        meta.author = None
    try:
        meta = extract_meta_json(tree, meta)
    except Exception as exc:  # trafilatura guards this call the same way: its JSON-LD reader has bugs
        log.debug("JSON-LD metadata skipped: %s", exc)
    if not meta.title:
        meta.title = extract_title(tree)
    if not meta.author:
        meta.author = extract_author(tree)
    if not meta.url:
        meta.url = extract_url(tree, url)
    if meta.url:
        meta.hostname = extract_domain(meta.url, fast=True)
    meta.date = find_date(tree, url=meta.url, **_DATE_PARAMS)
    meta.clean_and_trim()
    return meta


def _bare_extraction(html: str | bytes, url: str, fast: bool) -> Document | None:
    """trafilatura.bare_extraction(with_metadata=True, include_comments=False) with only the metadata used.

    Its steps for the options this project passes, so text and the fields read are identical
    (tests/test_clean.py compares the two on every fixture page).
    """
    options = Extractor(output_format="python", fast=fast, comments=False, url=url, with_metadata=True)
    tree = load_html(html, options.max_file_size)
    if tree is None:
        return None
    doc = _metadata(tree, url)
    body, text, _comments, comments_text = trafilatura_sequence(tree, options, url)
    if len(text) < options.min_output_size and len(comments_text) < options.min_output_comm_size:
        return None
    doc.text = xmltotxt(body, options.formatting)
    return doc


def extract(body: bytes, url: str, charset: str | None = None, *, fast: bool = True) -> Extracted:
    """Extract the article; PermanentError('empty_extraction') when the page holds none."""
    try:
        doc = _bare_extraction(decode(body, charset), url, fast)
    except (ValueError, TypeError, AttributeError, LookupError) as exc:
        # trafilatura raises on some malformed documents instead of returning None
        raise PermanentError("broken_html", f"{type(exc).__name__}: {exc}") from None
    text = (doc.text or "").strip() if doc is not None else ""
    if doc is None or len(_WORD.findall(text)) < MIN_WORDS:
        raise PermanentError("empty_extraction", f"no article text found ({len(text)} characters)")
    language = page_language(body) or detect_language(text)
    return Extracted(
        title=(doc.title or "").strip() or None,
        text=text,
        author=(doc.author or "").strip() or None,
        published_at=parse_date(doc.date),
        language=language,
        canonical_url=doc.url or None,
        hostname=doc.hostname or None,
    )
