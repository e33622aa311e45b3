"""Dedup: canonical URL, exact content, then near-duplicate containment, decided by one atomic claim.

Near-duplicates are found by *containment* of word 5-gram shingles, not Jaccard: a teaser
holding the first third of an article has Jaccard 0.33 with it but containment 1.0. The
sketch is FracMinHash (scaled MinHash; Broder 1997, Irber et al. 2022): keep every shingle
hash below 2**64 / SAMPLE_SCALE. Because the same hashes are kept from every document, the
samples of a teaser are a subset of the samples of its article, and matches / samples is an
unbiased estimate of containment. Long documents keep only their MAX_STORED smallest samples
(a bottom-k cut), recorded as an effective threshold so comparisons stay unbiased. So the scale
only sets how many samples a short text keeps: at one shingle in two a 100-word brief keeps its
full MAX_STORED (at one in eight it kept 12, too few to tell a lightly edited copy from chance).

A claim compares two sketches only on the range of hash values both cover: below the lower of
the stored document's threshold and the query's (the largest of the MAX_QUERIED samples it
looks up); matches and both sample counts are all counted on that range.

Redis layout (key names from ingest.keys). Fingerprints live in one hash for every generation
(a time slice of the retention window) and one for seeds; a field is a bucket (the low 20 bits
of a sample), its value the fixed-width records of the samples in that bucket:

    live:fp      HASH bucket -> records: bits 24-39 of the sample | generation tag | doc number (4 bytes)
    seed:fp      the same for seeds (tag 0); never expires

Exact digests and document records are per generation (expired whole when the generation leaves
the window; seeds never), in hashes sharded 65536 ways so each stays a compact listpack:

    <gen>:url:<shard>      field 6 bytes of the canonical-URL digest  -> doc number
    <gen>:content:<shard>  field 6 bytes of the normalised-text digest -> doc number
    <gen>:doc:<shard>      field doc number // 65536 -> packed record (host, title, length, samples,
                           threshold, where each stored sample lies below it, id)

Why one hash of buckets: on Redis each command a script runs, each key or field it looks up and
each value it reads into Lua costs about a microsecond. So a claim reads the bucket of every
sample it looks up with one HMGET and writes every posting with one HSET, however many generations
are live. It looks up only its 32 smallest samples: the range they cover is wide enough, because
the claim counts a stored document's samples on the range both sketches cover from the places its
record keeps, rather than estimating them. Records of a generation that left the window are
ignored, and dropped when their bucket is next written; the live hash goes as a whole when nothing
was written to it for a whole window (docs/benchmarks.md has the measurements behind these choices).

The claim script decides and writes in a single EVALSHA, so two workers racing on two copies of
one article publish exactly one of them.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import xxhash

from ingest import keys
from ingest.config import Settings
from ingest.models import Duplicate

SHINGLE_SIZE = 5
SAMPLE_SCALE = 2  # keep ~1 in 2 shingles (a floor: long texts keep only MAX_STORED)
SAMPLE_LIMIT = 1 << 63  # 2**64 / SAMPLE_SCALE
MAX_STORED = 32  # samples stored per document: bounds memory per article
MAX_QUERIED = 32  # samples looked up per query: bounds the work Redis does per claim
MIN_MATCHES = 3  # fewer shared samples than this is never evidence of copying
POSTING_CAP = 24  # a shingle shared by more documents is boilerplate, not evidence
FP_BUCKETS = 1 << 20  # fingerprint buckets (fields of one hash)
FP_FIELD_BYTES = 2  # bytes of a sample kept in its record: with the bucket, 36 bits identify it
GENERATIONS = 4  # the retention window is split into this many slices (fingerprints live 1-1.25x it)
FULL_THRESHOLD16 = SAMPLE_LIMIT >> 48
_FP_MASK = FP_BUCKETS - 1
_SENTINEL = "keeps the seed fingerprint hash a hash table (see dedup_claim.lua)".ljust(80)

_WORD = re.compile(r"\w+")
_RECORD = struct.Struct(">IIIBH")  # host hash, title hash, text length, stored samples, threshold16


@dataclass(frozen=True)
class Fingerprint:
    """What dedup needs of a text: its exact digest and its sorted shingle samples."""

    content: bytes
    samples: tuple[int, ...]  # the MAX_QUERIED smallest
    words: int
    total: int  # distinct samples before that cut


@dataclass(frozen=True)
class Candidate:
    """The article asking to be claimed."""

    item_id: str  # id if accepted (derived from the canonical URL)
    revision_id: str  # id if the canonical URL is already taken (a revision or URL duplicate)
    canonical_url: str
    host: str
    title: str
    text_length: int


@dataclass(frozen=True)
class Claim:
    """Outcome of a claim: accepted under item_id, or a duplicate with its provenance."""

    item_id: str
    duplicate: Duplicate | None

    @property
    def accepted(self) -> bool:
        """True when the article is new."""
        return self.duplicate is None


def words(text: str) -> list[str]:
    """Lowercased word tokens: punctuation, case and spacing never make two copies differ."""
    return _WORD.findall(text.lower())


def fingerprint(text: str) -> Fingerprint:
    """Exact digest and FracMinHash samples of a text."""
    toks = words(text)
    content = hashlib.blake2b(" ".join(toks).encode("utf-8"), digest_size=8).digest()
    h = xxhash.xxh3_64_intdigest
    samples = {
        v
        for v in (h(" ".join(toks[i : i + SHINGLE_SIZE]).encode("utf-8")) for i in range(len(toks) - SHINGLE_SIZE + 1))
        if v < SAMPLE_LIMIT
    }
    return Fingerprint(content, tuple(sorted(samples)[:MAX_QUERIED]), len(toks), len(samples))


def _h32(text: str) -> int:
    return xxhash.xxh32_intdigest(text.encode("utf-8"))


def _url_digest(url: str) -> bytes:
    return hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest()


def _threshold16(fp: Fingerprint) -> int:
    """Sampling threshold of the samples stored for a text (bottom-k cut), in units of 2**48."""
    if fp.total > MAX_STORED:
        return (fp.samples[MAX_STORED - 1] >> 48) + 1
    return FULL_THRESHOLD16


def _queried16(fp: Fingerprint) -> int:
    """Sampling threshold of the samples a claim looks up (MAX_QUERIED of them), in units of 2**48."""
    if fp.total > MAX_QUERIED:
        return (fp.samples[MAX_QUERIED - 1] >> 48) + 1
    return FULL_THRESHOLD16


_CLAIM_LUA = (Path(__file__).with_name("dedup_claim.lua")).read_text()
CLAIM_ARGS = 13  # arguments of the claim script: ARGV past these are the caller's


class DedupIndex:
    """The shared dedup index in Redis."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.threshold = settings.near_duplicate_threshold
        self.span = settings.dedup_retention_days * 86400 / GENERATIONS
        self.retention = settings.dedup_retention_days * 86400
        constants: dict[str, str | int | float] = {
            "PREFIX": keys.DEDUP_PREFIX,
            "SEQ_KEY": keys.DEDUP_SEQ,
            "GENS_KEY": keys.DEDUP_GENERATIONS,
            "SEED_GEN": keys.SEED_GENERATION,
            "LIVE_FP": keys.dedup_fingerprints(seed=False),
            "SEED_FP": keys.dedup_fingerprints(seed=True),
            "WINDOW": GENERATIONS,
            "SPAN": self.span,
            "RETENTION": self.retention,
            "THRESHOLD": self.threshold,
            "MIN_MATCHES": MIN_MATCHES,
            "CAP": POSTING_CAP,
            "FIELD_BYTES": FP_FIELD_BYTES,
            "SENTINEL": _SENTINEL,
        }
        prelude = "".join(f"local {name} = {_lua_literal(value)}\n" for name, value in constants.items())
        # the claim script without its CLAIMED(encoded, decision): ingest/publish.py supplies one
        self.claim_source = prelude + _CLAIM_LUA
        self._script = client.register_script(
            "local function CLAIMED(encoded) return encoded end\n" + self.claim_source
        )

    def claim(
        self, job_key: str, cand: Candidate, fp: Fingerprint, *, seed: bool = False, now: float | None = None
    ) -> Claim:
        """Atomically decide new-or-duplicate and, if new, index it; idempotent per job_key."""
        return parse_claim(self._script(args=self.claim_args(job_key, cand, fp, seed=seed, now=now)))

    def claim_args(
        self, job_key: str, cand: Candidate, fp: Fingerprint, *, seed: bool = False, now: float | None = None
    ) -> list[str | bytes | int]:
        """ARGV of the claim script (CLAIM_ARGS of them)."""
        current = int((time.time() if now is None else now) // self.span)
        stored = fp.samples[:MAX_STORED]
        teff = _threshold16(fp)
        record = _RECORD.pack(_h32(cand.host), _h32(cand.title), cand.text_length, len(stored), teff)
        # Where each stored sample lies in [0, teff), in sixteenths, two to a byte: a claim comparing
        # on a narrower range counts this document's samples in it instead of estimating them. (Half
        # a byte each keeps the record short enough for Redis to store its shard as a listpack.)
        places = [(v >> 48) * 16 // teff for v in stored] + [0]
        packed = bytes(places[i] << 4 | places[i + 1] for i in range(0, len(stored), 2))
        url = _url_digest(cand.canonical_url)
        n = len(fp.samples)
        args: list[str | bytes | int] = [
            job_key,
            current,
            int(seed),
            record + packed + cand.item_id.encode("utf-8"),
            cand.item_id,
            cand.revision_id,
            _queried16(fp),
            len(stored),
            # Every sample as 8 big-endian bytes, then the bucket of each as 4: one argument instead
            # of one per bucket, which costs more to send (client) and to unpack (Redis) than to slice.
            struct.pack(f">{n}Q{n}I", *fp.samples, *[v & _FP_MASK for v in fp.samples]),
            f"{int.from_bytes(url[:2]):x}",
            url[2:],
            f"{int.from_bytes(fp.content[:2]):x}",
            fp.content[2:],
        ]
        return args

    def index_seeds(self, seeds_dir: Path) -> int:
        """Index every seed document (*.txt) so copies of it are duplicates; returns how many there are."""
        count = 0
        for path in sorted(seeds_dir.glob("*.txt")):
            text = path.read_text(encoding="utf-8")
            fp = fingerprint(text)
            seed_id = f"seed:{path.name}"
            cand = Candidate(seed_id, seed_id, f"seed:{path.name}", "", "", len(text))
            self.claim(keys.dedup_seed_job(path.name, fp.content.hex()), cand, fp, seed=True)
            count += 1
        return count


def _lua_literal(value: str | int | float) -> str:
    """A constant as Lua source: strings quoted (ASCII only), numbers exact."""
    if isinstance(value, str):
        if not value.isascii() or not value.isprintable():
            raise ValueError(f"not a plain ASCII constant: {value!r}")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def parse_claim(raw: bytes | str) -> Claim:
    """The Claim of the script's JSON decision."""
    data = json.loads(raw)
    dup = data.get("dup")
    if dup is None:
        return Claim(data["id"], None)
    return Claim(
        data["id"],
        Duplicate(
            of=dup["of"],
            method=dup["method"],
            score=round(min(1.0, float(dup["score"])), 3),
            changes=dup.get("changes"),
        ),
    )
