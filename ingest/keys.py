"""Every Redis key the service uses, in one place, with what it holds and how long it lives.

Stream names are public contract (DESIGN.md). Everything else is internal and may change.
Key names never carry raw URLs: URLs are hashed (``digest``) so keys stay short and safe.
"""

from __future__ import annotations

import hashlib

PREFIX = "ingest"

# ---- public streams (contract) ----
ARTICLES = f"{PREFIX}:articles"
DUPLICATES = f"{PREFIX}:duplicates"
DEADLETTER = f"{PREFIX}:deadletter"
STORYLINE_PREFIX = f"{PREFIX}:storyline:"


def storyline_stream(storyline_id: str) -> str:
    """Stream of the accepted articles on one storyline."""
    return f"{STORYLINE_PREFIX}{storyline_id}"


def stream_for(name: str) -> str:
    """Map a CLI/API stream name (articles, duplicates, deadletter, storyline:ID) to its key."""
    if name in ("articles", "duplicates", "deadletter"):
        return f"{PREFIX}:{name}"
    if name.startswith("storyline:") and len(name) > len("storyline:"):
        return f"{PREFIX}:{name}"
    raise ValueError(f"unknown stream {name!r}: use articles, duplicates, deadletter or storyline:ID")


# ---- Celery broker namespace: kombu prefixes its own keys (queues, unacked set) with this ----
CELERY_PREFIX = f"{PREFIX}:celery:"
QUEUE_FEEDS = "feeds"
QUEUE_ARTICLES = "articles"


def digest(text: str, size: int = 10) -> str:
    """Short stable hex digest used inside key names and ids."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=size).hexdigest()


# ---- feeds ----
# ZSET feed URL -> unix time the feed is next due; the schedule beat reads.
FEEDS_DUE = f"{PREFIX}:feeds:due"


def feed(feed_url: str) -> str:
    """HASH: url, interval, etag, last_modified, health counters. Lives until `feeds remove`."""
    return f"{PREFIX}:feed:{digest(feed_url)}"


def feed_seen(feed_url: str) -> str:
    """ZSET digest of the entry key (GUID, else link) -> first-seen time; trimmed to the seen TTL."""
    return f"{PREFIX}:feed:{digest(feed_url)}:seen"


def feed_versions(feed_url: str) -> str:
    """HASH entry key -> the entry's last `updated` stamp; trimmed with the seen entries."""
    return f"{PREFIX}:feed:{digest(feed_url)}:versions"


def feed_backlog(feed_url: str) -> str:
    """LIST of JSON entries and child sitemaps a poll found but had no time to enqueue; drained by the next."""
    return f"{PREFIX}:feed:{digest(feed_url)}:backlog"


def feed_children(feed_url: str) -> str:
    """HASH child sitemap URL -> its lastmod when last read (a sitemap index's unchanged children are skipped)."""
    return f"{PREFIX}:feed:{digest(feed_url)}:children"


def feed_lock(feed_url: str) -> str:
    """STRING: token of the poll running on this feed (one at a time); expires with the poll's budget."""
    return f"{PREFIX}:feed:{digest(feed_url)}:lock"


# ---- jobs: one per URL that entered the pipeline ----
def job(job_id: str) -> str:
    """HASH: url, via, feed_url, run, state, outcome, claim, attempts. Expires seen_ttl after it ends."""
    return f"{PREFIX}:job:{job_id}"


# ZSET job id -> enqueue time of jobs not finished yet; the sweeper re-sends the stale ones.
INFLIGHT = f"{PREFIX}:inflight"


# ---- runs: one `ingest poll` or `ingest enqueue`, so --wait can tell when its work is done ----
def run(run_id: str) -> str:
    """HASH: kind, created, outcome counters. Expires a day after creation."""
    return f"{PREFIX}:run:{run_id}"


def run_jobs(run_id: str) -> str:
    """SET of the ids of the jobs the run caused or waits on (their state is in the job hashes)."""
    return f"{PREFIX}:run:{run_id}:jobs"


