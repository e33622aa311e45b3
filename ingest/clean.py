"""Cleaning: trafilatura turns a page into article text, title, author, date, language, canonical URL."""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime, time
from typing import Any

import lxml.html
import py3langid
from courlan import extract_domain
from htmldate import find_date
from lxml import etree
from trafilatura.core import trafilatura_sequence
from trafilatura.metadata import examine_meta, extract_author, extract_meta_json, extract_title, extract_url
from trafilatura.settings import Document, Extractor
from trafilatura.utils import decode_file, is_dubious_html, repair_faulty_html
from trafilatura.xml import xmltotxt

from ingest import xpath_native
from ingest.errors import PermanentError
from ingest.models import DateSource, Extracted

log = logging.getLogger(__name__)

xpath_native.install()  # the same elements selected, about a fifth less CPU per page

MIN_WORDS = 12  # fewer words than a sentence or two: navigation, a paywall stub or an error page

# Date with time when the page gives one; htmldate's extensive search is off because it
# guesses from any date-like string in the page (sidebars, copyright lines) and a wrong date
# is worse than none: the storyline tagger reads it.
# The page's metadata is preferred to a date in its URL (deferred_url_extractor): it has the time, and the
# URL date is then known to be the only one when the two differ or the metadata is missing.
_DATE_PARAMS: dict[str, Any] = {
    "extensive_search": False,
    "original_date": True,
    "deferred_url_extractor": True,
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


# lxml.html's parser asks a Python method for the class of every element Python touches (about two
# thousand times per page, a twentieth of the extraction's CPU); lxml's C lookup gives the same classes,
# except that form controls (which trafilatura only deletes) are plain HtmlElements. Its other options
# are trafilatura's own parser's; tests/test_clean.py checks the output is identical.
_PARSER = etree.HTMLParser(
    collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True, remove_pis=True
)
_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(
        element=lxml.html.HtmlElement,
        comment=lxml.html.HtmlComment,
        pi=lxml.html.HtmlProcessingInstruction,
        entity=lxml.html.HtmlEntity,
    )
)


def load_public_suffixes() -> None:
    """Load the public-suffix list now: courlan reads it (~25 ms) for the first host its quick split cannot."""
    extract_domain("http://127.0.0.1/")


def load_html(html: str | bytes, max_size: int | None) -> lxml.html.HtmlElement | None:
    """trafilatura.utils.load_html for a page's text or bytes, parsed by _PARSER."""
    text = decode_file(html, max_size)
    beginning = text[:50].lower()
    dubious = is_dubious_html(beginning)
    text = repair_faulty_html(text, beginning)
    tree: lxml.html.HtmlElement | None = None
    retry_bytes = True
    try:
        tree = lxml.html.fromstring(text, parser=_PARSER)
    except ValueError:  # a str with an encoding declaration: lxml wants bytes
        tree, retry_bytes = _from_bytes(text), False
    except Exception as exc:  # lxml's own errors on hopeless markup, as trafilatura logs them
        log.debug("lxml parsing failed: %s", exc)
    if (tree is None or len(tree) < 1) and retry_bytes:
        tree = _from_bytes(text)
    if tree is not None and dubious and len(tree) < 2:
        return None  # not HTML at all: a single block of something else
    return tree


def _from_bytes(text: str) -> lxml.html.HtmlElement | None:
    try:
        return lxml.html.fromstring(text.encode("utf8", "surrogatepass"), parser=_PARSER)
    except Exception as exc:  # as trafilatura.utils.fromstring_bytes
        log.debug("lxml parser bytestring %s", exc)
    return None


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


def url_date(url: str) -> datetime | None:
    """The date a URL's path carries (/2025/03/18/, 2025-03-18-...), read by htmldate; None without one."""
    # htmldate reads the URL before the page; an empty page leaves the URL as its only source.
    found = find_date(_EMPTY_PAGE, url=url, extensive_search=False, original_date=True, outputformat="%Y-%m-%d")
    return parse_date(found) if isinstance(found, str) else None


_EMPTY_PAGE = "<html><body></body></html>"


def publication_date(
    page: datetime | None, feed: str | None, urls: Iterable[str | None], page_from_url: bool = False
) -> tuple[datetime | None, DateSource | None]:
    """The article's publication date and where it came from: the page, else the feed entry, else a URL.

    A feed nearly always dates its entries when the page does not; the tagger's publication window needs
    a date, and one from the feed is the publisher's own (with its time). A date only in the page's URL
    (`page_from_url`) comes after the feed's, like a date in any other URL of the article.
    """
    if page is not None and not page_from_url:
        return page, "page"
    if feed:
        try:
            parsed = datetime.fromisoformat(feed)
        except ValueError:
            parsed = None
        if parsed is not None:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), "feed"
    if page is not None:
        return page, "url"
    for url in dict.fromkeys(u for u in urls if u):
        found = url_date(url)
        if found is not None:
            return found, "url"
    return None, None


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
    published = parse_date(doc.date)
    return Extracted(
        title=(doc.title or "").strip() or None,
        text=text,
        author=(doc.author or "").strip() or None,
        published_at=published,
        language=language,
        canonical_url=doc.url or None,
        hostname=doc.hostname or None,
        date_in_url=published is not None and _only_in_url(published, doc.url or url),
    )


def _only_in_url(published: datetime, url: str) -> bool:
    """Whether htmldate's date is the one in the URL (a day at midnight): the page's metadata had none."""
    if published.time() != time(0) or not (found := url_date(url)):
        return False
    return found.date() == published.date()
