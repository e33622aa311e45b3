"""Log lines: a message in words, then a fixed set of snake_case keys, so logs can be grepped and parsed."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

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


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the keys, and a traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update({k: getattr(record, k) for k in KEYS if getattr(record, k, None) not in (None, "")})
        if record.exc_info:
            doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


# Loggers that speak once per scheduler tick or per task even when nothing happens; they are heard
# at DEBUG only, so an idle service stays quiet and a busy one logs outcomes (ingest.pipeline) once.
CHATTY = (
    "celery.beat",  # "Scheduler: Sending due task ..." every beat interval
    "celery.worker.strategy",  # "Task ... received"
    "celery.app.trace",  # "Task ... succeeded in ..."
    "uvicorn.access",  # one line per HTTP request
    "httpx",  # one line per request
)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def formatter(fmt: str = "text") -> logging.Formatter:
    """The formatter of the service's log lines: `text` (key=value) or `json`."""
    return JsonFormatter() if fmt == "json" else KeyValueFormatter(TEXT_FORMAT)


def setup(level: str | int = logging.INFO, fmt: str = "text") -> None:
    """Log to stderr in one format (INGEST_LOG_FORMAT) at one level (INGEST_LOG_LEVEL), Celery's loggers included."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # library warnings in the same format, not as bare stderr text
    quiet = logging.DEBUG if root.level <= logging.DEBUG else max(root.level, logging.WARNING)
    for name in CHATTY:
        logging.getLogger(name).setLevel(quiet)
    for name in ("celery", "kombu", "uvicorn", "uvicorn.error", "uvicorn.access", "amqp"):
        # their own handlers would print a second format; everything goes through the root's
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
