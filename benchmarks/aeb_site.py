"""A local news site for benchmarks: the pages of the article-extraction benchmark under as many URLs as asked.

The pages are read at run time from the folder given (../shared/data/aeb by default); nothing is
copied into the repository. With --articles N the site serves N article URLs spread over --feeds RSS
feeds; URL i serves page i mod 181 with the letters of its text (not its markup, scripts, entities
or meta data) put through a substitution that differs for every URL, and without its canonical-URL
tags. Every URL is then a distinct article of the same size and structure as the page it came from:
extraction does the same work on it, and dedup finds no duplicate, so a run of 10,000 URLs costs
what 10,000 different articles would. Without --articles it serves the pages unchanged, once each,
as evalbench does.

    python benchmarks/aeb_site.py [--aeb DIR] [--articles N] [--feeds F] [--port P]

prints the site's base URL, then `feed URL` lines, and serves until killed.
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import string
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_AEB = ROOT.parent / "shared" / "data" / "aeb"

# Markup, scripts, styles, comments and entities are kept as they are; only the text between them changes.
_KEEP = re.compile(r"(<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->|<[^>]*>|&#?\w+;)", re.S | re.I)
# Tags naming the page's own URL: without them every copy is its own canonical URL.
_CANONICAL = re.compile(r"<link\b[^>]*\bcanonical\b[^>]*>|<meta\b[^>]*(?:og|twitter):url\b[^>]*>", re.I)


def load_pages(aeb: Path) -> list[tuple[str, bytes]]:
    """(key, html) of every page of the benchmark, sorted by key."""
    pages = sorted((aeb / "html").glob("*.html.gz"))
    if not pages:
        sys.exit(f"aeb_site: no html/*.html.gz under {aeb}")
    return [(p.name.split(".")[0], gzip.decompress(p.read_bytes())) for p in pages]


class Page:
    """A page split once into the text it changes and the parts it keeps."""

    def __init__(self, html: bytes) -> None:
        text = html.decode("utf-8", "replace")
        parts = _KEEP.split(text)
        # even indexes: text between markup; odd: markup kept (canonical tags dropped)
        self.parts = [("" if _CANONICAL.fullmatch(p) else p) if i % 2 else p for i, p in enumerate(parts)]

    def copy(self, n: int) -> bytes:
        """This page's text with the letters substituted in a way that is different for every n."""
        rng = random.Random(n)
        lower = list(string.ascii_lowercase)
        rng.shuffle(lower)
        table = str.maketrans(string.ascii_lowercase + string.ascii_uppercase, "".join(lower) + "".join(lower).upper())
        return "".join(p if i % 2 else p.translate(table) for i, p in enumerate(self.parts)).encode("utf-8")


def rss(title: str, links: list[str]) -> bytes:
    """An RSS 2.0 feed listing links."""
    items = "".join(
        f"<item><title>Article {i}</title><link>{u}</link><guid>{u}</guid></item>" for i, u in enumerate(links)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://127.0.0.1/</link><description>benchmark</description>{items}</channel></rss>"
    ).encode()


class Site:
    """What the server answers: /a/<i>.html articles and /feeds/<k>.xml feeds."""

    def __init__(self, aeb: Path, articles: int | None, feeds: int, base: str) -> None:
        loaded = load_pages(aeb)
        self.raw = [html for _key, html in loaded]
        self.copies = articles is not None
        self.pages = [Page(html) for html in self.raw] if self.copies else []
        total = articles if articles is not None else len(loaded)
        self.keys = [str(i) if self.copies else loaded[i][0] for i in range(total)]
        self.feeds: dict[str, bytes] = {}
        for k in range(feeds):
            links = [f"{base}/a/{key}.html" for key in self.keys[k::feeds]]
            self.feeds[f"/feeds/{k}.xml"] = rss(f"Benchmark feed {k}", links)
        self.by_key = {key: i for i, key in enumerate(self.keys)}

    def get(self, path: str) -> tuple[bytes, str] | None:
        """Body and content type of a path, or None."""
        if path in self.feeds:
            return self.feeds[path], "application/rss+xml"
        if path.startswith("/a/") and path.endswith(".html"):
            i = self.by_key.get(path[3:-5])
            if i is None:
                return None
            if not self.copies:
                return self.raw[i], "text/html; charset=utf-8"
            return self.pages[i % len(self.pages)].copy(i + 1), "text/html; charset=utf-8"
        if path == "/warm.html":
            para = "<p>Warm-up page for the benchmark run, long enough to be kept by the extraction.</p>"
            return (
                f"<html><head><title>Warm up</title></head><body><article>{para * 20}</article></body></html>".encode(),
                ("text/html"),
            )
        return None


def serve(site_args: argparse.Namespace) -> None:
    """Serve the site on 127.0.0.1 until killed."""
    holder: dict[str, Site] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = holder["site"].get(self.path.split("?")[0])
            if found is None:
                self.send_error(404)
                return
            body, ctype = found
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", site_args.port), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    holder["site"] = Site(site_args.aeb, site_args.articles, site_args.feeds, base)
    print(base, flush=True)
    for path in holder["site"].feeds:
        print(f"feed {base}{path}", flush=True)
    print("ready", flush=True)
    server.serve_forever()


def main() -> None:
    """Parse arguments and serve."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aeb", type=Path, default=DEFAULT_AEB)
    ap.add_argument("--articles", type=int, default=None, help="serve this many distinct article URLs")
    ap.add_argument("--feeds", type=int, default=6)
    ap.add_argument("--port", type=int, default=0)
    serve(ap.parse_args())


if __name__ == "__main__":
    main()
