"""Judge a feed document by its bytes, not its label: gzip, JSON, XML (and which XML), or an HTML page.

Servers label feeds application/octet-stream, text/plain or text/html as often as correctly, and
readers (miniflux, NewsBlur) parse them all; the media type only helps to choose the charset.
"""

from __future__ import annotations

import re
import zlib

from ingest.errors import PermanentError

GZIP_MAGIC = b"\x1f\x8b"
BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32le"),
    (b"\x00\x00\xfe\xff", "utf-32be"),
    (b"\xff\xfe", "utf-16le"),
    (b"\xfe\xff", "utf-16be"),
)
# The first element name after the prolog (XML declaration, comments, PIs, doctype).
_ROOT = re.compile(rb"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>\s*)*", re.S | re.I)
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._\-]+)["']""")
# Charsets servers send by default (Apache's AddDefaultCharset, old Tomcat) whatever the file holds.
_DEFAULT_CHARSETS = frozenset({"iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii", "windows-1252"})
FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
SITEMAP_ROOTS = frozenset({"urlset", "sitemapindex"})


def bom_charset(body: bytes) -> str | None:
    """The encoding a byte-order mark announces, or None."""
    for bom, name in BOMS:
        if body.startswith(bom):
            return name
    return None


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body (all members, RFC 1952), refusing more than `limit` bytes out."""
    out = bytearray()
    data = body
    while data.startswith(GZIP_MAGIC):
        d = zlib.decompressobj(wbits=31)
        try:
            out += d.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise PermanentError("malformed_feed", f"bad gzip data: {exc}") from None
        if len(out) > limit:
            raise PermanentError("too_large", f"gzip body inflates past {limit} bytes")
        if not d.eof:
            if d.unconsumed_tail:
                raise PermanentError("too_large", f"gzip body inflates past {limit} bytes")
            break  # truncated: keep what was inflated
        data = d.unused_data.lstrip(b"\x00")
    return bytes(out)


def _text_head(body: bytes) -> bytes:
    """The first bytes of the document as ASCII-compatible bytes (UTF-16/32 documents transcoded)."""
    head = body[:4096]
    charset = bom_charset(head)
    if charset and charset != "utf-8":
        return head.decode(charset, "ignore").encode("utf-8", "ignore")
    if head[:4] in (b"<\x00?\x00", b"\x00<\x00?"):  # UTF-16 without a BOM
        return head.decode("utf-16le" if head[0] else "utf-16be", "ignore").encode("utf-8", "ignore")
    return head.removeprefix(b"\xef\xbb\xbf")


def kind_of(body: bytes) -> str:
    """json, feed, sitemap, urlset/sitemapindex root name, html, opml, xml (other root) or unknown."""
    head = _text_head(body).lstrip()
    if head.startswith(b"{"):
        return "json"
    lower = head[:1024].lower()
    if lower.startswith((b"<!doctype html", b"<html")):
        return "html"
    m = _PROLOG.match(head)
    rest = head[m.end() :] if m else head
    root = _ROOT.match(rest)
    if not root:
        return "unknown"
    name = root.group(2).decode("ascii").lower()
    if name in FEED_ROOTS:
        return "feed"
    if name in SITEMAP_ROOTS:
        return name
    if name in ("html", "head", "body"):
        return "html"
    if name == "opml":
        return "opml"
    return "xml"


def feedparser_content_type(body: bytes, content_type: str) -> str:
    """The Content-Type to hand feedparser so that it decodes the bytes as a browser would.

    A byte-order mark wins over everything (XML 1.0 appendix F); then the HTTP charset (RFC 7303),
    except a server-default Latin-1 against a UTF-8 declaration the bytes bear out; then the XML
    declaration. Whatever the label, a document that sniffs as XML is handed over as XML, so that
    feedparser neither flags nor mis-decodes an octet-stream or text/html feed.
    """
    charset = bom_charset(body)
    if charset is None:
        charset = _http_charset(content_type)
        declared = _declared(body)
        if charset in _DEFAULT_CHARSETS and declared in ("utf-8", "utf8") and _is_utf8(body):
            charset = "utf-8"
    return f"application/xml; charset={charset}" if charset else "application/xml"


def _http_charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip("\"'"):
            return value.strip().strip("\"'").lower()
    return None


def _declared(body: bytes) -> str | None:
    m = _XML_ENCODING.match(body[:200].lstrip())
    return m.group(1).decode("ascii").lower() if m else None


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
