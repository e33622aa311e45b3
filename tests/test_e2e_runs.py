"""End to end with a real worker: retry, refetch, runs show, show, feeds checked when added, visible waits."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from ingest import heartbeat, keys
from tests.httpsite import Site
from tests.test_e2e import ARTICLES, ENERGY, ROOT, Worker, env_for, ingest, page, rss, streams

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def rows(cp: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return [json.loads(line) for line in cp.stdout.splitlines()]


def one_line_error(cp: subprocess.CompletedProcess[str]) -> str:
    assert cp.returncode == 2, cp.stdout + cp.stderr
    assert "Traceback" not in cp.stderr
    lines = [line for line in cp.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, cp.stderr
    return lines[0]


def in_terminal(
    env: dict[str, str], *args: str, interrupt_after: str | None = None, timeout: float = 120
) -> tuple[int, str]:
    """Run `ingest` with its stderr on a pseudo-terminal; SIGINT once interrupt_after has appeared."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", *args],
        env={**env, "COLUMNS": "160", "TERM": "xterm"},
        cwd=ROOT,
        stdout=slave,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        if interrupt_after and not sent and re.search(interrupt_after, out.decode("utf-8", "replace")):
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            sent = True
        if proc.poll() is not None and not ready:
            break
    os.close(master)
    rc = proc.wait(timeout=30)
    return rc, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode("utf-8", "replace"))


