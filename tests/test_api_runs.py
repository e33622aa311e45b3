"""The API's follow-up calls against a real uvicorn and Redis: retry, runs, items explained, feed checks, workers."""

from __future__ import annotations

import httpx
import redis

from ingest import heartbeat, keys
from ingest.config import Settings
from ingest.models import DeadLetter, Job, Source, utcnow
from ingest.publish import Publisher
from tests.httpsite import Site
from tests.test_api import api, queued  # noqa: F401  (fixture)
from tests.test_e2e import ENERGY, page, rss
from tests.test_runs import article


def dead(r: redis.Redis, settings: Settings, url: str, reason: str) -> None:
    job = Job(keys.digest(url), url)
    Publisher(r, settings).deadletter(
        job,
        DeadLetter(id=job.job_id, url=url, reason=reason, detail="d", source=Source(via="manual"), failed_at=utcnow()),
    )


def test_retry_enqueues_and_the_run_lists_it(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:  # noqa: F811
    dead(r, settings, "https://a.example/404", "http_404")
    dead(r, settings, "https://a.example/priv", "blocked_private_address")
    dry = api.post("/v1/retry", json={"reason": "http_404", "dry_run": True})
    assert dry.status_code == 202 and dry.json()["urls"] == ["https://a.example/404"] and queued(r) == 0
    res = api.post("/v1/retry", json={"reason": "http_404"}).json()
    assert (res["enqueued"], queued(r)) == (1, 1)
    run = api.get(f"/v1/runs/{res['run_id']}").json()
    assert [(j["url"], j["outcome"]) for j in run["jobs"]] == [("https://a.example/404", "pending")]
    assert run["kind"] == "retry" and run["finished"] is False
    assert api.post("/v1/retry", json={"reason": "http_404"}).json()["already_retried"] == 1
    assert r.xlen(keys.DEADLETTER) == 2

    bad = api.post("/v1/retry", json={"urls": ["https://nowhere.example/"]})
    assert bad.status_code == 400 and "no dead letter for https://nowhere.example/" in bad.json()["detail"]
    assert api.post("/v1/retry", json={"since": "whenever"}).status_code == 400
    assert api.post("/v1/retry", json={"entry_id": "x"}).status_code == 422
    assert api.post("/v1/retry", json={"urls": ["ftp://x"]}).status_code == 422
    assert api.get("/v1/runs/nope").status_code == 404
    assert queued(r) == 1


def test_items_are_explained_by_id(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:  # noqa: F811
    item = article(
        1, "\n".join(ENERGY["paragraphs"]), ENERGY["title"], published=f"{ENERGY['published']}T08:00:00+00:00"
    )
    Publisher(r, settings).item(Job("j1", item.url), item)
    shown = api.get("/v1/items/item1").json()
    assert shown["item"]["id"] == "item1" and shown["stream"] == "articles"
    energy = next(s for s in shown["storylines"] if s["id"] == "energy-ceasefire")
    assert energy["on_storyline"] and energy["threshold"] > 0 and energy["contributions"]
    missing = api.get("/v1/items/nothing-here")
    assert missing.status_code == 404 and "no item nothing-here" in missing.json()["detail"]


def test_feeds_are_checked_unless_told_not_to(api: httpx.Client, r: redis.Redis, site: Site) -> None:  # noqa: F811
    feed = site.add("/feed.xml", rss([site.add("/a.html", page("A", ["text"]))]), content_type="application/rss+xml")
    home = site.add("/", f'<html><head><link rel="alternate" type="application/atom+xml" href="{feed}"></head></html>')
    refused = api.post("/v1/feeds", json={"url": home})
    assert refused.status_code == 400 and feed in refused.json()["detail"]
    down = api.post("/v1/feeds", json={"url": site.url("/gone.xml")})
    assert down.status_code == 400 and "http_404" in down.json()["detail"]
    assert r.zcard(keys.FEEDS_DUE) == 0
    ok = api.post("/v1/feeds", json={"url": feed})
    assert ok.status_code == 201 and ok.json()["created"] and ok.json()["run"]
    # the run returned counts the feed's first poll, whoever sends it
    assert r.hget(keys.feed(feed), "first_run") == ok.json()["run"].encode()
    assert api.post("/v1/feeds", json={"url": site.url("/gone.xml"), "check": False}).status_code == 201


def test_workers_lists_heartbeats(api: httpx.Client, r: redis.Redis) -> None:  # noqa: F811
    assert api.get("/v1/workers").json() == {"workers": []}
    heartbeat.beat(r, "box", 7, 3, 1.0)
    (w,) = api.get("/v1/workers").json()["workers"]
    assert (w["hostname"], w["pid"], w["concurrency"]) == ("box", 7, 3)


def test_unknown_storyline_streams_are_refused(api: httpx.Client) -> None:  # noqa: F811
    bad = api.get("/v1/items", params={"stream": "storyline:typo"})
    assert bad.status_code == 422 and "storyline:energy-ceasefire" in str(bad.json()["detail"])
    assert api.get("/v1/items", params={"stream": "storyline:energy-ceasefire"}).status_code == 200
