"""Dedup: pure fingerprints, and claims against a real Redis (copy kinds, non-copies, races, expiry)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import redis

from ingest import dedup, keys
from ingest.config import Settings
from ingest.dedup import Candidate, DedupIndex, fingerprint

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "dedup" / "articles.json").read_text())
SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def text(name: str, paragraphs: list[str] | None = None) -> str:
    return "\n".join(paragraphs if paragraphs is not None else FIXTURES[name]["paragraphs"])


def cand(url: str, body: str, title: str = "A title") -> Candidate:
    from ingest.urls import host_of, item_id

    return Candidate(item_id(url), item_id(url + "#r"), url, host_of(url), title, len(body))


class Claimer:
    """Claims texts under fresh job keys, as the pipeline does."""

    def __init__(self, index: DedupIndex) -> None:
        self.index = index
        self.n = 0

    def __call__(self, url: str, body: str, title: str = "A title") -> dedup.Claim:
        self.n += 1
        return self.index.claim(keys.job(f"test{self.n}"), cand(url, body, title), fingerprint(body))


@pytest.fixture
def claim(r: redis.Redis, settings: Settings) -> Claimer:
    return Claimer(DedupIndex(r, settings))


# ---- pure ----


def test_content_digest_ignores_case_punctuation_and_spacing() -> None:
    a = fingerprint("The strike began, on Monday!  Trains stopped.")
    b = fingerprint("the strike began on monday\ntrains stopped")
    assert a.content == b.content
    assert a.content != fingerprint("The strike began on Tuesday. Trains stopped.").content


def test_samples_of_a_teaser_are_samples_of_its_article() -> None:
    full = fingerprint(text("rail_strike"))
    teaser = fingerprint(text("rail_strike", FIXTURES["rail_strike"]["paragraphs"][:3]))
    # below the article's cut (its MAX_QUERIED smallest samples), the teaser's samples are its samples
    kept = [v for v in teaser.samples if v <= full.samples[-1]]
    assert kept and set(kept) <= set(full.samples)
    assert list(full.samples) == sorted(full.samples)
    assert all(s < dedup.SAMPLE_LIMIT for s in full.samples)


def test_sampling_rate_is_about_one_in_scale() -> None:
    shingles = samples = 0
    for name in FIXTURES:
        fp = fingerprint(text(name))
        assert len(fp.samples) == min(fp.total, dedup.MAX_QUERIED)
        shingles += fp.words - dedup.SHINGLE_SIZE + 1
        samples += fp.total
    assert 0.7 / dedup.SAMPLE_SCALE < samples / shingles < 1.4 / dedup.SAMPLE_SCALE


def test_long_texts_keep_only_their_smallest_samples() -> None:
    body = " ".join(f"{text(n)} part {i}" for i in range(4) for n in FIXTURES)
    fp = fingerprint(body)
    assert len(fp.samples) == dedup.MAX_QUERIED < fp.total
    assert list(fp.samples) == sorted(fp.samples)


# ---- claims against Redis ----

ORIGINAL = "https://northern-ledger.example/news/rail-strike"


def variants() -> dict[str, str]:
    paras = FIXTURES["rail_strike"]["paragraphs"]
    reword = {
        "walked out at dawn": "stopped work early",
        "said": "stated",
        "Monday": "Monday morning",
        "commuters": "passengers",
        "company": "operator",
    }
    reworded = []
    for para in paras:
        changed = para
        for old, new in reword.items():
            changed = changed.replace(old, new)
        reworded.append(changed)
    return {
        "verbatim_other_site": text("", paras),
        "teaser_first_third": text("", paras[: len(paras) // 3]),
        "with_boilerplate": text(
            "",
            [
                "Advertisement. Subscribe to the Harbour Gazette for unlimited access from one euro a week.",
                *paras,
                "This story was first published by our partners and is republished under licence.",
                "Follow the Harbour Gazette on social media for the latest regional news and weather.",
            ],
        ),
        "paragraphs_dropped_and_added": text(
            "", [*paras[:3], *paras[5:], "Additional reporting by the Harbour Gazette regional desk."]
        ),
        "lightly_reworded": text("", reworded),
    }


@pytest.mark.parametrize("kind", list(variants()))
def test_copy_kinds_are_near_duplicates_of_the_original(claim: Claimer, kind: str) -> None:
    first = claim(ORIGINAL, text("rail_strike"))
    assert first.accepted
    copy = claim(f"https://harbour-gazette.example/syndicated/{kind}", variants()[kind])
    assert copy.duplicate is not None, kind
    assert copy.duplicate.of == first.item_id
    assert copy.duplicate.method in ("near", "content")
    assert copy.duplicate.score >= 0.6


def test_the_original_arriving_after_its_teaser_is_the_duplicate(claim: Claimer) -> None:
    teaser = claim("https://harbour-gazette.example/teaser", variants()["teaser_first_third"])
    full = claim(ORIGINAL, text("rail_strike"))
    assert teaser.accepted
    assert full.duplicate is not None and full.duplicate.of == teaser.item_id


def test_a_long_original_after_its_long_teaser_is_the_duplicate(claim: Claimer) -> None:
    # Both are long enough to be cut: the teaser stores only its MAX_STORED smallest samples and the
    # original looks up only its MAX_QUERIED smallest, a narrower range than the teaser's, so the
    # claim must count the teaser's samples on that range from its record.
    paras = [p for name in FIXTURES for p in FIXTURES[name]["paragraphs"]]
    body, teaser = text("", paras), text("", paras[: len(paras) // 3])
    assert dedup._queried16(fingerprint(body)) < dedup._threshold16(fingerprint(teaser)) < dedup.FULL_THRESHOLD16
    first = claim("https://harbour-gazette.example/long-teaser", teaser)
    full = claim("https://northern-ledger.example/long-report", body)
    assert first.accepted
    assert full.duplicate is not None and full.duplicate.of == first.item_id
    assert full.duplicate.method == "near" and full.duplicate.score >= 0.6


def test_a_short_brief_keeps_a_full_sketch() -> None:
    # the sampling rate is only a floor: a brief of about 90 words still gets every stored sample
    fp = fingerprint(text("ferry_brief"))
    assert fp.words < 100
    assert len(fp.samples) == dedup.MAX_STORED


def test_an_edited_copy_of_a_short_brief_is_a_near_duplicate(claim: Claimer) -> None:
    paras = FIXTURES["ferry_brief"]["paragraphs"]
    edited = [
        "MARROW ISLAND - " + paras[0].replace("on Thursday", "on Thursday morning"),
        paras[1].replace("travellers", "passengers"),
        paras[2].replace("criticized", "criticised").replace("company", "operator"),
        "Reporting by the island desk.",
    ]
    first = claim("https://island-wire.example/ferry", text("ferry_brief"))
    copy = claim("https://harbour-gazette.example/ferry-copy", text("", edited))
    assert first.accepted
    assert copy.duplicate is not None and copy.duplicate.of == first.item_id
    assert copy.duplicate.method == "near" and copy.duplicate.score >= 0.6


@pytest.mark.parametrize(
    "a, b",
    [
        ("rail_strike", "rail_strike_other_outlet"),  # same event, same quote, own writing
        ("rail_strike", "observatory"),
        ("harbour_fire", "library_reopening"),
        ("ferry_brief", "ferry_brief_other_outlet"),  # two short briefs on one event, one shared phrase
    ],
)
def test_different_articles_are_not_duplicates(claim: Claimer, a: str, b: str) -> None:
    assert claim(f"https://{FIXTURES[a]['host']}/{a}", text(a)).accepted
    assert claim(f"https://{FIXTURES[b]['host']}/{b}", text(b)).accepted


def test_exact_content_under_another_url(claim: Claimer) -> None:
    first = claim(ORIGINAL, text("rail_strike"))
    again = claim("https://mirror.example/copy", text("rail_strike").upper())
    assert again.duplicate is not None
    assert (again.duplicate.method, again.duplicate.of, again.duplicate.score) == ("content", first.item_id, 1.0)


def test_same_canonical_url_same_text_is_a_url_duplicate(claim: Claimer) -> None:
    first = claim(ORIGINAL, text("rail_strike"))
    again = claim(ORIGINAL, text("rail_strike"))
    assert again.duplicate is not None and again.duplicate.method == "url"
    assert again.duplicate.of == first.item_id
    assert again.item_id != first.item_id


def test_same_canonical_url_changed_text_is_a_revision(claim: Claimer) -> None:
    paras = FIXTURES["rail_strike"]["paragraphs"]
    first = claim(ORIGINAL, text("rail_strike"), title="Rail strike begins")
    updated = text("", [*paras, "Update: the union has agreed to meet the mediator on Tuesday afternoon."])
    rev = claim(ORIGINAL, updated, title="Rail strike begins; talks set for Tuesday")
    assert rev.duplicate is not None and rev.duplicate.method == "revision"
    assert rev.duplicate.of == first.item_id
    assert rev.duplicate.changes == {
        "title_changed": True,
        "old_text_length": len(text("rail_strike")),
        "new_text_length": len(updated),
    }


def test_near_copy_on_the_same_host_is_a_revision(claim: Claimer) -> None:
    paras = FIXTURES["rail_strike"]["paragraphs"]
    first = claim(ORIGINAL, text("rail_strike"))
    rev = claim(ORIGINAL + "-updated", text("", paras[:-1]))
    assert rev.duplicate is not None and rev.duplicate.method == "revision"
    assert rev.duplicate.of == first.item_id and rev.duplicate.changes is not None


def test_claim_is_idempotent_per_job(r: redis.Redis, settings: Settings) -> None:
    index = DedupIndex(r, settings)
    body = text("observatory")
    first = index.claim(keys.job("j1"), cand("https://science-desk.example/a", body), fingerprint(body))
    seq = r.get(keys.DEDUP_SEQ)
    again = index.claim(keys.job("j1"), cand("https://science-desk.example/a", body), fingerprint(body))
    assert first == again and first.accepted
    assert r.get(keys.DEDUP_SEQ) == seq  # nothing indexed twice


def test_seed_copies_are_duplicates_of_the_seed(r: redis.Redis, settings: Settings, claim: Claimer) -> None:
    index = DedupIndex(r, settings)
    assert index.index_seeds(SEEDS) == 2
    assert index.index_seeds(SEEDS) == 2  # idempotent
    seed = next(SEEDS.glob("003_*.txt"))
    paras = [p for p in seed.read_text().splitlines() if p.strip()]
    copy = claim("https://syndicate.example/seed-teaser", "\n".join(paras[: max(2, len(paras) // 3)]))
    assert copy.duplicate is not None and copy.duplicate.of == f"seed:{seed.name}"


def test_racing_workers_publish_one_of_two_copies(redis_url: str, settings: Settings) -> None:
    copies = [text("harbour_fire"), text("", [*FIXTURES["harbour_fire"]["paragraphs"], "Reporting by agencies."])]
    results: list[dedup.Claim] = []
    barrier = threading.Barrier(2)

    def worker(i: int) -> None:
        client = redis.Redis.from_url(redis_url)
        index = DedupIndex(client, settings)
        barrier.wait()
        url = f"https://outlet{i}.example/fire"
        results.append(index.claim(keys.job(f"race{i}"), cand(url, copies[i]), fingerprint(copies[i])))
        client.close()

    for _ in range(20):
        redis.Redis.from_url(redis_url).flushall()
        results.clear()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(c.accepted for c in results) == [False, True]


def test_fingerprints_expire_with_their_generation(r: redis.Redis, settings: Settings) -> None:
    index = DedupIndex(r, settings)
    body = text("library_reopening")
    t0 = time.time()  # real time: Redis applies the generation's EXPIREAT for real
    assert index.claim(keys.job("old"), cand("https://city-notes.example/a", body), fingerprint(body), now=t0).accepted
    within = t0 + 30 * 86400
    dup = index.claim(keys.job("mid"), cand("https://copy.example/a", body), fingerprint(body), now=within)
    assert dup.duplicate is not None
    beyond = t0 + (settings.dedup_retention_days + 20) * 86400
    fresh = index.claim(keys.job("new"), cand("https://copy.example/b", body), fingerprint(body), now=beyond)
    assert fresh.accepted
    ttl = max(r.ttl(k) for k in r.scan_iter(f"{keys.DEDUP_PREFIX}*:url:*"))
    assert ttl > 0  # regular generations carry an expiry; seeds are the only ones without


def test_seed_generation_never_expires(r: redis.Redis, settings: Settings) -> None:
    DedupIndex(r, settings).index_seeds(SEEDS)
    seed_keys = list(r.scan_iter(f"{keys.DEDUP_PREFIX}{keys.SEED_GENERATION}:*"))
    assert seed_keys and all(r.ttl(k) == -1 for k in seed_keys)
