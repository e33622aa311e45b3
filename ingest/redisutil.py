"""Small conversions of redis-py replies (bytes or str, depending on the client) to text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def text(value: Any) -> str:
    """A reply value as str ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def texts(values: Iterable[Any]) -> list[str]:
    """A list reply as str values."""
    return [text(v) for v in values]


def text_map(mapping: Mapping[Any, Any]) -> dict[str, str]:
    """A hash reply as a str -> str dict."""
    return {text(k): text(v) for k, v in mapping.items()}
