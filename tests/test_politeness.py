"""Per-host politeness shared through Redis: slots, limits, and real spacing between workers."""

from __future__ import annotations

import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
import redis

from ingest import keys
from ingest.config import Settings
from ingest.errors import TransientError
from ingest.fetch import Fetcher
from ingest.politeness import Politeness
from tests.httpsite import Page, Site


def polite(settings: Settings, r: redis.Redis | None, delay: float, max_wait: float = 20.0) -> Politeness:
    return Politeness(settings.model_copy(update={"host_delay": delay, "max_host_wait": max_wait}), r)


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
def test_slots_are_spaced_per_host(settings: Settings, r: redis.Redis, shared: bool) -> None:
    p = polite(settings, r if shared else None, delay=2.0)
    assert p.reserve("a.example") == 0
    assert p.reserve("b.example") == 0  # another host is independent
    assert 1.9 <= p.reserve("a.example") <= 2.0
    assert 3.9 <= p.reserve("a.example") <= 4.0  # slots queue up behind each other


def test_key_expires_once_the_slot_has_passed(settings: Settings, r: redis.Redis) -> None:
    p = polite(settings, r, delay=2.0)
    p.reserve("a.example")
    p.reserve("a.example")
    ttl_ms = r.pttl(keys.host_next("a.example"))
    assert 3000 < ttl_ms <= 4000  # the second slot starts in 2 s and holds for 2 s more


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
def test_too_long_a_wait_is_host_busy(settings: Settings, r: redis.Redis, shared: bool) -> None:
    p = polite(settings, r if shared else None, delay=5.0, max_wait=3.0)
    assert p.reserve("a.example") == 0
    for _ in range(2):  # refusals reserve nothing, so the next caller sees the same wait
        with pytest.raises(TransientError) as err:
            p.reserve("a.example")
        assert err.value.reason == "host_busy"
        assert err.value.retry_after is not None and 4.9 <= err.value.retry_after <= 5.0


def test_zero_delay_turns_it_off(settings: Settings, r: redis.Redis) -> None:
    p = polite(settings, r, delay=0.0)
    assert [p.reserve("a.example") for _ in range(3)] == [0, 0, 0]
    assert r.exists(keys.host_next("a.example")) == 0


def test_fetch_that_would_wait_too_long_is_host_busy(settings: Settings, r: redis.Redis, site: Site) -> None:
    # robots.txt takes the host's first slot, so the page itself would have to wait a second.
    busy = settings.model_copy(update={"host_delay": 1.0, "max_host_wait": 0.5})
    with Fetcher(busy, r) as fetcher, pytest.raises(TransientError) as err:
        fetcher.fetch_article(site.add("/a", "<html></html>"))
    assert err.value.reason == "host_busy"
    assert err.value.retry_after is not None and 0.9 <= err.value.retry_after <= 1.0
    assert [path for path, _ in site.requests] == ["/robots.txt"]


def test_workers_sharing_redis_space_their_requests(settings: Settings, r: redis.Redis, site: Site) -> None:
    delay = 0.3
    arrivals: list[float] = []

    def record(handler: BaseHTTPRequestHandler) -> Page:
        arrivals.append(time.monotonic())
        if handler.path == "/robots.txt":
            return Page(b"", 404)
        return Page(b"<html><p>x</p></html>", 200, {"Content-Type": "text/html"})

    paths = [f"/w{w}/{i}" for w in range(2) for i in range(3)]
    for path in ["/robots.txt", *paths]:
        site.route(path, record)
    errors: list[BaseException] = []

    def worker(mine: list[str]) -> None:
        # Each thread is its own worker: its own Fetcher and connections, only Redis in common.
        own_redis = redis.Redis.from_url(settings.redis_url or "")
        with own_redis, Fetcher(settings.model_copy(update={"host_delay": delay}), own_redis) as f:
            for path in mine:
                try:
                    f.fetch_article(site.url(path))
                except BaseException as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=worker, args=(paths[w * 3 : w * 3 + 3],)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(arrivals) >= 7  # six pages and at least one robots.txt, all on one host
    arrivals.sort()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # Slots are reserved at start time; arrival adds a little jitter (a new connection, threads).
    assert min(gaps) >= delay - 0.05, gaps
