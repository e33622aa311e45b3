"""The dashboard over HTTP (real uvicorn, real Redis, tasks landing in the real broker queue):
indexes written at publish time, filters, exports, escaping, offline docs, CSRF, token login, metrics."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from ingest import keys
from ingest.api import create_app
from ingest.config import Settings
from ingest.models import DeadLetter, Duplicate, Item, Job, Source, StorylineTag, utcnow
from ingest.publish import Publisher
from tests.test_api import Served
from workers.app import configure
from workers.dispatch import CeleryDispatcher

SID = "energy-ceasefire"


def article(
    n: int,
    *,
    lang: str = "en",
    outlet: str = "a.example",
    day: str | None = "2025-03-19",
    labels: tuple[str, ...] = ("the-call",),
    on: bool = True,
    title: str | None = None,
    text: str = "Officials agreed a pause in strikes on energy infrastructure.",
    url: str | None = None,
    dup: Duplicate | None = None,
) -> Item:
    return Item(
        id=f"item{n}",
        url=url or f"https://{outlet}/{n}",
        canonical_url=url or f"https://{outlet}/{n}",
        title=title if title is not None else f"Story {n}",
        text=text,
        language=lang,
        author=None,
        published_at=datetime.fromisoformat(f"{day}T09:00:00+00:00") if day else None,
        fetched_at=utcnow(),
        source=Source(via="manual"),
        duplicate=dup,
        storylines=[
            StorylineTag(
                id=SID, score=0.9 if on else 0.1, on_storyline=on, labels=list(labels) if on else [], evidence=["pause"]
            )
        ],
    )


def publish(r: redis.Redis, settings: Settings, *items: Item) -> None:
    pub = Publisher(r, settings)
    for it in items:
        assert pub.item(Job(f"job-{it.id}-{it.url}", it.url), it, {"fetch": 0.2, "extract": 0.03})


def dead(r: redis.Redis, settings: Settings, n: int, reason: str = "http_404", url: str | None = None) -> None:
    url = url or f"https://gone.example/{n}"
    letter = DeadLetter(
        id=f"d{n}",
        url=url,
        reason=reason,
        detail=f"{url} answered 404",
        source=Source(via="manual"),
        failed_at=utcnow(),
    )
    assert Publisher(r, settings).deadletter(Job(f"d{n}", url), letter)


@pytest.fixture
def api(settings: Settings, r: redis.Redis) -> Iterator[httpx.Client]:
    with Served(settings, r) as c:
        yield c


def csrf_of(c: httpx.Client, path: str = "/feeds") -> str:
    page = c.get(path)
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "no CSRF token in the page"
    return found.group(1)


def titles(html: str) -> list[str]:
    return re.findall(r'<td data-h="Title"><a href="/items/[0-9-]+">([^<]*)</a>', html)


# ---- indexes ----


def test_publishing_indexes_days_languages_outlets_labels_copies_and_dead_letters(
    r: redis.Redis, settings: Settings
) -> None:
    publish(
        r,
        settings,
        article(1, lang="en", outlet="www.a.example", labels=("the-call", "black-sea")),
        article(2, lang="uk", outlet="b.example"),
        article(3, lang="uk", outlet="b.example", day="2025-03-20"),
        article(4, on=False),
        article(5, day=None),  # undated: counted on the day it was fetched
        article(6, dup=Duplicate(of="item1", method="near", score=0.8)),
    )
    dead(r, settings, 1)
    day = {k.decode(): int(v) for k, v in r.hgetall(keys.web_day(SID, "2025-03-19")).items()}
    assert day == {
        "n": 2,
        "lang:en": 1,
        "lang:uk": 1,
        "outlet:a.example": 1,  # www. is the same outlet
        "outlet:b.example": 1,
        "label:the-call": 2,
        "label:black-sea": 1,
    }
    today = utcnow().date().isoformat()
    assert [d.decode() for d in r.zrange(keys.web_days(SID), 0, -1)] == sorted(["2025-03-19", "2025-03-20", today])
    assert r.zcard(keys.web_items(SID)) == 4  # item4 is off the storyline, item6 a duplicate
    assert r.zcard(keys.web_items(SID, "lang:uk")) == 2
    assert r.zcard(keys.web_copies("item1")) == 1
    assert r.zcard(keys.web_dead_reason("http_404")) == 1
    stage = {k.decode(): v.decode() for k, v in r.hgetall(keys.web_stage("fetch")).items()}
    assert stage["count"] == "6" and stage["0.25"] == "6"  # 0.2 s falls in the 0.25 bucket; duplicates count too
    assert int(r.hget(keys.web_stage("publish"), "count") or 0) == 6


def test_a_republished_job_is_not_indexed_twice(r: redis.Redis, settings: Settings) -> None:
    pub = Publisher(r, settings)
    job, item = Job("j1", "https://a.example/1"), article(1)
    assert pub.item(job, item) is True
    assert pub.item(job, item) is False
    assert r.hget(keys.web_day(SID, "2025-03-19"), "n") == b"1"


# ---- storyline view ----


def test_storyline_view_filters_and_pages(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:
    publish(r, settings, *(article(n, day=f"2025-03-{10 + n % 10:02d}") for n in range(60)))
    publish(
        r,
        settings,
        article(100, lang="de", outlet="zeitung.example", labels=("riyadh-talks",), title="Moratorium hält"),
        article(101, lang="uk", title="Енергетичне перемир'я", text="Мораторій на удари по енергетиці."),
    )
    home = api.get("/")
    assert home.status_code == 200 and "Articles per day" in home.text
    assert home.headers["content-security-policy"].startswith("default-src 'self'")
    assert len(titles(home.text)) == 50 and 'rel="next"' in home.text
    second = api.get(f"/storylines/{SID}", params={"page": 2})
    assert len(titles(second.text)) == 12 and 'rel="next"' not in second.text
    assert titles(api.get(f"/storylines/{SID}", params={"lang": "de"}).text) == ["Moratorium hält"]
    assert titles(api.get(f"/storylines/{SID}", params={"label": "riyadh-talks"}).text) == ["Moratorium hält"]
    assert titles(api.get(f"/storylines/{SID}", params={"outlet": "zeitung.example", "lang": "de"}).text) == [
        "Moratorium hält"
    ]
    assert titles(api.get(f"/storylines/{SID}", params={"q": "мораторій"}).text) == ["Енергетичне перемир&#39;я"]
    one_day = api.get(f"/storylines/{SID}", params={"since": "2025-03-11", "until": "2025-03-11"})
    assert len(titles(one_day.text)) == 6  # n = 1, 11, 21, ... 51
    by_outlet = api.get(f"/storylines/{SID}", params={"by": "outlet"})
    assert "(outlet a.example)" in by_outlet.text and "(outlet zeitung.example)" in by_outlet.text
    assert "(outlet zeitung.example)" in api.get("/", params={"by": "outlet"}).text  # home takes the same filters
    assert titles(api.get("/", params={"lang": "de"}).text) == ["Moratorium hält"]


def test_export_of_the_filtered_list(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:
    publish(r, settings, article(1, title='=HYPERLINK("http://x")'), article(2, lang="uk"), article(3, lang="uk"))
    got = api.get(f"/storylines/{SID}/export.csv", params={"lang": "uk"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert sorted(row["id"] for row in rows) == ["item2", "item3"]
    assert rows[0]["labels"] == "the-call" and rows[0]["day"] == "2025-03-19"
    everything = list(csv.DictReader(io.StringIO(api.get(f"/storylines/{SID}/export.csv").text)))
    formula = next(row for row in everything if row["id"] == "item1")
    assert formula["title"].startswith("'=")  # a spreadsheet shows it, does not run it
    lines = api.get(f"/storylines/{SID}/export.jsonl").text.splitlines()
    assert sorted(json.loads(line)["item"]["id"] for line in lines) == ["item1", "item2", "item3"]


@pytest.mark.parametrize(
    ("path", "params", "code", "words"),
    [
        (f"/storylines/{SID}", {"since": "19 March"}, 422, "since must be a date"),
        (f"/storylines/{SID}", {"since": "2025-03-20", "until": "2025-03-19"}, 422, "since is after until"),
        (f"/storylines/{SID}", {"by": "colour"}, 422, "by"),
        (f"/storylines/{SID}", {"page": "0"}, 422, "page"),
        ("/storylines/no-such-story", {}, 404, "no storyline"),
        (f"/storylines/{SID}/export.xml", {}, 404, "use csv or jsonl"),
        ("/items/1-1", {}, 404, "no article or duplicate"),
        ("/items/99999999999999999999-1", {}, 404, "no article or duplicate"),
        (f"/storylines/{SID}", {"since": "0001-01-01", "until": "9999-12-31"}, 200, "Articles per day"),
        (f"/storylines/{SID}", {"until": "0001-01-01"}, 200, "No articles match"),
        ("/items/<script>", {}, 422, "entry_id"),
        ("/deadletters", {"reason": "Not A Reason"}, 422, "reason"),
    ],
)
def test_bad_parameters_get_a_clear_4xx(
    api: httpx.Client, path: str, params: dict[str, str], code: int, words: str
) -> None:
    got = api.get(path, params=params)
    assert got.status_code == code and words in got.text


def test_hostile_input_is_escaped(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    publish(r, settings, article(1, title=evil, text=evil + " pause", url="javascript:alert(3)"))
    dead(r, settings, 2, url="https://gone.example/<script>alert(4)</script>")
    feed = "https://feeds.example/rss?name=<script>alert(5)</script>"
    r.zadd(keys.FEEDS_DUE, {feed: 0})
    r.hset(keys.feed(feed), mapping={"url": feed, "title": evil, "last_error": evil, "last_status": "error"})
    entry = r.xrange(keys.ARTICLES)[0][0].decode()
    for path in ("/", f"/items/{entry}", "/deadletters", "/feeds"):
        html = api.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert 'href="javascript:' not in html.lower(), path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in api.get(f"/items/{entry}").text


# ---- offline docs and assets ----


def test_docs_are_served_from_the_installed_package(api: httpx.Client) -> None:
    for path in ("/docs", "/redoc"):
        html = api.get(path).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/") for s in sources), sources
        assert "cdn" not in html.lower() and "fonts.googleapis" not in html
        for s in sources:
            assert api.get(s).status_code == 200, s
    assert api.get("/openapi.json").json()["info"]["title"] == "storyline-ingest"
    assert api.get("/static/web/app.css").status_code == 200
    assert api.get("/static/web/../../api.py").status_code == 404


# ---- changing things: CSRF, token ----


def test_feed_actions_need_a_csrf_token(api: httpx.Client, r: redis.Redis) -> None:
    url = "https://news.example/feed.xml"
    assert api.post("/feeds/add", data={"url": url}).status_code == 403
    token = csrf_of(api)
    assert api.post("/feeds/add", data={"url": url, "csrf": "0" * 64}).status_code == 403
    cross = api.post("/feeds/add", data={"url": url, "csrf": token}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    added = api.post("/feeds/add", data={"url": url, "interval": "60", "csrf": token})
    assert added.status_code == 303 and r.zscore(keys.FEEDS_DUE, url) is not None
    assert "feed added" in api.get(added.headers["location"]).text
    bad = api.post("/feeds/add", data={"url": "ftp://x", "csrf": token})
    assert bad.status_code == 422 and "bad feed URL" in bad.text
    assert api.post("/feeds/add", data={"url": url, "interval": "5", "csrf": token}).status_code == 422

    queue = keys.CELERY_PREFIX + keys.QUEUE_FEEDS
    before = r.llen(queue)
    assert api.post("/feeds/poll", data={"url": url, "csrf": token}).status_code == 303
    r.hset(keys.feed(url), "failures", 3)
    assert api.post("/feeds/poll", data={"url": url, "retry": "1", "csrf": token}).status_code == 303
    assert r.llen(queue) == before + 2 and r.hget(keys.feed(url), "failures") == b"0"
    assert api.post("/feeds/poll", data={"url": "https://other.example/", "csrf": token}).status_code == 404
    assert api.post("/feeds/remove", data={"url": url, "csrf": token}).status_code == 303
    assert r.zscore(keys.FEEDS_DUE, url) is None


def test_dead_letters_retry_one_or_all_of_a_reason(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:
    for n in range(3):
        dead(r, settings, n, "http_404")
    dead(r, settings, 9, "timeout")
    token = csrf_of(api, "/deadletters")
    queue = keys.CELERY_PREFIX + keys.QUEUE_ARTICLES
    entry = r.xrange(keys.DEADLETTER)[-1][0].decode()
    one = api.post("/deadletters/retry", data={"entry_id": entry, "csrf": token})
    assert one.status_code == 303 and r.llen(queue) == 1
    every = api.post("/deadletters/retry", data={"reason": "http_404", "csrf": token})
    assert "3 URLs of http_404 re-enqueued" in api.get(every.headers["location"]).text and r.llen(queue) == 4
    assert api.post("/deadletters/retry", data={"reason": "a b", "csrf": token}).status_code == 422
    assert api.post("/deadletters/retry", data={"entry_id": "1-1", "csrf": token}).status_code == 404
    listed = api.get("/deadletters", params={"reason": "http_404"}).text
    assert listed.count("retried (run") == 3


def _asgi_get(app: object, path: str, client_ip: str, **headers: str) -> httpx.Response:
    """A request as if from another machine, through the ASGI interface (no network involved)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://dash.example") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def test_with_a_token_changes_need_a_login_and_reading_is_open_only_on_loopback(
    settings: Settings, r: redis.Redis
) -> None:
    secured = settings.model_copy(update={"api_token": "s3cret-token"})
    with Served(secured, r) as api:
        assert api.get("/").status_code == 200  # loopback reads freely
        token = csrf_of(api)
        url = "https://news.example/feed.xml"
        assert api.post("/feeds/add", data={"url": url, "csrf": token}).status_code == 401
        wrong = api.post("/login", data={"token": "guess", "csrf": token, "next": "/feeds"})
        assert wrong.status_code == 401 and "wrong token" in wrong.text
        assert api.post("/login", data={"token": "s3cret-token", "next": "/feeds"}).status_code == 403  # no CSRF
        ok = api.post("/login", data={"token": "s3cret-token", "csrf": token, "next": "//evil.example/"})
        assert ok.status_code == 303 and ok.headers["location"] == "/"  # never an open redirect
        assert "httponly" in ok.headers["set-cookie"].lower() and "samesite=strict" in ok.headers["set-cookie"].lower()
        assert api.post("/feeds/add", data={"url": url, "csrf": token}).status_code == 303
        session = api.cookies["ingest_session"]
        assert api.post("/logout", data={"csrf": token}).status_code == 303
        assert api.post("/feeds/add", data={"url": url, "csrf": token}).status_code == 401

    app = create_app(secured, r, CeleryDispatcher(configure(secured, secured.redis_url or "")))
    away = _asgi_get(app, "/", "203.0.113.7")
    assert away.status_code == 303 and away.headers["location"].startswith("/login")
    assert _asgi_get(app, "/metrics", "203.0.113.7").status_code == 401
    assert _asgi_get(app, "/metrics", "203.0.113.7", authorization="Bearer s3cret-token").status_code == 200
    assert _asgi_get(app, "/feeds", "203.0.113.7", cookie=f"ingest_session={session}").status_code == 200
    assert _asgi_get(app, "/login", "203.0.113.7").status_code == 200
    assert _asgi_get(app, "/v1/stats", "203.0.113.7").status_code == 200  # the JSON API keeps its own rules
    forged = session.split(".")[0] + "." + "0" * 64
    assert _asgi_get(app, "/feeds", "203.0.113.7", cookie=f"ingest_session={forged}").status_code == 303
    open_app = create_app(settings, r, CeleryDispatcher(configure(settings, settings.redis_url or "")))
    assert _asgi_get(open_app, "/", "203.0.113.7").status_code == 200  # no token: nothing to protect with


