"""Hostile servers: every misbehaviour ends in a clear outcome within the configured deadlines.

Each case runs through the pipeline (fetch, clean, dedup, publish) in this process with small
test deadlines and asserts its outcome and how long it took; one batch of all of them then goes
through a real worker, which must give every URL its outcome within the bound of
ingest.limits.outcome_bound and still be running afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest import keys, limits, pipeline
from ingest.config import Settings
from ingest.errors import TransientError
from ingest.models import Job
from ingest.urls import job_id
from tests.hostile import (
    Behaviour,
    Hostile,
    bomb,
    delayed,
    endless_chunks,
    html_page,
    multi_member_gzip,
    redirect,
    send,
    short_body,
    slow_body,
    slow_headers,
)
from tests.test_e2e import Worker, env_for, ingest

pytestmark = pytest.mark.timeout(300)

FETCH_DEADLINE = 1.5
ATTEMPT_DEADLINE = 3.0
MAX_BODY = 256 * 1024
ORIGINS = 6
# Slack for a loaded 2-core machine on top of a deadline: scheduling, extraction, Redis.
SLACK = 2.0


def hostile_settings(redis_url: str, data_dir: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        allow_private_networks=True,
        host_delay=0.0,
        data_dir=data_dir,
        connect_timeout=1.0,
        read_timeout=1.0,
        fetch_deadline=FETCH_DEADLINE,
        attempt_deadline=ATTEMPT_DEADLINE,
        max_body_bytes=MAX_BODY,
        max_redirects=5,
        visibility_timeout=60,
        task_max_retries=1,
    )


def slow_chain(server: Hostile, hops: int, delay: float, tag: str) -> str:
    """A redirect chain of `hops` hops over the origins, each hop answering after `delay` seconds."""
    for n in range(hops):
        target = server.url(f"/{tag}/{n + 1}", (n + 1) % ORIGINS)
        server.behaviours[f"/{tag}/{n}"] = delayed(delay, redirect(target))
    server.behaviours[f"/{tag}/{hops}"] = send(
        html_page(f"End of {tag}", f"{tag} chain words"), Content_Type="text/html"
    )
    return server.url(f"/{tag}/0")


# path -> (behaviour, expected outcome: "article" or a dead-letter / transient reason)
CASES: dict[str, tuple[Behaviour, str]] = {
    "/slow-headers": (slow_headers, "timeout"),
    "/slow-body": (slow_body, "timeout"),
    "/late-answer": (delayed(30, send(b"too late")), "timeout"),
    "/gzip-bomb": (bomb("gzip"), "too_large"),
    "/deflate-bomb": (bomb("deflate"), "too_large"),
    "/brotli": (send(b"\x1b\xff\xff\x00" * 64, Content_Type="text/html", Content_Encoding="br"), "bad_encoding"),
    "/gzip-twice": (send(b"x", Content_Type="text/html", Content_Encoding="gzip, gzip"), "bad_encoding"),
    "/corrupt-gzip": (
        send(b"\x1f\x8b\x08\x00garbage" * 20, Content_Type="text/html", Content_Encoding="gzip"),
        "bad_encoding",
    ),
    "/content-length-short": (short_body, "protocol_error"),
    "/content-length-huge": (send(b"<html>", Content_Type="text/html", Content_Length=10**12), "too_large"),
    "/endless-chunked": (endless_chunks, "too_large"),
    "/multi-member-gzip": (multi_member_gzip(html_page("Two members", "gzip member harmonica")), "article"),
    "/no-content": (send(b"", "204 No Content", Content_Length=0), "no_content"),
    "/image": (send(html_page("Image", "png pretender"), Content_Type="image/png"), "not_html"),
    "/loop-a": (redirect("/loop-b"), "redirect_loop"),
    "/loop-b": (redirect("/loop-a"), "redirect_loop"),
    "/bad-location-ipv6": (redirect("http://[::1"), "invalid_url"),
    "/bad-location-host": (redirect("http://[example.com]/x"), "invalid_url"),
    "/bad-location-control": (redirect("/x\x01y"), "invalid_url"),
    "/cyrillic-1251": (
        send(
            html_page("Перемирие", "энергетика удары пауза").decode().encode("cp1251"),
            Content_Type="text/html; charset=windows-1251",
        ),
        "article",
    ),
}
for n in range(8):
    CASES[f"/many/{n}"] = (redirect(f"/many/{n + 1}"), "too_many_redirects")


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    server = Hostile(origins=ORIGINS)
    server.behaviours.update({path: behaviour for path, (behaviour, _) in CASES.items()})
    yield server
    server.close()


def outcome(ctx: pipeline.Context, r: redis.Redis, url: str) -> str:
    """Run one attempt of url through the pipeline: 'article', a dead-letter reason, or a transient reason."""
    try:
        result = pipeline.run(ctx, Job(job_id(url), url))
    except TransientError as exc:
        return exc.reason
    if result == "deadletter":
        letters = [json.loads(f[b"data"]) for _, f in r.xrange(keys.DEADLETTER)]
        return next(d["reason"] for d in letters if d["url"] == url)
    return result


@pytest.fixture
def ctx(redis_url: str, tmp_path: Path, r: redis.Redis) -> Iterator[pipeline.Context]:
    context = pipeline.Context.create(hostile_settings(redis_url, tmp_path / "var"), r)
    yield context
    context.fetcher.close()


@pytest.mark.parametrize("path", [p for p in CASES if not p.startswith("/many/") or p == "/many/0"])
def test_each_hostile_case_ends_as_expected_within_the_attempt_deadline(
    hostile: Hostile, ctx: pipeline.Context, r: redis.Redis, path: str
) -> None:
    started = time.monotonic()
    got = outcome(ctx, r, hostile.url(path))
    took = time.monotonic() - started
    assert got == CASES[path][1]
    assert took < ATTEMPT_DEADLINE + SLACK


def test_multi_member_gzip_is_decoded_whole(hostile: Hostile, ctx: pipeline.Context) -> None:
    fetched = ctx.fetcher.fetch_article(hostile.url("/multi-member-gzip"))
    assert fetched.body == html_page("Two members", "gzip member harmonica")


def test_slow_chain_over_six_origins_is_one_attempt_under_one_deadline(
    hostile: Hostile, ctx: pipeline.Context, r: redis.Redis
) -> None:
    # Every hop answers well inside the per-response deadline, but five of them do not fit in
    # the attempt's: the attempt ends as a timeout at its deadline, not at the task's limit.
    url = slow_chain(hostile, hops=5, delay=FETCH_DEADLINE * 0.6, tag="slowchain")
    started = time.monotonic()
    assert outcome(ctx, r, url) == "timeout"
    assert time.monotonic() - started < ATTEMPT_DEADLINE + SLACK
    # the same chain, quick, is an article
    assert outcome(ctx, r, slow_chain(hostile, hops=5, delay=0.05, tag="quickchain")) == "article"


def test_slow_robots_txt_spends_the_same_budget(hostile: Hostile, ctx: pipeline.Context, r: redis.Redis) -> None:
    origin = 3
    hostile.behaviours["/robots.txt"] = delayed(0.8, send(b"User-agent: *\nAllow: /\n"))
    try:
        hostile.behaviours["/after-robots"] = delayed(0.8, send(b"<html></html>", Content_Type="text/html"))
        hostile.behaviours["/hop-robots"] = delayed(0.8, redirect(hostile.url("/after-robots", origin + 1)))
        started = time.monotonic()
        assert outcome(ctx, r, hostile.url("/hop-robots", origin)) == "timeout"
        assert time.monotonic() - started < ATTEMPT_DEADLINE + SLACK
    finally:
        del hostile.behaviours["/robots.txt"]


def test_a_real_worker_gives_every_hostile_url_its_outcome_in_time_and_survives(
    hostile: Hostile, redis_url: str, tmp_path: Path, r: redis.Redis
) -> None:
    settings = hostile_settings(redis_url, tmp_path / "var")
    env = env_for(
        redis_url,
        tmp_path,
        INGEST_CONNECT_TIMEOUT="1",
        INGEST_READ_TIMEOUT="1",
        INGEST_FETCH_DEADLINE=str(FETCH_DEADLINE),
        INGEST_ATTEMPT_DEADLINE=str(ATTEMPT_DEADLINE),
        INGEST_MAX_BODY_BYTES=str(MAX_BODY),
        INGEST_VISIBILITY_TIMEOUT=str(settings.visibility_timeout),
        INGEST_TASK_MAX_RETRIES=str(settings.task_max_retries),
    )
    paths = [p for p in CASES if not p.startswith("/many/") or p == "/many/0"]
    urls = [hostile.url(p) for p in paths] + [
        slow_chain(hostile, hops=5, delay=FETCH_DEADLINE * 0.6, tag="workerchain")
    ]
    expected = [CASES[p][1] for p in paths] + ["timeout"]
    bound = limits.outcome_bound(settings)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        started = time.monotonic()
        cp = ingest(env, "enqueue", "--wait", "--json", "--timeout", str(int(bound + 60)), *urls, timeout=bound + 120)
        took = time.monotonic() - started
        assert cp.returncode == 0, cp.stdout + cp.stderr + worker.log.read_text()[-3000:]
        rows = [json.loads(line) for line in cp.stdout.splitlines()]
        got = [row.get("reason") or row["outcome"] for row in rows]
        assert got == expected
        assert took < bound + 30  # the worker's start-up is in there too
        assert worker.proc.poll() is None, "the worker died"
    finally:
        worker.stop()
