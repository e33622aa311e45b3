"""The `ingest` command as users run it: exit codes, one-line errors, nothing enqueued on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from ingest import keys

ROOT = Path(__file__).resolve().parent.parent


def ingest(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_") and k != "REDIS_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        env=full_env,
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(cp: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in cp.stderr, cp.stderr
    lines = [line for line in cp.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, cp.stderr
    return lines[0]


def queued(r: redis.Redis) -> int:
    return int(r.llen(keys.CELERY_PREFIX + keys.QUEUE_ARTICLES))


@pytest.mark.parametrize(
    "url", ["not-a-url", "ftp://example.com/file", "http://", "javascript:alert(1)", "https://exa mple.com/x"]
)
def test_enqueue_invalid_url_exits_2_and_enqueues_nothing(redis_url: str, r: redis.Redis, url: str) -> None:
    cp = ingest("enqueue", "https://fine.example/a", url, env={"REDIS_URL": redis_url})
    assert cp.returncode == 2
    assert one_line_error(cp).startswith("ingest: ")
    assert queued(r) == 0
    assert not list(r.scan_iter(keys.job("*")))


def test_enqueue_valid_urls_queues_one_message_each(redis_url: str, r: redis.Redis) -> None:
    cp = ingest("enqueue", "https://a.example/1", "https://a.example/2", "--json", env={"REDIS_URL": redis_url})
    assert cp.returncode == 0, cp.stderr
    assert queued(r) == 2
    again = ingest("enqueue", "https://a.example/1?utm_source=newsletter", env={"REDIS_URL": redis_url})
    assert again.returncode == 0 and "already_seen" in again.stdout
    assert queued(r) == 2


def test_bad_usage_exits_2(redis_url: str) -> None:
    env = {"REDIS_URL": redis_url}
    assert ingest("no-such-command", env=env).returncode == 2
    assert ingest("items", "--count", "0", env=env).returncode == 2
    cp = ingest("items", "--stream", "nonsense", env=env)
    assert cp.returncode == 2 and "unknown stream" in one_line_error(cp)
    cp = ingest("feeds", "add", "ftp://feeds.example/rss", env=env)
    assert cp.returncode == 2 and one_line_error(cp)
    cp = ingest("feeds", "remove", "https://never.example/added", env=env)
    assert cp.returncode == 2


def test_invalid_configuration_exits_2_with_the_setting_named(redis_url: str, tmp_path: Path) -> None:
    cp = ingest("stats", env={"REDIS_URL": redis_url, "INGEST_HOST_DELAY": "-1"})
    assert cp.returncode == 2 and "INGEST_HOST_DELAY" in one_line_error(cp)
    cp = ingest("stats", env={"REDIS_URL": redis_url, "INGEST_CONFIG": str(tmp_path / "missing.toml")})
    assert cp.returncode == 2 and "missing.toml" in one_line_error(cp)
    bad = tmp_path / "bad.toml"
    bad.write_text("host_delay = [unclosed")
    cp = ingest("stats", env={"REDIS_URL": redis_url, "INGEST_CONFIG": str(bad)})
    assert cp.returncode == 2 and one_line_error(cp)


def test_config_file_sets_the_same_names(redis_url: str, tmp_path: Path) -> None:
    cfg = tmp_path / "ingest.toml"
    cfg.write_text(f'redis_url = "{redis_url}"\nfeed_interval = 45\n')
    cp = ingest("feeds", "add", "https://cfg.example/feed", "--no-check", env={"INGEST_CONFIG": str(cfg)}, cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    assert "every 45s" in cp.stdout


def test_without_any_redis_the_message_says_what_to_do(tmp_path: Path) -> None:
    cp = ingest("stats", cwd=tmp_path)
    assert cp.returncode == 1
    assert "ingest up" in one_line_error(cp)


def test_feeds_add_list_remove_round_trip(redis_url: str) -> None:
    env = {"REDIS_URL": redis_url}
    assert (
        ingest("feeds", "add", "https://round.example/feed", "--no-check", "--interval", "120", env=env).returncode == 0
    )
    listed = ingest("feeds", "list", "--json", env=env)
    assert '"url": "https://round.example/feed"' in listed.stdout and '"interval": 120' in listed.stdout
    assert ingest("feeds", "remove", "https://round.example/feed", env=env).returncode == 0
    assert "no feeds" in ingest("feeds", "list", env=env).stdout


def test_stats_and_items_on_an_empty_service(redis_url: str) -> None:
    env = {"REDIS_URL": redis_url}
    assert ingest("stats", env=env).returncode == 0
    assert ingest("stats", "--json", env=env).stdout.startswith("{")
    cp = ingest("items", "--stream", "storyline:energy-ceasefire", env=env)
    assert cp.returncode == 0 and cp.stdout == ""


def test_importing_the_library_does_not_import_celery() -> None:
    code = (
        "import sys, importlib, pkgutil, ingest\n"
        "for m in pkgutil.iter_modules(ingest.__path__):\n"
        "    if m.name != '__main__': importlib.import_module('ingest.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'celery' or n.startswith(('celery.', 'kombu')))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://[example.com]/x", "http://a.example/\x01", "http://a.example/\u200b"]
)
def test_odd_urls_are_refused_up_front_by_enqueue_and_feeds_add(redis_url: str, r: redis.Redis, url: str) -> None:
    for args in (("enqueue", url), ("feeds", "add", url)):
        cp = ingest(*args, env={"REDIS_URL": redis_url})
        assert cp.returncode == 2, cp.stderr
        assert "URL" in one_line_error(cp)
    assert queued(r) == 0 and not r.keys("ingest:feed*")


@pytest.mark.parametrize(
    ("args", "param"),
    [
        (("items", "--count", "99999999999999999999"), "--count"),
        (("consume", "--group", "g", "--block", "99999999999999999999"), "--block"),
        (("consume", "--group", "g", "--count", "99999999999999999999"), "--count"),
        (("api", "--port", "70000"), "--port"),
    ],
)
def test_numbers_redis_or_the_os_would_refuse_exit_2_naming_the_parameter(
    redis_url: str, args: tuple[str, ...], param: str
) -> None:
    cp = ingest(*args, env={"REDIS_URL": redis_url})
    assert cp.returncode == 2 and f"argument {param}" in cp.stderr and "Traceback" not in cp.stderr
