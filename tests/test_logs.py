"""Log lines carry the fixed keys after the message."""

from __future__ import annotations

import logging

from ingest.logs import KeyValueFormatter


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("ingest.test", logging.INFO, __file__, 1, msg, None, None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_keys_follow_the_message_in_a_fixed_order() -> None:
    fmt = KeyValueFormatter("%(levelname)s %(message)s")
    line = fmt.format(record("article done", reason="http_404", article_url="https://a.example/x", other="no"))
    assert line == "INFO article done article_url=https://a.example/x reason=http_404"


def test_a_line_without_keys_is_unchanged() -> None:
    assert KeyValueFormatter("%(message)s").format(record("hello")) == "hello"


def test_keys_stay_on_the_first_line_above_a_traceback() -> None:
    fmt = KeyValueFormatter("%(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("article failed", reason="internal_error")
        rec.exc_info = sys.exc_info()
    first, *rest = fmt.format(rec).splitlines()
    assert first == "article failed reason=internal_error" and rest[0].startswith("Traceback")
