"""OPML 2.0 (http://opml.org/spec2.opml): the feed lists every reader imports and exports."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formatdate
from xml.etree import ElementTree

from ingest.errors import InvalidURL
from ingest.urls import validate_url


class OPMLError(ValueError):
    """The document is not a readable OPML file, or names feeds that cannot be polled."""


@dataclass(frozen=True)
class Outline:
    """One feed of an OPML file."""

    url: str
    title: str | None


def read(data: bytes, name: str = "OPML file") -> list[Outline]:
    """Every feed (outline with xmlUrl, in folders too) of an OPML document; OPMLError names what is wrong."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise OPMLError(f"{name} is not well-formed XML: {exc}") from None
    if root.tag.rpartition("}")[2].lower() != "opml":
        raise OPMLError(f"{name} is not OPML (its root element is <{root.tag}>)")
    outlines, bad, seen = [], [], set()
    for el in root.iter():
        if el.tag.rpartition("}")[2].lower() != "outline":
            continue
        attrs = {k.lower(): v for k, v in el.attrib.items()}
        raw = attrs.get("xmlurl", "").strip()
        if not raw:
            continue  # a folder, or a plain link outline
        try:
            url = validate_url(raw)
        except InvalidURL as exc:
            bad.append(exc.detail)
            continue
        if url not in seen:
            seen.add(url)
            outlines.append(Outline(url, (attrs.get("title") or attrs.get("text") or "").strip() or None))
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise OPMLError(f"{name}: {len(bad)} feed URL(s) cannot be polled, nothing imported: {bad[0]}{more}")
    return outlines


def write(feeds: list[Outline], title: str = "storyline-ingest feeds") -> str:
    """An OPML 2.0 document listing the feeds."""
    opml = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(opml, "head")
    ElementTree.SubElement(head, "title").text = title
    ElementTree.SubElement(head, "dateCreated").text = formatdate(usegmt=True)
    body = ElementTree.SubElement(opml, "body")
    for feed in feeds:
        text = feed.title or feed.url
        ElementTree.SubElement(body, "outline", type="rss", text=text, title=text, xmlUrl=feed.url)
    ElementTree.indent(opml)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(opml, encoding="unicode") + "\n"
