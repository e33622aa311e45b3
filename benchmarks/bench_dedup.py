"""Dedup index at scale: memory per article, insert throughput and claim latency against a real Redis.

Indexes --n synthetic articles (default 1,000,000) into a private redis-server and measures:

* memory: (used_memory after - before) / n from INFO memory of a Redis holding only this index
  (the claim also writes its decision into each job's hash; those are measured, then deleted, since
  the pipeline's job hashes hold far more than that and are not part of the index);
* insert throughput: --clients processes, each sending one claim per article and waiting for it,
  as the workers do, from fingerprints computed beforehand; then end to end, where the same
  processes also fingerprint the text of each article (on the same 2 cores as Redis);
* claim latency: one client, one claim at a time, against the full index: near-copies of indexed
  articles (teasers, light rewording, dropped paragraphs) and fresh articles, mixed; with recall on
  the near-copies and false positives on the fresh ones;
* the same for datasketch's MinHashLSH with its Redis storage, on the same documents, as the
  reference: inserted through insertion_session (its buffered, pipelined batch path) by the same
  number of processes; queried with MinHashLSH.query.

Synthetic articles: word counts lognormal around 450 (150 to 2,000), words drawn from a 50,000-type
Zipf-Mandelbrot vocabulary, plus what makes real news share text without being copies: stock
phrases ("said in a statement"-like boilerplate) and quotes shared by every article on the same event.
Everything is derived from --seed, so two runs index the same articles.

    python benchmarks/bench_dedup.py [--n 1000000] [--clients 3] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing as mp
import os
import pickle
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis
import xxhash

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import dedup, keys  # noqa: E402
from ingest.config import Settings  # noqa: E402
from ingest.dedup import Candidate, DedupIndex, Fingerprint, fingerprint  # noqa: E402
from ingest.embedded import RedisProcess, start_redis  # noqa: E402

VOCAB = 50_000
OUTLETS = 3_000
PHRASES = 2_000
KINDS = ("teaser", "reworded", "paragraphs_dropped", "teaser_reworded")
DS_THRESHOLD = 0.5  # datasketch MinHashLSH: Jaccard threshold (its documented example setting)
DS_PERM = 128

# ---- corpus ----


class Corpus:
    """Deterministic synthetic news articles: article i is the same on every run with the same seed."""

    def __init__(self, seed: int, n_events: int) -> None:
        self.seed = seed
        self.n_events = n_events
        rng = np.random.default_rng([seed, 0])
        # frequent words are short, as in real text; letters uniform, duplicates redrawn
        lengths = np.clip(np.round(2 + 0.45 * np.log2(np.arange(VOCAB) + 2) + rng.normal(0, 1.2, VOCAB)), 2, 14)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        seen: set[str] = set()
        words: list[str] = []
        for n in lengths.astype(int):
            while True:
                w = "".join(rng.choice(letters, n))
                if w not in seen:
                    seen.add(w)
                    words.append(w)
                    break
        self.vocab = np.array(words, dtype=object)
        # Zipf-Mandelbrot, the usual fit for word frequencies in news text
        weights = 1.0 / (np.arange(VOCAB) + 2.7) ** 1.07
        self.cdf = np.cumsum(weights) / weights.sum()
        self.phrases = [self.draw(rng, int(rng.integers(4, 10))) for _ in range(PHRASES)]
        pw = 1.0 / (np.arange(PHRASES) + 1.0)
        self.phrase_cdf = np.cumsum(pw) / pw.sum()
        ew = 1.0 / (np.arange(n_events) + 10.0) ** 0.8  # a few big stories, a long tail of small ones
        self.event_cdf = np.cumsum(ew) / ew.sum()

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n word ids from the Zipf vocabulary."""
        return np.searchsorted(self.cdf, rng.random(n))

    def quotes(self, event: int) -> list[np.ndarray]:
        """The two quotes every article on an event may carry (same words in each)."""
        rng = np.random.default_rng([self.seed, 2, event])
        return [self.draw(rng, int(rng.integers(12, 31))) for _ in range(2)]

    def article(self, i: int) -> tuple[list[np.ndarray], int, str]:
        """Paragraphs (word ids), outlet and title of article i."""
        rng = np.random.default_rng([self.seed, 1, i])
        n_words = int(np.clip(rng.lognormal(math.log(450), 0.55), 150, 2000))
        event = int(np.searchsorted(self.event_cdf, rng.random()))
        quotes = [q for q in self.quotes(event) if rng.random() < 0.5]
        paras: list[np.ndarray] = []
        total = 0
        while total < n_words:
            k = int(rng.integers(25, 90))
            parts = [self.draw(rng, k)]
            if rng.random() < 0.35:  # boilerplate openers shared across many articles
                parts.insert(0, self.phrases[int(np.searchsorted(self.phrase_cdf, rng.random()))])
            if quotes and rng.random() < 0.3:
                parts.append(quotes.pop())
            para = np.concatenate(parts)
            paras.append(para)
            total += len(para)
        for q in quotes:
            paras.append(q)
        outlet = int(rng.zipf(1.3)) % OUTLETS
        title = " ".join(self.vocab[self.draw(rng, int(rng.integers(6, 12)))].tolist())
        return paras, outlet, title

    def text(self, paras: list[np.ndarray]) -> str:
        """Article text: one paragraph per line."""
        return "\n".join(" ".join(self.vocab[p].tolist()) + "." for p in paras)

    def near_copy(self, i: int, kind: str) -> str:
        """A near-copy of article i of the given kind (what syndication and aggregators publish)."""
        paras, _, _ = self.article(i)
        rng = np.random.default_rng([self.seed, 3, i])
        if kind.startswith("teaser"):
            # the first third of the words, up to the end of the paragraph it ends in
            ends = np.cumsum([len(p) for p in paras])
            paras = paras[: int(np.searchsorted(ends, ends[-1] / 3)) + 1]
        if kind == "paragraphs_dropped":
            keep = [p for p in paras if rng.random() >= 1 / 3] or paras[:1]
            paras = [*keep, self.draw(rng, 40)]
        if kind.endswith("reworded"):
            # light rewording: one word in 40 replaced
            paras = [np.where(rng.random(len(p)) < 1 / 40, self.draw(rng, len(p)), p) for p in paras]
        return self.text(paras)