# ---- metrics ----


def test_metrics_parse_and_count_from_redis(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:
    publish(r, settings, article(1), article(2, dup=Duplicate(of="item1", method="content", score=1.0)))
    dead(r, settings, 3, "not_html")
    for n, failures in enumerate((0, 0, 2)):
        url = f"https://f{n}.example/feed.xml"
        r.zadd(keys.FEEDS_DUE, {url: 0})
        r.hset(keys.feed(url), mapping={"url": url, "failures": failures, "last_status": "ok" if n == 0 else ""})
    r.hincrby(keys.STATS, "feed_polls:ok", 5)
    got = api.get("/metrics")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(got.text)}
    assert all(name.startswith("ingest_") for name in families)

    def values(name: str, label: str) -> dict[str, float]:
        return {s.labels[label]: s.value for s in families[name].samples if not s.name.endswith("_created")}

    assert (
        values("ingest_articles", "outcome")["article"] == 1 and values("ingest_articles", "outcome")["duplicate"] == 1
    )
    assert values("ingest_deadletters", "reason") == {"not_html": 1}
    assert values("ingest_feeds", "health") == {"ok": 1, "failing": 1, "never_polled": 1}
    assert values("ingest_feed_polls", "outcome")["ok"] == 5
    buckets = [
        s.value
        for s in families["ingest_stage_duration_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["stage"] == "extract"
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 2  # cumulative, ending at the count
    assert values("ingest_stream_length", "stream")["articles"] == 1
    r.xgroup_create(keys.ARTICLES, "alerts", id="0")
    families = {f.name: f for f in text_string_to_metric_families(api.get("/metrics").text)}
    lag = {(s.labels["stream"], s.labels["group"]): s.value for s in families["ingest_consumer_group_lag"].samples}
    assert lag[("articles", "alerts")] == 1


def test_system_view_shows_queues_streams_and_groups(api: httpx.Client, r: redis.Redis, settings: Settings) -> None:
    publish(r, settings, article(1))
    r.xgroup_create(keys.ARTICLES, "downstream", id="0")
    html = api.get("/system").text
    assert "downstream" in html and "No worker has sent a heartbeat" in html
    assert re.search(r'data-h="Entries" class="num">1<', html)
    assert datetime.now(UTC).strftime("%H:") in html  # the throughput chart's time axis


def test_templates_and_static_files_are_package_data() -> None:
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ingest"]
    shipped = [p for d in ("templates", "static") for p in (root / "ingest" / "web" / d).iterdir()]
    assert len(shipped) >= 9
    for path in shipped:
        rel = path.relative_to(root / "ingest").as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs), f"{rel} would be missing from an installed wheel"


def test_the_timeline_opens_on_the_busiest_days_not_on_a_stray_undated_article(
    api: httpx.Client, r: redis.Redis, settings: Settings
) -> None:
    publish(r, settings, *(article(n, day=f"2025-03-{18 + n % 3}") for n in range(6)), article(9, day=None))
    html = api.get("/").text
    assert "2025-03-18 to 2025-03-20" in html  # the undated one was fetched today, months later
    assert "show all" in html and f"until={utcnow().date().isoformat()}" in html


@pytest.mark.parametrize(
    ("days", "width", "expected"),
    [
        ([(1, 5)], 60, (1, 1)),
        ([(1, 5), (2, 5), (500, 1)], 60, (1, 2)),
        ([(1, 1), (100, 1)], 60, (100, 100)),  # a tie goes to the later span
        ([(1, 3), (30, 3), (61, 4), (90, 1)], 60, (30, 61)),
    ],
)
def test_busiest_window(days: list[tuple[int, int]], width: int, expected: tuple[int, int]) -> None:
    from ingest.web.storyline_view import busiest_window

    assert busiest_window(days, width) == expected
