"""Data that crosses stage boundaries, and the published item schema (schema 1, DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Via = Literal["feed", "manual"]
# Where published_at came from: the page's own metadata, the feed entry that linked it, a date in its URL.
DateSource = Literal["page", "feed", "url"]
DuplicateMethod = Literal["url", "content", "near", "revision"]


def utcnow() -> datetime:
    """Timezone-aware now, so every timestamp we publish carries its offset."""
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 with offset, or None."""
    return ts.isoformat() if ts is not None else None


# ---- what flows between stages (plain, immutable) ----


@dataclass(frozen=True)
class Job:
    """One URL to process, as the queue carries it (never HTML)."""

    job_id: str
    url: str
    via: Via = "manual"
    feed_url: str | None = None
    run_id: str | None = None
    published: str | None = None  # ISO 8601: the feed entry's date, for a page that carries none


@dataclass(frozen=True)
class Fetched:
    """A successful HTTP response for an article page."""

    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes
    charset: str | None = None


@dataclass(frozen=True)
class Extracted:
    """The article trafilatura found in a page."""

    title: str | None
    text: str
    author: str | None
    published_at: datetime | None
    language: str | None
    canonical_url: str | None
    hostname: str | None = None
    date_in_url: bool = False  # published_at is only what the page's URL says (/2025/03/18/), no metadata


# ---- what is published (pydantic: validated, serialised the same way everywhere) ----


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Model):
    """How the URL entered the pipeline."""

    via: Via
    feed_url: str | None = None


class Duplicate(_Model):
    """Provenance of a duplicate: what it duplicates, found how, how strongly."""

    of: str
    method: DuplicateMethod
    score: float = Field(ge=0.0, le=1.0)
    changes: dict[str, object] | None = None


class StorylineTag(_Model):
    """One storyline's verdict on one article."""

    id: str
    score: float = Field(ge=0.0, le=1.0)
    on_storyline: bool
    labels: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    version: str | None = None


class Item(_Model):
    """An article as published on ingest:articles, ingest:duplicates and storyline streams."""

    schema_: int = Field(default=SCHEMA_VERSION, alias="schema")
    id: str
    url: str
    canonical_url: str
    title: str | None
    text: str
    language: str | None
    author: str | None
    published_at: datetime | None
    date_source: DateSource | None = None
    fetched_at: datetime
    source: Source
    duplicate: Duplicate | None = None
    storylines: list[StorylineTag]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        """The `data` field of a stream entry."""
        return self.model_dump_json(by_alias=True)


class DeadLetter(_Model):
    """A URL that could not be processed, with a stable reason code."""

    schema_: int = Field(default=SCHEMA_VERSION, alias="schema")
    id: str
    url: str
    reason: str
    detail: str
    source: Source
    failed_at: datetime
    attempts: int = 1

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        """The `data` field of a deadletter stream entry."""
        return self.model_dump_json(by_alias=True)
