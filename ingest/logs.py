"""Log lines: a message in words, then a fixed set of snake_case keys, so logs can be grepped and parsed."""

from __future__ import annotations

import logging

# The keys every module passes in `extra=`; a formatter prints them as key=value after the message.
KEYS = (
    "feed_url",
    "article_url",
    "item_id",
    "storyline",
    "outcome",
    "reason",
    "detail",
    "host",
    "wait",
    "countdown",
    "attempt",
    "location",
    "bytes",
)


class KeyValueFormatter(logging.Formatter):
    """Appends ` key=value` for each of KEYS a record carries."""

    def format(self, record: logging.LogRecord) -> str:
        """The standard line, then the keys."""
        line = super().format(record)
        pairs = [f"{k}={getattr(record, k)}" for k in KEYS if getattr(record, k, None) not in (None, "")]
        if not pairs:
            return line
        head, sep, rest = line.partition("\n")  # keep a traceback below the keys
        return f"{head} {' '.join(pairs)}{sep}{rest}"


def setup(level: int = logging.INFO) -> None:
    """Log to stderr with the keys; called once by each long-running command."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