def url_of(i: int, outlet: int, kind: str = "news") -> str:
    """Canonical URL of an article."""
    return f"https://outlet{outlet}.example/{kind}/{i}"


# ---- fingerprinting (worker processes) ----

_CORPUS: Corpus | None = None


def _init_worker(seed: int, n_events: int) -> None:
    global _CORPUS
    _CORPUS = Corpus(seed, n_events)


def _ds_hashvalues(text: str, perms: Any) -> np.ndarray:
    """datasketch MinHash (affine32 scheme) of the same word 5-gram shingles our fingerprint uses."""
    from datasketch import MinHash

    toks = dedup.words(text)
    shingles = [" ".join(toks[j : j + dedup.SHINGLE_SIZE]).encode() for j in range(len(toks) - dedup.SHINGLE_SIZE + 1)]
    m = MinHash(num_perm=DS_PERM, hashfunc=xxhash.xxh32_intdigest, permutations=perms, scheme="affine32")
    m.update_batch(shingles)
    return np.asarray(m.hashvalues, dtype=np.uint32)


@dataclass
class Batch:
    """Fingerprints of a run of documents, in arrays (cheap to send between processes)."""

    samples: np.ndarray  # uint64 (n, MAX_QUERIED), zero-padded
    n_samples: np.ndarray  # uint8
    n_total: np.ndarray  # int32: distinct samples before the MAX_QUERIED cut
    content: np.ndarray  # uint64: the 8-byte content digest
    words: np.ndarray  # int32
    text_len: np.ndarray  # int32
    outlet: np.ndarray  # int32
    title: list[str]
    ds: np.ndarray  # uint32 (n, DS_PERM), empty when datasketch is skipped
    seconds_ours: float  # CPU time in dedup.fingerprint
    seconds_ds: float  # CPU time shingling + MinHash for datasketch