def run_feeds(run_id: str) -> str:
    """SET of feed URLs the run asked to poll that have not been polled yet."""
    return f"{PREFIX}:run:{run_id}:feeds"


def run_events(run_id: str) -> str:
    """LIST a waiter blocks on (BLPOP): one element each time a job or feed of the run finishes."""
    return f"{PREFIX}:run:{run_id}:events"


RUN_TTL = 24 * 3600

# ---- fetching ----


def host_next(host: str) -> str:
    """STRING: earliest unix time (ms) the next request to this host may start. TTL: a few delays."""
    return f"{PREFIX}:host:{host}:next"


def robots(origin: str) -> str:
    """STRING: robots.txt body of an origin (scheme://host:port), cached for robots_ttl."""
    return f"{PREFIX}:robots:{digest(origin)}"


# ---- dedup index (see ingest/dedup.py for the layout of fields and values) ----
# Bumped when the layout changes: a new layout starts a fresh index under its own prefix (seeds are
# indexed again at start-up) and the old one expires by itself, the seeds' part excepted.
DEDUP_LAYOUT = 3
DEDUP_PREFIX = f"{PREFIX}:dedup:v{DEDUP_LAYOUT}:"
DEDUP_SEQ = f"{DEDUP_PREFIX}seq"  # STRING counter: document numbers
# ZSET generation -> unix time it expires: a claim reads only generations holding data.
DEDUP_GENERATIONS = f"{DEDUP_PREFIX}generations"
SEED_GENERATION = "seed"


def dedup(generation: str, table: str, shard: int) -> str:
    """HASH shard of one per-generation dedup table (url, content, doc).

    Generations are time slices; a whole generation expires at once when it leaves the
    retention window, except the seed generation, which never expires. The claim script
    (ingest/dedup_claim.lua) builds these same names from DEDUP_PREFIX.
    """
    return f"{DEDUP_PREFIX}{generation}:{table}:{shard:x}"


def dedup_fingerprints(seed: bool) -> str:
    """HASH bucket -> fingerprint records of every live generation, or of the seeds.

    Records carry their generation; the live hash expires when nothing was written to it for a
    whole retention window (its newest record expiring), the seed hash never.
    """
    return f"{DEDUP_PREFIX}{SEED_GENERATION if seed else 'live'}:fp"


def dedup_seed_job(name: str, content_hex: str) -> str:
    """HASH: the claim of one seed document version, so start-up indexing is idempotent."""
    return f"{DEDUP_PREFIX}seedjob:{SEED_GENERATION}:{name}:{content_hex}"


# ---- storylines ----
def storyline_published(storyline_id: str) -> str:
    """SET of item ids already in a storyline stream, so retagging never publishes one twice."""
    return f"{PREFIX}:storyline:{storyline_id}:published"


# ---- counters ----
STATS = f"{PREFIX}:stats"  # HASH of monotonically increasing counters; never expires
STATS_STORYLINE = f"{PREFIX}:stats:storyline"  # HASH storyline id -> accepted items on it
STATS_REASONS = f"{PREFIX}:stats:deadletter"  # HASH reason -> count


# ---- dashboard and metrics indexes (ingest/web/indexes.py), written as items are published ----
# They let a page read a range of days or one page of entries without scanning a stream.
WEB_PREFIX = f"{PREFIX}:web:"


def web_days(storyline_id: str) -> str:
    """ZSET day (YYYY-MM-DD) -> its ordinal: the days a storyline has articles on. Lives like the stream."""
    return f"{WEB_PREFIX}sl:{storyline_id}:days"


def web_day(storyline_id: str, day: str) -> str:
    """HASH of one day of a storyline: n, lang:<code>, outlet:<host>, label:<label> -> articles."""
    return f"{WEB_PREFIX}sl:{storyline_id}:day:{day}"


def web_totals(storyline_id: str, kind: str) -> str:
    """ZSET language / outlet / label -> articles of a storyline (kind: lang, outlet, label): the top ones."""
    return f"{WEB_PREFIX}sl:{storyline_id}:totals:{kind}"


