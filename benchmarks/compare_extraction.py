"""The project's extraction call against trafilatura's own bare_extraction: same fields, less CPU.

For every page of the article-extraction benchmark (read at run time from ../shared/data/aeb) and
every page of tests/fixtures/clean, in fast and full mode, compares what an item reads (title,
author, canonical URL, host, date, text) from ingest.clean's call, with its rewritten XPath
expressions (ingest/xpath_native.py), with what trafilatura.bare_extraction(with_metadata=True) gives
with trafilatura's own expressions; then times both on the benchmark pages, and the project's call
with trafilatura's own expressions too.

    python benchmarks/compare_extraction.py [--aeb DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from benchmarks.aeb_site import DEFAULT_AEB  # noqa: E402
from ingest import clean, xpath_native  # noqa: E402

FIELDS = ("title", "author", "url", "hostname", "date", "text")


def theirs(html: str | bytes, url: str, fast: bool) -> Any:
    """trafilatura's own call, with every metadata field, as the project made it before."""
    return trafilatura.bare_extraction(
        html,
        url=url,
        fast=fast,
        with_metadata=True,
        deduplicate=False,
        include_comments=False,
        date_extraction_params=clean._DATE_PARAMS,
    )


def use_stock_xpaths(stock: bool) -> None:
    """Put trafilatura's own expressions back where install() put others (True), or the others (False)."""
    pairs = xpath_native.REPLACED
    swap = {id(new): old for old, new in pairs} if stock else {id(old): new for old, new in pairs}
    xpath_native.replace_expressions(lambda e: swap.get(id(e), e))


def main() -> None:
    """Compare, then time."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aeb", type=Path, default=DEFAULT_AEB)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    aeb = [gzip.decompress(p.read_bytes()) for p in sorted((args.aeb / "html").glob("*.html.gz"))]
    fixtures = [p.read_bytes() for p in sorted((ROOT / "tests" / "fixtures" / "clean").glob("*.html"))]
    pages = [clean.decode(body, None) for body in aeb + fixtures]
    differ = 0
    for fast in (True, False):
        for n, html in enumerate(pages):
            url = f"http://127.0.0.1/a/{n}.html"
            use_stock_xpaths(True)
            a = theirs(html, url, fast)
            use_stock_xpaths(False)
            b = clean._bare_extraction(html, url, fast)
            if (a is None) != (b is None) or (
                a is not None and b is not None and any(getattr(a, f) != getattr(b, f) for f in FIELDS)
            ):
                differ += 1
                print(f"differs: page {n}, fast={fast}")
    print(f"{len(aeb)} benchmark pages + {len(fixtures)} fixture pages, fast and full mode: {differ} differ")
    timed = pages[: len(aeb)]
    calls = (
        ("bare_extraction(with_metadata=True)", theirs, True),
        ("ingest.clean, trafilatura's XPath expressions", clean._bare_extraction, True),
        ("ingest.clean", clean._bare_extraction, False),
    )
    for _ in range(args.rounds):
        for name, call, stock in calls:
            use_stock_xpaths(stock)
            t0 = time.process_time()
            for n, html in enumerate(timed):
                call(html, f"http://127.0.0.1/a/{n}.html", True)
            print(f"{name}: {(time.process_time() - t0) * 1000 / len(timed):.2f} ms CPU per page (fast mode)")


if __name__ == "__main__":
    main()