def _empty(n: int, with_ds: bool) -> Batch:
    return Batch(
        np.zeros((n, dedup.MAX_QUERIED), np.uint64),
        np.zeros(n, np.uint8),
        np.zeros(n, np.int32),
        np.zeros(n, np.uint64),
        np.zeros(n, np.int32),
        np.zeros(n, np.int32),
        np.zeros(n, np.int32),
        [""] * n,
        np.zeros((n, DS_PERM) if with_ds else (0, DS_PERM), np.uint32),
        0.0,
        0.0,
    )


def _fill(b: Batch, j: int, text: str, outlet: int, title: str, perms: Any) -> None:
    t0 = time.process_time()
    fp = fingerprint(text)
    t1 = time.process_time()
    b.samples[j, : len(fp.samples)] = fp.samples
    b.n_samples[j] = len(fp.samples)
    b.n_total[j] = fp.total
    b.content[j] = int.from_bytes(fp.content, "big")
    b.words[j] = fp.words
    b.text_len[j] = len(text)
    b.outlet[j] = outlet
    b.title[j] = title
    b.seconds_ours += t1 - t0
    if perms is not None:
        b.ds[j] = _ds_hashvalues(text, perms)
        b.seconds_ds += time.process_time() - t1


def _fingerprint_articles(task: tuple[int, int, bool]) -> tuple[int, Batch]:
    start, stop, with_ds = task
    assert _CORPUS is not None
    perms = _ds_perms() if with_ds else None
    b = _empty(stop - start, with_ds)
    for j, i in enumerate(range(start, stop)):
        paras, outlet, title = _CORPUS.article(i)
        _fill(b, j, _CORPUS.text(paras), outlet, title, perms)
    return start, b


def _fingerprint_copies(task: tuple[list[tuple[int, str]], bool]) -> Batch:
    items, with_ds = task
    assert _CORPUS is not None
    perms = _ds_perms() if with_ds else None
    b = _empty(len(items), with_ds)
    for j, (i, kind) in enumerate(items):
        outlet = (i * 7919 + KINDS.index(kind) + 1) % OUTLETS  # another outlet than the original's
        _fill(b, j, _CORPUS.near_copy(i, kind), outlet, f"copy of {i}", perms)
    return b


def _texts(task: tuple[int, int]) -> list[tuple[str, int, str]]:
    assert _CORPUS is not None
    out = []
    for i in range(*task):
        paras, outlet, title = _CORPUS.article(i)
        out.append((_CORPUS.text(paras), outlet, title))
    return out


_PERMS: Any = None


def _ds_perms() -> Any:
    global _PERMS
    if _PERMS is None:
        from datasketch import MinHash

        _PERMS = MinHash(num_perm=DS_PERM, scheme="affine32").permutations
    return _PERMS


def _concat(parts: list[Batch]) -> Batch:
    return Batch(
        np.concatenate([p.samples for p in parts]),
        np.concatenate([p.n_samples for p in parts]),
        np.concatenate([p.n_total for p in parts]),
        np.concatenate([p.content for p in parts]),
        np.concatenate([p.words for p in parts]),
        np.concatenate([p.text_len for p in parts]),
        np.concatenate([p.outlet for p in parts]),
        [t for p in parts for t in p.title],
        np.concatenate([p.ds for p in parts]),
        sum(p.seconds_ours for p in parts),
        sum(p.seconds_ds for p in parts),
    )


# ---- claims ----


def fp_of(b: Batch, j: int) -> Fingerprint:
    """The Fingerprint of row j of a batch."""
    n = int(b.n_samples[j])
    return Fingerprint(
        int(b.content[j]).to_bytes(8, "big"), tuple(b.samples[j, :n].tolist()), int(b.words[j]), int(b.n_total[j])
    )


def candidate(url: str, outlet: int, title: str, fp: Fingerprint, text_len: int) -> Candidate:
    """The Candidate the pipeline would build for an article."""
    return Candidate(
        keys.digest(url), keys.digest(f"{url}#{fp.content.hex()}"), url, f"outlet{outlet}.example", title, text_len
    )


_STATE: dict[str, Any] = {}  # what forked client processes inherit: the batch, the Redis URL