def web_items(storyline_id: str, facet: str = "") -> str:
    """ZSET articles entry id -> article time, for a storyline or one facet of it (lang:en, label:x, outlet:h).

    Trimmed to the stream's MAXLEN on each insert; members whose entry was trimmed from the stream
    are skipped when read.
    """
    suffix = f":{digest(facet)}" if facet else ""
    return f"{WEB_PREFIX}sl:{storyline_id}:items{suffix}"


def web_copies(item_id: str) -> str:
    """ZSET duplicates entry id -> time: the copies that point to one item."""
    return f"{WEB_PREFIX}copies:{item_id}"


def web_dead_hour(hour: str) -> str:
    """HASH reason -> dead letters in one UTC hour (YYYY-MM-DDTHH). Expires after WEB_DEAD_TTL."""
    return f"{WEB_PREFIX}dead:{hour}"


def web_dead_reason(reason: str) -> str:
    """ZSET deadletter entry id -> time, per reason, so one reason's entries page without a scan."""
    return f"{WEB_PREFIX}dead:reason:{reason}"


WEB_DEAD_TTL = 15 * 86400


def web_minute(minute: int) -> str:
    """HASH outcome -> jobs finished in one minute (unix minute). Expires after WEB_MINUTE_TTL."""
    return f"{WEB_PREFIX}minute:{minute}"


WEB_MINUTE_TTL = 26 * 3600


def web_stage(stage: str) -> str:
    """HASH of one stage's latency histogram: bucket upper bound -> count, plus `sum` and `count`. Never expires."""
    return f"{WEB_PREFIX}stage:{stage}"


WEB_SECRET = f"{WEB_PREFIX}secret"  # STRING: random key that signs CSRF tokens when no API token is set

# ---- runs: counters and lookups added for waits that cost O(1) per finished job ----


def run_foreign(run_id: str) -> str:
    """SET of ids of jobs another run had in flight when this run asked for their URL; waited on too."""
    return f"{PREFIX}:run:{run_id}:foreign"


def run_seen(run_id: str) -> str:
    """SET of ids of finished jobs whose URL the run found already seen (for `ingest runs show`)."""
    return f"{PREFIX}:run:{run_id}:seen"


# SET of run ids `feeds add` opened for first polls (the feed's hash names it in `first_run` until its
# first poll, whoever sends it); the next `poll --wait` counts them as its own.
RUNS_FROM_ADDS = f"{PREFIX}:runs:from-adds"

# ---- retry: dead letters sent through the pipeline again ----
# HASH deadletter entry id -> run id of the retry that re-enqueued it, so one entry is retried once.
# Lives as long as the deadletter stream (entries trimmed by MAXLEN leave a few stale fields behind).
DEADLETTER_RETRIED = f"{PREFIX}:deadletter:retried"

# ---- workers: heartbeats so clients can tell whether anything will do the work ----
# ZSET worker name -> unix time of its last heartbeat; names older than the TTL are dead.
WORKERS = f"{PREFIX}:workers"
HEARTBEAT_TTL = 15  # seconds; workers beat every HEARTBEAT_TTL / 3


def worker_heartbeat(name: str) -> str:
    """STRING (JSON): hostname, pid, concurrency, started, last_seen of one worker. TTL: HEARTBEAT_TTL."""
    return f"{PREFIX}:worker:{name}"


# ---- items: id -> where the item is, so `ingest show ID` need not scan streams ----
# One HASH per time slice, item id -> "<stream key> <entry id>", written as items are published. A
# slice lives as long as a URL is remembered as seen (seen_ttl_days) plus its own span, then expires
# whole: the index holds what a URL lookup can still reach, and never grows past it.
ITEMS_INDEX_SLICES = 4  # seen_ttl_days is cut into this many slices; a lookup reads one more


# ZSET slice number -> unix time the slice expires: the slices a lookup reads (written once per slice).
ITEMS_INDEX_LIVE = f"{PREFIX}:items:index:live"


def items_index(slice_number: int) -> str:
    """HASH item id -> "<stream key> <entry id>" of the items published in one time slice."""
    return f"{PREFIX}:items:index:{slice_number}"
