"""Exact feedback on mistakes: settings named as written, unknown names refused, every option explained."""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
from pathlib import Path

import pytest

from ingest import logs
from ingest.cli import build_parser
from ingest.config import known_variables
from tests.test_cli import ROOT, ingest, one_line_error


def test_a_bad_value_names_the_variable(redis_url: str) -> None:
    cp = ingest("stats", env={"REDIS_URL": redis_url, "INGEST_HOST_DELAY": "soon"})
    assert cp.returncode == 2 and "INGEST_HOST_DELAY" in one_line_error(cp)


def test_a_bad_value_in_the_file_names_the_key_and_the_file(redis_url: str, tmp_path: Path) -> None:
    cfg = tmp_path / "ingest.toml"
    cfg.write_text("host_delay = -3\n")
    cp = ingest("stats", env={"REDIS_URL": redis_url, "INGEST_CONFIG": str(cfg)})
    line = one_line_error(cp)
    assert cp.returncode == 2 and "host_delay in " in line and str(cfg) in line


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("INGEST_HOST_DELAI", "INGEST_HOST_DELAY"), ("INGEST_LOGLEVEL", "INGEST_LOG_LEVEL"), ("INGEST_ZZZ", None)],
)
def test_unknown_variables_are_refused_with_the_closest_name(redis_url: str, name: str, suggestion: str | None) -> None:
    cp = ingest("stats", env={"REDIS_URL": redis_url, name: "1"})
    line = one_line_error(cp)
    assert cp.returncode == 2 and name in line
    assert (f"did you mean {suggestion}" in line) if suggestion else "did you mean" not in line


def test_unknown_toml_keys_are_refused_with_the_closest_name(redis_url: str, tmp_path: Path) -> None:
    cfg = tmp_path / "ingest.toml"
    cfg.write_text("feed_intervall = 60\n")
    cp = ingest("stats", env={"REDIS_URL": redis_url, "INGEST_CONFIG": str(cfg)})
    line = one_line_error(cp)
    assert cp.returncode == 2 and "feed_intervall" in line and "did you mean feed_interval" in line


def test_every_variable_the_project_sets_or_documents_is_known() -> None:
    # README, docker-compose, the Dockerfile, CI, tests and benchmarks must never trip the unknown-name check.
    files = [ROOT / "README.md", ROOT / "docker-compose.yml", ROOT / "Dockerfile", ROOT / "Makefile"]
    files += [p for d in ("tests", "benchmarks", "docs", ".ci", "ingest", "workers") for p in (ROOT / d).rglob("*.*")]
    used = set()
    for path in files:
        if path.suffix in {".py", ".md", ".yml", ".toml", ".txt", ""} or path.name in {"Dockerfile", "Makefile", "run"}:
            used |= set(re.findall(r"\bINGEST_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace")))
    deliberate = {"INGEST_HOST_DELAI", "INGEST_LOGLEVEL", "INGEST_ZZZ"}  # the typos of this test
    assert used - known_variables() - deliberate == set()


def _options(parser: argparse.ArgumentParser, path: str = "ingest") -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _options(sub, f"{path} {name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found


def test_every_option_has_a_help_text_and_shows_its_default() -> None:
    options = _options(build_parser())
    assert len(options) > 20
    for path, action in options:
        assert action.help, f"{path} {action.option_strings[0]} has no help text"
        if action.default is None and action.nargs != 0 and not action.required:
            assert "default" in action.help, f"{path} {action.option_strings[0]} does not say what unset means"
    out = subprocess.run(
        [*ingest_cmd(), "consume", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    ).stdout
    assert "(default: 60000)" in out and "(default: articles)" in out and "0: forever" in out
    out = subprocess.run([*ingest_cmd(), "poll", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert "(default: 600)" in out


def ingest_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "ingest"]


def test_json_log_lines_carry_the_keys() -> None:
    rec = logging.LogRecord("ingest.pipeline", logging.INFO, __file__, 1, "article done", None, None)
    rec.item_id = "abc"
    doc = json.loads(logs.formatter("json").format(rec))
    assert doc["message"] == "article done" and doc["item_id"] == "abc" and doc["level"] == "INFO"


def test_log_level_and_format_are_settings(redis_url: str) -> None:
    cp = ingest("stats", env={"REDIS_URL": redis_url, "INGEST_LOG_FORMAT": "xml"})
    assert cp.returncode == 2 and "INGEST_LOG_FORMAT" in one_line_error(cp)
    cp = ingest("stats", env={"REDIS_URL": redis_url, "INGEST_LOG_LEVEL": "debug"})
    assert cp.returncode == 0, cp.stderr
