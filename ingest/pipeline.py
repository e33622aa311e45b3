"""One article, start to end: fetch, clean, dedup, tag, publish, and what to do when a stage fails."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field

import redis
from redis import Redis

from ingest import clean, keys
from ingest.config import Settings
from ingest.dedup import Candidate, DedupIndex, Fingerprint, fingerprint
from ingest.errors import IngestError, PermanentError, TransientError
from ingest.fetch import Fetcher
from ingest.jobs import Jobs
from ingest.models import DeadLetter, Item, Job, Source, utcnow
from ingest.publish import Publisher
from ingest.redisconn import connect
from ingest.storyline import Document, Storyline, load_storylines, tag_all
from ingest.urls import choose_canonical, host_of, item_id

log = logging.getLogger(__name__)


@dataclass
class Context:
    """Everything a worker process builds once and reuses for every article."""

    settings: Settings
    redis: Redis
    fetcher: Fetcher
    index: DedupIndex
    publisher: Publisher
    jobs: Jobs
    storylines: list[Storyline] = field(default_factory=list)

    @classmethod
    def create(cls, settings: Settings, client: Redis | None = None) -> Context:
        """Connect, load and validate the storylines, and index the seed corpus (idempotent)."""
        storylines = load_storylines(settings.storylines_path)
        client = client or connect(settings)
        ctx = cls(
            settings=settings,
            redis=client,
            fetcher=Fetcher(settings, client),
            index=DedupIndex(client, settings),
            publisher=Publisher(client, settings),
            jobs=Jobs(client),
            storylines=storylines,
        )
        ctx.index.index_seeds(settings.seeds_dir)
        return ctx

    def close(self) -> None:
        """Release HTTP and Redis connections."""
        self.fetcher.close()
        self.redis.close()


_WARM_PAGE = (
    "<html><head><title>Warm up</title><meta property='article:published_time' content='2025-03-18'>"
    "</head><body><article><h1>Warm up</h1>"
    + "".join(
        f"<p>Paragraph {n}: extraction, language identification and tagging load what they need "
        f"on first use, so the worker does it once before it starts taking articles.</p>"
        for n in range(8)
    )
    + "</article></body></html>"
).encode()


def warm_up(ctx: Context | None = None) -> None:
    """Load what the stages load lazily (trafilatura, the language model) before workers fork."""
    ext = clean.extract(_WARM_PAGE, "https://warm-up.invalid/")
    clean.load_public_suffixes()
    clean.detect_language(ext.text)
    if ctx is not None:
        tag_all(ctx.storylines, Document(ext.title, ext.text, ext.language, ext.published_at))


@dataclass(frozen=True)
class Prepared:
    """An article ready to be claimed and published: the item as it is if new, and what dedup needs."""

    item: Item
    candidate: Candidate
    fingerprint: Fingerprint


def build_item(ctx: Context, job: Job, timings: dict[str, float] | None = None) -> Prepared:
    """Fetch, clean, fingerprint and tag one article; raises IngestError on failure.

    `timings`, when given, receives each stage's wall time in seconds (for /metrics).
    """
    lap = _Laps(timings)
    fetched = ctx.fetcher.fetch_article(job.url)
    fetched_at = utcnow()
    lap("fetch")
    ext = clean.extract(fetched.body, fetched.final_url, fetched.charset, fast=ctx.settings.extract_fast)
    canonical = choose_canonical(fetched.final_url, ext.canonical_url)
    lap("extract")
    fp = fingerprint(ext.text)
    lap("dedup")  # the fingerprint; the claim runs in the publish script and is timed with it
    published_at, date_source = clean.publication_date(
        ext.published_at, job.published, (fetched.final_url, canonical, job.url), ext.date_in_url
    )
    tags = tag_all(ctx.storylines, Document(ext.title, ext.text, ext.language, published_at))
    lap("tag")
    candidate = Candidate(
        item_id=item_id(canonical),
        # a second version of a canonical URL needs an id of its own: derive it from its content
        revision_id=item_id(f"{canonical}#{fp.content.hex()}"),
        canonical_url=canonical,
        host=host_of(canonical),
        title=ext.title or "",
        text_length=len(ext.text),
    )
    item = Item(
        id=candidate.item_id,
        url=job.url,
        canonical_url=canonical,
        title=ext.title,
        text=ext.text,
        language=ext.language,
        author=ext.author,
        published_at=published_at,
        date_source=date_source,
        fetched_at=fetched_at,
        source=Source(via=job.via, feed_url=job.feed_url),
        duplicate=None,
        storylines=tags,
    )
    return Prepared(item, candidate, fp)


def run(ctx: Context, job: Job) -> str:
    """Process a job to its end: article, duplicate or deadletter. TransientError propagates for a retry."""
    crashed = ctx.jobs.begin(job)
    if crashed is None:
        return "already_done"
    if crashed >= ctx.settings.max_deliveries:
        # The task keeps dying (worker lost, OOM, time limit) before it can finish: a poison
        # page must not take workers down forever.
        return fail(ctx, job, PermanentError("too_many_attempts", f"{crashed} attempts died before finishing"))
    timings: dict[str, float] = {}
    try:
        ready = build_item(ctx, job, timings)
        # one script decides new or duplicate and publishes accordingly (ingest/publish.py)
        claim, _created = ctx.publisher.claim_and_publish(
            job, ctx.index, ready.candidate, ready.fingerprint, ready.item, timings
        )
    except PermanentError as exc:
        return fail(ctx, job, exc)
    except TransientError:
        raise
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise TransientError("redis_unavailable", str(exc)) from exc
    except Exception as exc:  # a bug or a library crash on odd input must not lose the URL
        log.exception("article failed", extra={"article_url": job.url, "reason": "internal_error"})
        return fail(ctx, job, PermanentError("internal_error", f"{type(exc).__name__}: {exc}"[:500]))
    outcome = "article" if claim.accepted else "duplicate"
    on = ",".join(t.id for t in ready.item.storylines if t.on_storyline and claim.accepted) or "-"
    log.info(
        "article done", extra={"article_url": job.url, "item_id": claim.item_id, "outcome": outcome, "storyline": on}
    )
    return outcome


class _Laps:
    """Adds the time since the previous lap to a stage's total."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self.into, self.last = into, time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        if self.into is not None:
            self.into[stage] = self.into.get(stage, 0.0) + now - self.last
        self.last = now


def fail(ctx: Context, job: Job, exc: IngestError) -> str:
    """Dead-letter a job with the error's reason and detail."""
    attempts = int(ctx.redis.hget(keys.job(job.job_id), "attempts") or 1)
    letter = DeadLetter(
        id=job.job_id,
        url=job.url,
        reason=exc.reason,
        detail=exc.detail or exc.reason,
        source=Source(via=job.via, feed_url=job.feed_url),
        failed_at=utcnow(),
        attempts=attempts,
    )
    ctx.publisher.deadletter(job, letter)
    log.warning("article dead-lettered", extra={"article_url": job.url, "reason": exc.reason, "detail": exc.detail})
    return "deadletter"


def retry_delay(exc: TransientError, retries: int, settings: Settings) -> float:
    """Exponential backoff with jitter, at least the server's Retry-After, capped below the visibility timeout."""
    backoff = min(2.0 ** (retries + 1), settings.retry_countdown_max) * random.uniform(0.75, 1.25)
    if exc.retry_after:
        backoff = max(backoff, exc.retry_after)
    return min(backoff, settings.retry_countdown_max)
