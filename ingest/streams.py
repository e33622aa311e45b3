"""Stream names as people type them (articles, duplicates, deadletter, storyline:ID), checked before use.

A misspelled storyline must not read an empty stream with success, nor create one: names are
checked against the storylines defined (and those that have published before, in case a
definition was removed since).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import redis

from ingest import keys
from ingest.redisutil import texts

FIXED = ("articles", "duplicates", "deadletter")


def storyline_ids(client: redis.Redis, storylines_dir: Path) -> list[str]:
    """Ids of the storylines defined in the folder, and of any that published items before."""
    ids = set(texts(client.hkeys(keys.STATS_STORYLINE)))
    for path in storylines_dir.glob("*.toml"):
        try:
            sid = tomllib.loads(path.read_text(encoding="utf-8")).get("id")
        except (OSError, ValueError):
            continue  # a broken definition is reported where definitions are loaded
        if isinstance(sid, str):
            ids.add(sid)
    return sorted(ids)


def resolve(client: redis.Redis, storylines_dir: Path, name: str) -> str:
    """The key of a stream name; ValueError naming the known streams when there is no such stream."""
    if name in FIXED:
        return keys.stream_for(name)
    ids = storyline_ids(client, storylines_dir)
    if name.startswith("storyline:") and name[len("storyline:") :] in ids:
        return keys.stream_for(name)
    known = [*FIXED, *(f"storyline:{i}" for i in ids)]
    raise ValueError(f"unknown stream {name!r}; known streams: {', '.join(known)}")