def _insert_share(task: tuple[int, int, int]) -> tuple[float, np.ndarray]:
    """Claim articles k, k+step, ... in order; returns (seconds, per-claim latencies in µs)."""
    k, step, n = task
    b: Batch = _STATE["batch"]
    client = redis.Redis.from_url(_STATE["url"])
    index = DedupIndex(client, Settings(redis_url=_STATE["url"]))
    lat = np.zeros(len(range(k, n, step)), np.float32)
    _STATE["barrier"].wait()
    t0 = time.perf_counter()
    for j, i in enumerate(range(k, n, step)):
        fp = fp_of(b, i)
        cand = candidate(url_of(i, int(b.outlet[i])), int(b.outlet[i]), b.title[i], fp, int(b.text_len[i]))
        s = time.perf_counter()
        index.claim(f"bench:job:{i}", cand, fp)
        lat[j] = (time.perf_counter() - s) * 1e6
    return time.perf_counter() - t0, lat


def _e2e_share(task: tuple[int, int]) -> float:
    """Fingerprint and claim texts k, k+step, ...: what a worker does after extraction."""
    k, step = task
    texts: list[tuple[str, int, str]] = _STATE["texts"]
    base: int = _STATE["e2e_base"]
    client = redis.Redis.from_url(_STATE["url"])
    index = DedupIndex(client, Settings(redis_url=_STATE["url"]))
    _STATE["barrier"].wait()
    t0 = time.perf_counter()
    for j in range(k, len(texts), step):
        text, outlet, title = texts[j]
        fp = fingerprint(text)
        cand = candidate(url_of(base + j, outlet), outlet, title, fp, len(text))
        index.claim(f"bench:job:{base + j}", cand, fp)
    return time.perf_counter() - t0


class CpuUse:
    """Share of this machine's CPU time by kind over a timed phase, from /proc/stat.

    steal is time the hypervisor gave to other guests: on a busy host it slows every figure here.
    """

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> list[int]:
        try:
            with open("/proc/stat") as f:
                return [int(x) for x in f.readline().split()[1:9]]
        except OSError:
            return [0] * 8

    def shares(self) -> dict[str, float]:
        """Percent of CPU time spent in user, system, idle and steal since creation."""
        d = [b - a for a, b in zip(self.start, self._read(), strict=True)]
        total = sum(d) or 1
        return {k: round(100 * d[i] / total, 1) for k, i in (("user", 0), ("system", 2), ("idle", 3), ("steal", 7))}


def run_parallel(fn: Any, tasks: list[Any]) -> tuple[float, list[Any]]:
    """Run fn over tasks in forked processes started together; returns (wall seconds, results)."""
    ctx = mp.get_context("fork")
    _STATE["barrier"] = ctx.Barrier(len(tasks) + 1)
    with ctx.Pool(len(tasks)) as pool:
        pending = pool.map_async(fn, tasks)
        _STATE["barrier"].wait()
        t0 = time.perf_counter()
        results = pending.get()
        wall = time.perf_counter() - t0
    return wall, results


# ---- measurement helpers ----


def used_memory(client: redis.Redis) -> dict[str, int]:
    """used_memory and used_memory_rss from INFO memory."""
    info = client.info("memory")
    return {"used_memory": int(info["used_memory"]), "used_memory_rss": int(info["used_memory_rss"])}


def per_article(before: dict[str, int], after: dict[str, int], n: int) -> dict[str, float]:
    """Memory growth per article, from two INFO memory readings."""
    return {
        "bytes_per_article": (after["used_memory"] - before["used_memory"]) / n,
        "rss_bytes_per_article": (after["used_memory_rss"] - before["used_memory_rss"]) / n,
    }


def percentiles(values: np.ndarray | list[float]) -> dict[str, float]:
    """p50, p90, p99 and max."""
    a = np.asarray(values, dtype=np.float64)
    return {
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
    }


def unlink_matching(client: redis.Redis, pattern: str) -> int:
    """Delete every key matching pattern; returns how many."""
    n = 0
    batch: list[bytes] = []
    for k in client.scan_iter(pattern, count=10_000):
        batch.append(k)
        if len(batch) == 10_000:
            n += client.unlink(*batch)
            batch.clear()
    if batch:
        n += client.unlink(*batch)
    return n


def settle(client: redis.Redis) -> None:
    """Let lazy freeing finish before reading memory."""
    for _ in range(100):
        if int(client.info("memory").get("lazyfree_pending_objects", 0)) == 0:
            return
        time.sleep(0.1)


