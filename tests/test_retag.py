"""Re-tagging stored items after a definition changes (real Redis, real definitions)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import redis

from ingest import keys
from ingest.config import Settings
from ingest.models import Item, Job, Source, utcnow
from ingest.publish import Publisher
from ingest.retag import retag
from ingest.storyline import Document, Storyline, load_storyline

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
DEFINITION = ROOT / "seeds" / "storylines" / "energy-ceasefire.toml"


def strict_definition(tmp_path: Path) -> Storyline:
    """The same storyline as an older, stricter version: nothing reaches its threshold."""
    text = DEFINITION.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^threshold = .*$", "threshold = 400.0", text, count=1)
    text = re.sub(r'(?m)^version = ".*"$', 'version = "old-strict"', text, count=1)
    path = tmp_path / "energy-ceasefire.toml"
    path.write_text(text, encoding="utf-8")
    return load_storyline(path)


def publish(r: redis.Redis, settings: Settings, storyline: Storyline, n: int, title: str, text: str) -> str:
    doc = Document(title, text, "en", datetime(2025, 3, 19, tzinfo=UTC))
    item = Item(
        id=f"item{n}",
        url=f"https://a.example/{n}",
        canonical_url=f"https://a.example/{n}",
        title=title,
        text=text,
        language="en",
        author=None,
        published_at=doc.published_at,
        fetched_at=utcnow(),
        source=Source(via="manual"),
        storylines=[storyline.tag(doc)],
    )
    Publisher(r, settings).item(Job(f"j{n}", item.url), item)
    return item.id


def test_retag_publishes_items_that_newly_enter_once(r: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    old = strict_definition(tmp_path)
    energy = json.loads((FIXTURES / "site" / "energy_pause.json").read_text())
    rail = json.loads((FIXTURES / "dedup" / "articles.json").read_text())["rail_strike"]
    on_id = publish(r, settings, old, 1, energy["title"], "\n".join(energy["paragraphs"]))
    publish(r, settings, old, 2, rail["title"], "\n".join(rail["paragraphs"]))
    assert r.xlen(keys.storyline_stream("energy-ceasefire")) == 0

    current = load_storyline(DEFINITION)
    report = retag(r, settings, current)
    assert (report.scanned, report.entered, report.left) == (2, [on_id], [])
    (entry,) = [json.loads(f[b"data"]) for _id, f in r.xrange(keys.storyline_stream("energy-ceasefire"))]
    tag = entry["storylines"][0]
    assert entry["id"] == on_id and tag["on_storyline"] and tag["version"] == current.version
    assert entry["text"].startswith("Russian President")  # the stored article, not a stub

    again = retag(r, settings, current)
    assert again.entered == [] and again.stayed == 1
    assert r.xlen(keys.storyline_stream("energy-ceasefire")) == 1  # never published twice

    back = retag(r, settings, old)  # a stricter definition cannot unpublish; it reports what left
    assert back.left == [] and back.entered == []  # the stored items still carry the old verdict


def test_retag_cli_rejects_unknown_storylines(redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["REDIS_URL"] = redis_url
    cp = subprocess.run(
        [sys.executable, "-m", "ingest", "retag", "--storyline", "no-such-story"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cp.returncode == 2 and "energy-ceasefire" in cp.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "ingest", "retag", "--storyline", "energy-ceasefire", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["scanned"] == 0