def test_retry_refetch_runs_and_show(site: Site, redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    story = site.add("/news/energy.html", page(ENERGY["title"], ENERGY["paragraphs"], ENERGY["published"]))
    teaser = site.add("/wire/energy.html", page("Energy pause (wire)", ENERGY["paragraphs"][:3], ENERGY["published"]))
    gone = site.url("/news/later.html")  # a 404 today, published tomorrow
    env = env_for(redis_url, tmp_path)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        first = rows(ingest(env, "enqueue", "--wait", "--json", story, teaser, gone))
        assert [row["outcome"] for row in first] == ["article", "duplicate", "deadletter"]

        # the worker beats while it runs
        alive = heartbeat.workers_alive(r)
        assert len(alive) == 1 and alive[0].concurrency == 2 and alive[0].pid > 0

        # show: why the story is on the storyline, what the teaser shares with it
        shown = json.loads(ingest(env, "show", story, "--json").stdout)
        energy = next(s for s in shown["storylines"] if s["id"] == "energy-ceasefire")
        assert energy["on_storyline"] and energy["raw"] >= energy["threshold"] and energy["contributions"]
        dup = json.loads(ingest(env, "show", str(first[1]["item_id"]), "--json").stdout)["duplicate"]
        assert dup["original"]["url"] == story and dup["original"]["title"] == ENERGY["title"]
        assert dup["shared_passage"] and dup["shared_passage"].split()[:5] == ENERGY["paragraphs"][0].split()[:5]
        text = ingest(env, "show", teaser)
        assert text.returncode == 0 and "shared passage:" in text.stdout and f"duplicate of {dup['of']}" in text.stdout
        letter = ingest(env, "show", gone)
        assert "dead letter: http_404" in letter.stdout and "ingest retry --entry" in letter.stdout
        assert "no item with id or URL" in one_line_error(ingest(env, "show", "0123456789abcdef0123"))

        # the page appears: retry what failed with a 404; the deadletter entry stays
        obs = ARTICLES["observatory"]
        site.add("/news/later.html", page(obs["title"], obs["paragraphs"], "2025-03-21"))
        assert "reasons seen: http_404" in one_line_error(ingest(env, "retry", "--reason", "http_44"))
        retried = rows(ingest(env, "retry", "--reason", "http_404", "--wait", "--json"))
        assert [(row["url"], row["outcome"]) for row in retried] == [(gone, "article")]
        assert r.xlen(keys.DEADLETTER) == 1
        assert "nothing to retry" in ingest(env, "retry", "--reason", "http_404").stdout  # each entry once
        assert "no dead letter for" in one_line_error(ingest(env, "retry", story))

        # runs show: a run's state later, URLs already seen included
        (seen,) = rows(ingest(env, "enqueue", "--json", story))
        assert seen["status"] == "already_seen"
        state = json.loads(ingest(env, "runs", "show", str(seen["run"]), "--json").stdout)
        assert state["finished"] and state["kind"] == "enqueue"
        assert [(j["url"], j["outcome"], j["already_seen"]) for j in state["jobs"]] == [(story, "article", True)]
        assert story in ingest(env, "runs", "show", str(seen["run"])).stdout
        assert "no run nope" in one_line_error(ingest(env, "runs", "show", "nope"))

        # refetch: the page changed; shown on a terminal with its run id first and live progress
        site.add(
            "/news/energy.html",
            page(ENERGY["title"] + " (updated)", [*ENERGY["paragraphs"], "Update: both sides confirmed the pause."]),
        )
        rc, out = in_terminal(env, "enqueue", "--refetch", "--wait", story)
        assert rc == 0, out
        assert out.lstrip().startswith("run ") and "ingest runs show" in out.splitlines()[0]
        assert "1/1" in out and "duplicate" in out
        (revision,) = [d for d in streams(r)["duplicates"] if d["url"] == story]
        assert revision["duplicate"]["method"] == "revision"
    finally:
        worker.stop()
    # a worker that stops cleanly takes its heartbeat with it
    assert heartbeat.workers_alive(r) == []


def test_feeds_are_checked_when_added_and_poll_counts_what_the_add_caused(
    site: Site, redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    links = [
        site.add("/news/energy.html", page(ENERGY["title"], ENERGY["paragraphs"], ENERGY["published"])),
        site.add(
            "/news/observatory.html", page(ARTICLES["observatory"]["title"], ARTICLES["observatory"]["paragraphs"])
        ),
    ]
    feed = site.add("/feeds/wire.xml", rss(links), content_type="application/rss+xml")
    home = site.add(
        "/index.html",
        '<html><head><title>Local news</title><link rel="alternate" type="application/rss+xml" '
        'href="/feeds/wire.xml"><link rel="alternate" hreflang="de" href="/de/"></head><body>Hi</body></html>',
    )
    plain = site.add("/about.html", "<html><head><title>About</title></head><body>Nothing here</body></html>")
    notes = site.add("/notes.txt", "just text, not a feed", content_type="text/plain")
    env = env_for(redis_url, tmp_path, INGEST_BEAT_INTERVAL="1")

    msg = one_line_error(ingest(env, "feeds", "add", home))
    assert "is a web page, not a feed" in msg and feed in msg and "--discover" in msg
    assert "offers none" in one_line_error(ingest(env, "feeds", "add", plain))
    assert "is not a feed" in one_line_error(ingest(env, "feeds", "add", notes))
    missing = one_line_error(ingest(env, "feeds", "add", site.url("/down.xml")))
    assert "http_404" in missing and "--no-check" in missing
    assert not r.zcard(keys.FEEDS_DUE)  # nothing was added
    assert ingest(env, "feeds", "add", "--no-check", site.url("/down.xml")).returncode == 0
    assert ingest(env, "feeds", "remove", site.url("/down.xml")).returncode == 0

    # the usual paths are tried when a page declares no feed
    site.add("/rss.xml", rss(links[:1]), content_type="application/rss+xml")
    assert site.url("/rss.xml") in one_line_error(ingest(env, "feeds", "add", plain))
    del site.pages["/rss.xml"]

    added = ingest(env, "feeds", "add", "--discover", home)
    assert added.returncode == 0 and f"added {feed}" in added.stdout
    worker = Worker(env, tmp_path / "worker.log")
    beat = Worker(env, tmp_path / "beat.log", "beat")
    try:
        # the scheduler polls the new feed first and its work is done before anyone asks to poll ...
        deadline = time.monotonic() + 120
        while int(r.hget(keys.STATS, "article") or 0) < 2:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        # ... and the next poll --wait counts it as its own
        summary = json.loads(ingest(env, "poll", "--wait", "--json", "--timeout", "120").stdout)
        assert (summary["new"], summary["pending"], summary["finished"]) == (2, 0, True)
        again = json.loads(ingest(env, "poll", "--wait", "--json", "--timeout", "120").stdout)
        assert again["new"] == 0  # counted once
    finally:
        beat.stop()
        worker.stop()


def test_waits_warn_without_a_worker_and_ctrl_c_names_the_run(site: Site, redis_url: str, tmp_path: Path) -> None:
    env = env_for(redis_url, tmp_path)
    url = site.add("/a.html", page("A", ["Some text."]))
    cp = ingest(env, "enqueue", "--wait", "--json", "--timeout", "10", url)
    assert cp.returncode == 1 and cp.stdout.strip()  # timed out, still printed the URL's state
    assert "no worker is alive" in cp.stderr and "ingest runs show" in cp.stderr
    assert "\x1b[" not in cp.stderr  # not a terminal: no progress drawing

    rc, out = in_terminal(env, "enqueue", "--refetch", "--wait", url, interrupt_after="no worker is alive")
    assert rc == 130, out
    run_id = re.search(r"run (\w+) \(later", out)
    assert run_id is not None, out
    assert f"stopped waiting; run {run_id.group(1)} goes on" in out and "0/1" in out
    assert "Traceback" not in out