def redis_server(workdir: Path) -> tuple[RedisProcess, redis.Redis]:
    """A private redis-server without persistence (the index, not the disk, is measured) and a client."""
    server = start_redis(workdir, persistent=False, timeout=30)
    return server, redis.Redis.from_url(server.url, socket_timeout=600)


def machine() -> dict[str, Any]:
    """CPU, cores and RAM of this machine."""
    cpu, mem_kb = "unknown", 0
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    with contextlib.suppress(OSError, StopIteration), open("/proc/meminfo") as f:
        mem_kb = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kb / 2**20, 1), "kernel": platform.release()}


# ---- the corpus, fingerprinted ----


@dataclass
class Data:
    """Everything fingerprinted before any timing starts."""

    indexed: Batch  # articles 0..n-1
    copies: Batch  # near-copies of indexed articles
    copy_of: list[tuple[int, str]]  # (article, kind) of each near-copy
    fresh: Batch  # articles n..n+fresh-1, never indexed
    e2e_texts: list[tuple[str, int, str]]  # articles fingerprinted inside the timed end-to-end run
    seconds_wall: float


def _runs(start: int, stop: int, chunk: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk, stop)) for a in range(start, stop, chunk)]


def prepare(args: argparse.Namespace) -> Data:
    """Generate and fingerprint the corpus with one process per core."""
    with_ds = not args.skip_datasketch
    chunk = 2000
    t0 = time.perf_counter()
    pool_args = {"initializer": _init_worker, "initargs": (args.seed, max(1000, args.n // 4))}
    with mp.get_context("fork").Pool(os.cpu_count() or 2, **pool_args) as pool:
        parts: dict[int, Batch] = {}
        tasks = [(a, b, with_ds) for a, b in _runs(0, args.n, chunk)]
        for done, (start, b) in enumerate(pool.imap_unordered(_fingerprint_articles, tasks), 1):
            parts[start] = b
            if done % 50 == 0 or done == len(tasks):
                print(f"  {min(done * chunk, args.n):>9,} articles in {time.perf_counter() - t0:5.0f} s", flush=True)
        indexed = _concat([parts[k] for k in sorted(parts)])
        sources = np.linspace(0, args.n - 1, args.copies).astype(int).tolist()
        copy_of = [(int(i), KINDS[j % len(KINDS)]) for j, i in enumerate(sources)]
        copies = _concat(
            pool.map(_fingerprint_copies, [(copy_of[a:b], with_ds) for a, b in _runs(0, args.copies, 500)])
        )
        fresh_tasks = [(a, b, with_ds) for a, b in _runs(args.n, args.n + args.fresh, chunk)]
        fresh = _concat([b for _, b in sorted(pool.map(_fingerprint_articles, fresh_tasks), key=lambda t: t[0])])
        base = args.n + args.fresh
        e2e = [t for part in pool.map(_texts, _runs(base, base + args.e2e, chunk)) for t in part]
    return Data(indexed, copies, copy_of, fresh, e2e, time.perf_counter() - t0)


# ---- storyline-ingest ----


def ours_insert(args: argparse.Namespace, data: Data, client: redis.Redis, url: str) -> dict[str, Any]:
    """Index every article with --clients processes; then measure memory without the job claims."""
    n = args.n
    before = used_memory(client)
    _STATE.update(batch=data.indexed, url=url)
    print(f"storyline-ingest: inserting {n:,} articles with {args.clients} client processes", flush=True)
    client.config_resetstat()
    cpu = CpuUse()
    wall, results = run_parallel(_insert_share, [(k, args.clients, n) for k in range(args.clients)])
    shares = cpu.shares()
    evalsha = client.info("commandstats")["cmdstat_evalsha"]
    with_jobs = used_memory(client)
    jobs = unlink_matching(client, "bench:job:*")
    settle(client)
    after = used_memory(client)
    fp_hash = int(client.memory_usage(keys.dedup_fingerprints(seed=False), samples=0) or 0)
    memory = per_article(before, after, n)
    print(f"  {n / wall:,.0f} inserts/s, {memory['bytes_per_article']:.0f} B/article", flush=True)
    return {
        "memory": {
            **memory,
            "before": before,
            "after": after,
            "fingerprint_hash_bytes_per_article": fp_hash / n,
            "job_claim_bytes_per_article": (with_jobs["used_memory"] - after["used_memory"]) / n,
            "job_hashes_deleted": jobs,
            "keys": int(client.dbsize()),
        },
        "insert": {
            "clients": args.clients,
            "seconds": wall,
            "per_second": n / wall,
            "latency_us_under_load": percentiles(np.concatenate([lat for _, lat in results])),
            "redis_us_per_claim": float(evalsha["usec_per_call"]),
            "machine_cpu_percent": shares,
        },
    }


def ours_queries(args: argparse.Namespace, data: Data, client: redis.Redis, url: str) -> dict[str, Any]:
    """One client, one claim at a time: near-copies and fresh articles mixed, against the full index."""
    index = DedupIndex(client, Settings(redis_url=url))
    queries: list[tuple[str, Batch, int, str | None]] = [
        (kind, data.copies, j, keys.digest(url_of(i, int(data.indexed.outlet[i]))))
        for j, (i, kind) in enumerate(data.copy_of)
    ]
    queries += [("fresh", data.fresh, j, None) for j in range(len(data.fresh.title))]
    client.config_resetstat()
    cpu = CpuUse()
    lat: dict[str, list[float]] = {}
    found: dict[str, list[bool]] = {}
    scores: list[float] = []
    for q in np.random.default_rng([args.seed, 9]).permutation(len(queries)):
        kind, b, j, expected = queries[q]
        fp = fp_of(b, j)
        cand = candidate(url_of(j, int(b.outlet[j]), kind), int(b.outlet[j]), b.title[j], fp, int(b.text_len[j]))
        s = time.perf_counter()
        res = index.claim(f"bench:query:{q}", cand, fp)
        lat.setdefault(kind, []).append((time.perf_counter() - s) * 1e6)
        dup = res.duplicate
        found.setdefault(kind, []).append(dup is not None and (expected is None or dup.of == expected))
        if expected is not None and dup is not None:
            scores.append(dup.score)
    near = [x for k, v in found.items() if k != "fresh" for x in v]
    return {
        "count": len(queries),
        "latency_us": percentiles([x for v in lat.values() for x in v]),
        "latency_us_by_kind": {k: percentiles(v) for k, v in lat.items()},
        "redis_us_per_claim": float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]),
        "near_copy_recall": float(np.mean(near)),
        "recall_by_kind": {k: float(np.mean(v)) for k, v in found.items() if k != "fresh"},
        "near_copy_score_p10": float(np.percentile(scores, 10)) if scores else None,
        "fresh_false_positives": int(np.sum(found["fresh"])),
        "fresh_count": len(found["fresh"]),
        "machine_cpu_percent": cpu.shares(),
    }


def ours_end_to_end(args: argparse.Namespace, data: Data, url: str) -> dict[str, Any]:
    """The same client processes fingerprint each text, then claim it: a worker's work after extraction."""
    _STATE.update(texts=data.e2e_texts, e2e_base=args.n + args.fresh, url=url)
    cpu = CpuUse()
    wall, _ = run_parallel(_e2e_share, [(k, args.clients) for k in range(args.clients)])
    n = len(data.e2e_texts)
    return {"articles": n, "seconds": wall, "per_second": n / wall, "machine_cpu_percent": cpu.shares()}


def bench_ours(args: argparse.Namespace, data: Data, workdir: Path) -> dict[str, Any]:
    """Insert, memory, claim latency and quality of the project's index."""
    server, client = redis_server(workdir / "ours")
    try:
        result = {"redis_version": client.info("server")["redis_version"]}
        result |= ours_insert(args, data, client, server.url)
        result["query"] = ours_queries(args, data, client, server.url)
        result["end_to_end"] = ours_end_to_end(args, data, server.url)
        return result
    finally:
        server.stop()


# ---- datasketch MinHashLSH with Redis storage ----


def _ds_lsh(url: str) -> Any:
    from datasketch import MinHashLSH

    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    storage = {"type": "redis", "basename": b"dsbench", "redis": {"host": "127.0.0.1", "port": port}}
    return MinHashLSH(threshold=DS_THRESHOLD, num_perm=DS_PERM, storage_config=storage)


def _ds_insert_share(task: tuple[int, int, int]) -> float:
    from datasketch import LeanMinHash

    k, step, n = task
    b: Batch = _STATE["batch"]
    lsh = _ds_lsh(_STATE["url"])
    _STATE["barrier"].wait()
    t0 = time.perf_counter()
    with lsh.insertion_session() as session:
        for i in range(k, n, step):
            key = keys.digest(url_of(i, int(b.outlet[i])))
            # check_duplication=False: the default costs one HEXISTS round trip per insert
            session.insert(key, LeanMinHash(seed=1, hashvalues=b.ds[i], scheme="affine32"), check_duplication=False)
    return time.perf_counter() - t0


def bench_datasketch(args: argparse.Namespace, data: Data, workdir: Path) -> dict[str, Any]:
    """The same articles and queries through datasketch's MinHashLSH on its Redis storage."""
    from datasketch import LeanMinHash

    n = min(args.n, args.datasketch_n or args.n)
    server, client = redis_server(workdir / "datasketch")
    try:
        before = used_memory(client)
        _STATE.update(batch=data.indexed, url=server.url)
        print(f"datasketch: inserting {n:,} articles with {args.clients} client processes", flush=True)
        cpu = CpuUse()
        wall, _ = run_parallel(_ds_insert_share, [(k, args.clients, n) for k in range(args.clients)])
        insert_shares = cpu.shares()
        settle(client)
        after = used_memory(client)
        memory = per_article(before, after, n)
        print(f"  {n / wall:,.0f} inserts/s, {memory['bytes_per_article']:,.0f} B/article", flush=True)

        lsh = _ds_lsh(server.url)
        queries: list[tuple[str, np.ndarray, str | None]] = [
            (kind, data.copies.ds[j], keys.digest(url_of(i, int(data.indexed.outlet[i]))))
            for j, (i, kind) in enumerate(data.copy_of)
            if i < n
        ]
        queries += [("fresh", data.fresh.ds[j], None) for j in range(len(data.fresh.title))]
        cpu = CpuUse()
        lat: list[float] = []
        found: dict[str, list[bool]] = {}
        for q in np.random.default_rng([args.seed, 9]).permutation(len(queries)):
            kind, hv, expected = queries[q]
            m = LeanMinHash(seed=1, hashvalues=hv, scheme="affine32")
            s = time.perf_counter()
            hits = lsh.query(m)
            lat.append((time.perf_counter() - s) * 1e6)
            found.setdefault(kind, []).append(bool(hits) if expected is None else expected in hits)
        near = [x for k, v in found.items() if k != "fresh" for x in v]
        return {
            "redis_version": client.info("server")["redis_version"],
            "n": n,
            "threshold": DS_THRESHOLD,
            "num_perm": DS_PERM,
            "bands_rows": [lsh.b, lsh.r],
            "memory": {**memory, "before": before, "after": after},
            "insert": {
                "clients": args.clients,
                "seconds": wall,
                "per_second": n / wall,
                "machine_cpu_percent": insert_shares,
            },
            "query": {
                "count": len(lat),
                "latency_us": percentiles(lat),
                "near_copy_recall": float(np.mean(near)) if near else None,
                "recall_by_kind": {k: float(np.mean(v)) for k, v in found.items() if k != "fresh"},
                "fresh_with_candidates": int(np.sum(found["fresh"])),
                "fresh_count": len(found["fresh"]),
                "machine_cpu_percent": cpu.shares(),
            },
        }
    finally:
        server.stop()


# ---- report ----


def table(result: dict[str, Any]) -> str:
    """The markdown table of docs/benchmarks.md."""
    o, d = result["ours"], result.get("datasketch")

    def ms(us: float) -> str:
        return f"{us / 1000:.2f} ms"

    ds_rows = ["not run"] * 7
    if d:
        ds_rows = [
            f"{d['memory']['bytes_per_article']:,.0f} B",
            f"{d['memory']['rss_bytes_per_article']:,.0f} B",
            f"{d['insert']['per_second']:,.0f}",
            ms(d["query"]["latency_us"]["p50"]),
            ms(d["query"]["latency_us"]["p99"]),
            f"{d['query']['near_copy_recall']:.3f} (candidates)",
            f"{d['query']['fresh_with_candidates']} / {d['query']['fresh_count']} (any candidate)",
        ]
    rows = [
        ("Redis memory per article (used_memory)", f"{o['memory']['bytes_per_article']:.0f} B", "< 600 B"),
        ("Redis RSS per article", f"{o['memory']['rss_bytes_per_article']:.0f} B", ""),
        (
            f"inserts per second, {o['insert']['clients']} client processes",
            f"{o['insert']['per_second']:,.0f}",
            "> 5,000",
        ),
        ("query latency p50, one client", ms(o["query"]["latency_us"]["p50"]), ""),
        ("query latency p99, one client", ms(o["query"]["latency_us"]["p99"]), "< 2 ms"),
        ("near-copy recall", f"{o['query']['near_copy_recall']:.3f}", "~1.0"),
        (
            "false positives on fresh articles",
            f"{o['query']['fresh_false_positives']} / {o['query']['fresh_count']}",
            "0",
        ),
    ]
    out = ["| metric | storyline-ingest | datasketch MinHashLSH (Redis) | target |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {t} |" for (a, b, t), c in zip(rows, ds_rows, strict=True)]
    e2e = o["end_to_end"]
    out.append(f"| end to end: fingerprint + claim per second | {e2e['per_second']:,.0f} | | |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (and JSON with --json-out)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="articles to index")
    ap.add_argument("--clients", type=int, default=3, help="client processes inserting concurrently")
    ap.add_argument("--copies", type=int, default=2000, help="near-copy queries (four kinds in turn)")
    ap.add_argument("--fresh", type=int, default=2000, help="fresh-article queries")
    ap.add_argument("--e2e", type=int, default=40_000, help="articles in the end-to-end (fingerprint + claim) run")
    ap.add_argument("--seed", type=int, default=20250318)
    ap.add_argument("--skip-datasketch", action="store_true")
    ap.add_argument("--datasketch-n", type=int, default=0, help="index only this many articles in datasketch")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--cache", type=Path, help="keep the fingerprinted corpus in this file and reuse it (development)")
    args = ap.parse_args(argv)

    started = datetime.now(UTC)
    print(f"fingerprinting {args.n:,} articles and {args.copies + args.fresh:,} queries", flush=True)
    cache_key = (args.n, args.copies, args.fresh, args.e2e, args.seed, args.skip_datasketch)
    if args.cache and args.cache.exists() and (cached := pickle.loads(args.cache.read_bytes()))[0] == cache_key:
        data = cached[1]
    else:
        data = prepare(args)
        if args.cache:
            args.cache.write_bytes(pickle.dumps((cache_key, data), protocol=5))
    gc.collect()
    gc.freeze()  # forked clients then share the arrays instead of copying pages as refcounts change
    result: dict[str, Any] = {
        "command": " ".join(["python benchmarks/bench_dedup.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "parameters": {
            "n": args.n,
            "clients": args.clients,
            "copies": args.copies,
            "fresh": args.fresh,
            "e2e": args.e2e,
            "seed": args.seed,
            "shingle": dedup.SHINGLE_SIZE,
            "sample_scale": dedup.SAMPLE_SCALE,
            "max_stored": dedup.MAX_STORED,
            "max_queried": dedup.MAX_QUERIED,
            "fp_buckets": dedup.FP_BUCKETS,
            "near_duplicate_threshold": Settings().near_duplicate_threshold,
        },
        "fingerprinting": {
            "wall_seconds": data.seconds_wall,
            "ours_cpu_us_per_article": data.indexed.seconds_ours / args.n * 1e6,
            "datasketch_cpu_us_per_article": data.indexed.seconds_ds / args.n * 1e6,
            "mean_words": float(data.indexed.words.mean()),
            "mean_samples": float(data.indexed.n_samples.mean()),
        },
    }
    workdir = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
    try:
        result["ours"] = bench_ours(args, data, workdir)
        if not args.skip_datasketch:
            result["datasketch"] = bench_datasketch(args, data, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["elapsed_seconds"] = (datetime.now(UTC) - started).total_seconds()
    print(table(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
