"""The HTTP API served by a real uvicorn on 127.0.0.1, a real Redis, tasks landing in the real broker queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
import uvicorn

from ingest import keys
from ingest.api import create_app
from ingest.config import Settings
from ingest.embedded import free_port
from ingest.models import Job, Source, utcnow
from ingest.publish import Publisher
from tests.test_streams import make_item
from workers.app import configure
from workers.dispatch import CeleryDispatcher


class Served:
    """The API app on a real uvicorn server in a thread, and an HTTP client for it."""

    def __init__(self, settings: Settings, r: redis.Redis) -> None:
        app = create_app(settings, r, CeleryDispatcher(configure(settings, settings.redis_url or "")))
        config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base = f"http://127.0.0.1:{config.port}"

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.client = httpx.Client(base_url=self.base, timeout=10)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


def client_for(settings: Settings, r: redis.Redis) -> Served:
    return Served(settings, r)


@pytest.fixture
def api(settings: Settings, r: redis.Redis) -> Iterator[httpx.Client]:
    with client_for(settings, r) as c:
        yield c


def queued(r: redis.Redis) -> int:
    return int(r.llen(keys.CELERY_PREFIX + keys.QUEUE_ARTICLES))


def test_healthz(api: httpx.Client) -> None:
    resp = api.get("/healthz")
    assert resp.status_code == 200 and resp.json()["redis"] == "ok"


def test_post_urls_enqueues_and_reports_already_seen(api: httpx.Client, r: redis.Redis) -> None:
    resp = api.post("/v1/urls", json={"urls": ["https://a.example/1", "https://a.example/2"]})
    assert resp.status_code == 202
    body = resp.json()
    assert [j["status"] for j in body["jobs"]] == ["queued", "queued"]
    assert queued(r) == 2
    again = api.post("/v1/urls", json={"urls": ["https://a.example/1"]}).json()
    assert again["jobs"][0]["status"] == "already_seen" and queued(r) == 2
    run = api.get(f"/v1/runs/{body['run']}").json()
    assert run["pending"] == 2 and {j["outcome"] for j in run["jobs"]} == {"pending"}


@pytest.mark.parametrize(
    "body",
    [{}, {"urls": []}, {"urls": "https://a.example/"}, {"urls": ["ftp://a.example/x"]}, {"urls": ["nope"]}, []],
)
def test_invalid_bodies_are_422_with_a_message(api: httpx.Client, r: redis.Redis, body: object) -> None:
    resp = api.post("/v1/urls", json=body)
    assert resp.status_code == 422
    assert resp.json()["detail"]
    assert queued(r) == 0


def test_invalid_url_message_names_the_problem(api: httpx.Client) -> None:
    detail = api.post("/v1/urls", json={"urls": ["ftp://a.example/x"]}).json()["detail"]
    assert "only http and https" in str(detail)


def test_feeds(api: httpx.Client) -> None:
    assert (
        api.post("/v1/feeds", json={"url": "https://f.example/rss", "interval": 60, "check": False}).status_code == 201
    )
    assert api.post("/v1/feeds", json={"url": "https://f.example/rss", "interval": 1}).status_code == 422
    feeds = api.get("/v1/feeds").json()["feeds"]
    assert [(f["url"], f["interval"], f["status"]) for f in feeds] == [("https://f.example/rss", 60, "never_polled")]


def test_items_paging_and_stream_names(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:
    pub = Publisher(r, settings)
    for n in range(5):
        pub.item(Job(f"a{n}", f"https://a.example/{n}"), make_item(n, on=n % 2 == 0))
    page = api.get("/v1/items", params={"count": 3}).json()
    assert [i["item"]["id"] for i in page["items"]] == ["item0", "item1", "item2"]
    rest = api.get("/v1/items", params={"after": page["next"]}).json()
    assert [i["item"]["id"] for i in rest["items"]] == ["item3", "item4"]
    story = api.get("/v1/items", params={"stream": "storyline:energy-ceasefire"}).json()
    assert [i["item"]["id"] for i in story["items"]] == ["item0", "item2", "item4"]
    assert api.get("/v1/items", params={"stream": "bogus"}).status_code == 422
    assert api.get("/v1/items", params={"after": "not-an-id"}).status_code == 422
    assert api.get("/v1/items", params={"count": 0}).status_code == 422


def test_write_calls_need_the_token_when_one_is_set(settings: Settings, r: redis.Redis) -> None:
    with client_for(settings.model_copy(update={"api_token": "s3cret"}), r) as c:
        assert c.post("/v1/urls", json={"urls": ["https://a.example/x"]}).status_code == 401
        bad = {"Authorization": "Bearer wrong"}
        assert c.post("/v1/feeds", json={"url": "https://a.example/f"}, headers=bad).status_code == 401
        ok = {"Authorization": "Bearer s3cret"}
        assert c.post("/v1/urls", json={"urls": ["https://a.example/x"]}, headers=ok).status_code == 202
        assert c.get("/v1/items").status_code == 200  # reading needs no token


def test_deadletter_items_are_readable(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:
    from ingest.models import DeadLetter

    Publisher(r, settings).deadletter(
        Job("d", "https://a.example/d"),
        DeadLetter(
            id="d",
            url="https://a.example/d",
            reason="not_html",
            detail="application/pdf",
            source=Source(via="manual"),
            failed_at=utcnow(),
        ),
    )
    items = api.get("/v1/items", params={"stream": "deadletter"}).json()["items"]
    assert items[0]["item"]["reason"] == "not_html"


def test_an_unknown_storyline_is_422_naming_the_known_ones(api: httpx.Client, r: redis.Redis) -> None:
    resp = api.get("/v1/items", params={"stream": "storyline:energy-cesefire"})
    assert resp.status_code == 422 and "storyline:energy-ceasefire" in resp.text
    assert r.keys("ingest:storyline:*") == []


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("after=99999999999999999999999-0", "after"),
        ("after=18446744073709551616-0", "after"),
        ("after=18446744073709551615-18446744073709551615", "after"),
        ("after=1-99999999999999999999999", "after"),
        ("stream=nonsense", "stream"),
        ("count=99999999999999999999", "count"),
    ],
)
def test_items_parameters_redis_would_refuse_are_422_naming_them(api: httpx.Client, query: str, param: str) -> None:
    resp = api.get(f"/v1/items?{query}")
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"][-1] == param


def test_largest_valid_stream_id_reads_nothing(api: httpx.Client) -> None:
    resp = api.get("/v1/items?after=18446744073709551615-18446744073709551614")
    assert resp.status_code == 200 and resp.json()["items"] == []


@pytest.mark.parametrize("url", ["http://[::1", "http://[example.com]/x", "http://a.com/\x01", "http://a.com/\u0000x"])
def test_urls_the_one_validation_refuses_are_422_and_nothing_is_queued(
    api: httpx.Client, r: redis.Redis, url: str
) -> None:
    for path, body in (("/v1/urls", {"urls": [url]}), ("/v1/feeds", {"url": url})):
        resp = api.post(path, json=body)
        assert resp.status_code == 422, resp.text
    assert queued(r) == 0 and not r.keys("ingest:feed*")


def test_405_names_every_method_the_path_allows(api: httpx.Client) -> None:
    resp = api.delete("/v1/feeds")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "GET, POST"
    assert api.put("/v1/urls").headers["allow"] == "POST"


def test_schema_documents_errors_and_url_rules(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert "404" in spec["paths"]["/v1/runs/{run_id}"]["get"]["responses"]
    assert "503" in spec["paths"]["/healthz"]["get"]["responses"]
    url_schema = spec["components"]["schemas"]["FeedIn"]["properties"]["url"]
    assert url_schema["maxLength"] == 4096 and url_schema["pattern"].startswith("^")


def test_redis_away_is_a_503_not_a_500(settings: Settings) -> None:
    gone = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    with client_for(settings, gone) as c:
        resp = c.get("/v1/stats")
        assert resp.status_code == 503 and "redis unavailable" in resp.json()["detail"]
