"""Cleaning: trafilatura turns a page into article text, title, author, date, language, canonical URL."""

from __future__ import annotations

import codecs
import logging
import re
from datetime import UTC, datetime

import py3langid
import trafilatura
from trafilatura.settings import Document

from ingest.errors import PermanentError
from ingest.models import Extracted

log = logging.getLogger(__name__)

MIN_WORDS = 12  # fewer words than a sentence or two: navigation, a paywall stub or an error page

# Date with time when the page gives one; htmldate's extensive search is off because it
# guesses from any date-like string in the page (sidebars, copyright lines) and a wrong date
# is worse than none: the storyline tagger reads it.
_DATE_PARAMS = {"extensive_search": False, "original_date": True, "outputformat": "%Y-%m-%dT%H:%M:%S%z"}

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


def extract(body: bytes, url: str, charset: str | None = None, *, fast: bool = True) -> Extracted:
    """Extract the article; PermanentError('empty_extraction') when the page holds none."""
    try:
        doc = trafilatura.bare_extraction(
            decode(body, charset),
            url=url,
            fast=fast,
            with_metadata=True,
            deduplicate=False,  # trafilatura's dedup is a per-process LRU; ours is shared in Redis
            include_comments=False,
            date_extraction_params=_DATE_PARAMS,
        )
    except (ValueError, TypeError, AttributeError, LookupError) as exc:
        # trafilatura raises on some malformed documents instead of returning None
        raise PermanentError("broken_html", f"{type(exc).__name__}: {exc}") from None
    text = (doc.text or "").strip() if isinstance(doc, Document) else ""
    if not isinstance(doc, Document) or len(_WORD.findall(text)) < MIN_WORDS:
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
