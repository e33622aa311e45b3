"""`ingest storyline eval FILE.jsonl`: precision, recall and F1 per language on a labelled file, and every error
with each rule's share; the project's fixture rows and corpus rows (url, date_hint) are both read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.evaluate import evaluate, read_rows, to_document
from ingest.storyline import Storyline, load_storylines
from tests.test_cli import ingest, one_line_error

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "storyline"

ON = "Putin agrees to 30-day halt on strikes against Ukraine's energy infrastructure after Trump call"
ON_TEXT = (
    "Vladimir Putin told Donald Trump in a phone call that Russia would stop striking Ukraine's energy "
    "facilities for 30 days, the Kremlin said."
)
ROWS = [
    # right: on and off
    {"id": "a-on", "label": "storyline", "lang": "en", "published": "2025-03-18", "title": ON, "text": ON_TEXT},
    {"id": "b-off", "label": "off-topic", "lang": "de", "published": None, "title": "Bibliothek", "text": "Die "
     "Stadtbibliothek öffnet nach der Renovierung ihre Lesesäle wieder, mit längeren Öffnungszeiten."},
    # wrong: a positive published outside the window (FN), a negative whose text is the storyline's (FP)
    {"id": "c-fn", "label": "storyline", "lang": "uk", "published": "2026-01-30", "title": ON, "text": ON_TEXT},
    {"id": "d-fp", "label": "related", "lang": "en", "published": None, "title": ON, "text": ON_TEXT},
]  # fmt: skip


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def energy() -> Storyline:
    return {s.id: s for s in load_storylines(ROOT / "seeds" / "storylines")}["energy-ceasefire"]


def test_scores_per_language_and_explains_every_error(energy: Storyline, tmp_path: Path) -> None:
    ev = evaluate(energy, read_rows(write(tmp_path / "energy-ceasefire.mine.jsonl", ROWS)))
    assert (ev.overall.tp, ev.overall.fp, ev.overall.fn) == (1, 1, 1)
    assert ev.overall.precision == ev.overall.recall == ev.overall.f1 == 0.5
    en, uk = ev.languages["en"], ev.languages["uk"]
    assert (en.tp, en.fp, en.fn, en.f1) == (1, 1, 0, pytest.approx(2 / 3))
    assert (uk.tp, uk.fn, uk.recall) == (0, 1, 0.0)
    assert ev.languages["de"].f1 == 1.0 and ev.recall_non_english == 0.0
    errors = {e.row["id"]: e for e in ev.errors}
    assert set(errors) == {"c-fn", "d-fp"}
    fn_rules = {r.name: r for r in errors["c-fn"].verdict.rules}
    assert fn_rules["(outside window)"].contribution < 0 and fn_rules["energy-strike-pause"].phrase
    assert "outside the window" in errors["c-fn"].verdict.window
    assert "undated" in errors["d-fp"].verdict.window


def test_the_command_prints_the_table_and_the_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "energy-ceasefire.mine.jsonl", ROWS)
    cp = ingest("storyline", "eval", str(path))
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    assert lines[0].startswith("storyline energy-ceasefire (version")
    table = {line.split()[0]: line.split() for line in lines[2:8]}
    assert table["all"][1:6] == ["4", "2", "1", "1", "1"] and table["all"][-1] == "0.500"
    assert table["de"][-3:] == ["-", "-", "1.000"]
    out = cp.stdout
    assert "false positives: 1" in out and "FP d-fp [en, related, undated]" in out
    assert "FN c-fn [uk, storyline, 2026-01-30]" in out and "(outside window)" in out
    assert "energy-strike-pause" in out and "window: published 2026-01-30: outside the window" in out

    as_json = ingest("storyline", "eval", str(path), "--json", "--ignore-dates")
    data = json.loads(as_json.stdout)
    assert data["storyline"] == "energy-ceasefire" and data["undated"] == 4
    assert data["overall"]["fn"] == 0  # undated, c-fn is on: only its date kept it off
    assert {e["id"] for e in data["errors"]} == {"d-fp"}
    rules = data["errors"][0]["verdict"]["rules"]
    assert {"name", "kind", "weight", "contribution", "phrase"} <= set(rules[0])


def test_corpus_rows_are_read_as_served_pages(energy: Storyline, tmp_path: Path) -> None:
    row = {
        "id": "x",
        "url": "https://example.org/world/putin-agrees-energy-halt",
        "label": "storyline",
        "dup_of": None,
        "lang": "en",
        "date_hint": "2025-03-19",
        "text": f"date 2025-03-19\n{ON}\n{ON_TEXT}",
    }
    doc = to_document(row)
    assert doc.title == ON and doc.text == ON_TEXT and doc.published_at is not None
    assert doc.published_at.isoformat() == "2025-03-19T09:00:00+00:00"
    one = {**row, "text": ON_TEXT}  # one paragraph: the title comes from the URL's slug
    assert to_document(one).title == "World putin agrees energy halt"
    path = write(tmp_path / "corpus.jsonl", [row, {**row, "id": "y", "date_hint": None}])
    cp = ingest("storyline", "eval", str(path), "--storyline", "energy-ceasefire")
    assert cp.returncode == 0 and "all" in cp.stdout and "1 undated" in cp.stdout


def test_every_fixture_set_scores_as_the_quality_gate_says() -> None:
    baseline = json.loads((FIXTURES / "baseline.json").read_text(encoding="utf-8"))
    path = FIXTURES / "energy-ceasefire.undated.jsonl"
    data = json.loads(ingest("storyline", "eval", str(path), "--json").stdout)
    assert data["overall"]["f1"] >= baseline["energy-ceasefire.undated"]["f1"]
    assert len(data["languages"]) >= 15


SL = ("--storyline", "energy-ceasefire")


@pytest.mark.parametrize(
    ("content", "args", "problem"),
    [
        ('{"id": 1, "label": "storyline", "text": "x"}\nnot json\n', SL, "bad.jsonl:2: not JSON"),
        ('{"id": 1, "label": "maybe", "text": "x"}\n', SL, "bad.jsonl:1: label 'maybe' is not one of"),
        ('{"id": 1, "label": "related"}\n', SL, "bad.jsonl:1: missing text"),
        ('{"id": 1, "label": "related", "text": "x", "published": "soon"}\n', SL, "published 'soon' is not"),
        ("\n\n", SL, "no labelled rows"),
        ('{"id": 1, "label": "related", "text": "x"}\n', ("--storyline", "nope"), "no storyline 'nope'"),
        ('{"id": 1, "label": "related", "text": "x"}\n', (), "does not name a storyline"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, content: str, args: tuple[str, ...], problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    cp = ingest("storyline", "eval", str(path), *args)
    assert cp.returncode == 2
    assert problem in one_line_error(cp)


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    cp = ingest("storyline", "eval", str(tmp_path / "missing.jsonl"), "--storyline", "energy-ceasefire")
    assert cp.returncode == 2 and "cannot read" in one_line_error(cp)
