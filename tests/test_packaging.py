"""docker-compose.yml and the Dockerfile, checked by parsing (no Docker engine on CI machines)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from ingest.cli import build_parser
from ingest.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, dict[str, object]]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services: dict[str, dict[str, object]] = data["services"]
    return services


def test_compose_runs_redis_workers_beat_and_api() -> None:
    services = compose()
    assert set(services) == {"redis", "worker", "beat", "api"}
    redis_cmd = services["redis"]["command"]
    assert isinstance(redis_cmd, list) and "--appendonly" in redis_cmd  # nothing lost on restart
    for name in ("worker", "beat", "api"):
        svc = services[name]
        assert svc["build"] == "."
        env = svc["environment"]
        assert isinstance(env, dict) and env["REDIS_URL"] == "redis://redis:6379/0"
        assert svc["depends_on"] == {"redis": {"condition": "service_healthy"}}


def test_compose_commands_are_valid_ingest_commands() -> None:
    parser = build_parser()
    for name in ("worker", "beat", "api"):
        command = compose()[name]["command"]
        assert isinstance(command, list)
        args = parser.parse_args([str(c) for c in command])
        assert args.command == name


def test_compose_environment_uses_only_known_settings() -> None:
    known = {f"INGEST_{f.upper()}" for f in Settings.model_fields} | {"REDIS_URL"}
    for svc in compose().values():
        env = svc.get("environment") or {}
        assert isinstance(env, dict)
        assert set(env) <= known, set(env) - known


def test_dockerfile_ships_seeds_and_the_console_script() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    assert "COPY seeds ./seeds" in docker and "INGEST_SEEDS_DIR=/app/seeds" in docker
    assert 'ENTRYPOINT ["ingest"]' in docker
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["ingest"] == "ingest.cli:entry"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
