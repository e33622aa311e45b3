"""The one Settings object: environment variables, optionally a TOML file named by INGEST_CONFIG."""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ingest import __version__
from ingest.errors import ConfigError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


# INGEST_* variables that are read outside Settings (they are not settings, but they are known):
# the config file, tracebacks, and what the browser tests read (which browser, where screenshots go).
OTHER_VARIABLES = ("INGEST_CONFIG", "INGEST_DEBUG", "INGEST_CHROMIUM", "INGEST_CHROMEDRIVER", "INGEST_SCREENSHOTS")
# The data folder's name when INGEST_DATA_DIR is unset; commands look for it upward, as git does.
DATA_DIR_NAME = "var"


def find_data_dir(start: Path | None = None) -> Path:
    """The nearest `var/` that holds service data, in the current folder or above; else ./var."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DATA_DIR_NAME
        # A data folder is one the embedded Redis has used: its server record or its files.
        if (candidate / "redis").is_dir() or (candidate / "redis.json").is_file():
            return candidate if folder != here else Path(DATA_DIR_NAME)
    if _PROJECT_ROOT in (here, *here.parents) and (_PROJECT_ROOT / "pyproject.toml").is_file():
        return _PROJECT_ROOT / DATA_DIR_NAME  # anywhere in a source checkout: the checkout's own
    return Path(DATA_DIR_NAME)


def _default_seeds_dir() -> Path:
    """The seeds folder of a source checkout, else ./seeds (a container sets INGEST_SEEDS_DIR)."""
    bundled = _PROJECT_ROOT / "seeds"
    return bundled if bundled.is_dir() else Path("seeds")


class Settings(BaseSettings):
    """Every tunable of the service, typed, with its default."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", frozen=True)

    # Contract names (DESIGN.md): REDIS_URL has no prefix, the rest are INGEST_*.
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    allow_private_networks: bool = False
    host_delay: float = Field(default=1.0, ge=0)
    api_token: str | None = None

    data_dir: Path = Field(default_factory=find_data_dir)
    # Port of the embedded Redis; unset: the one it used last time in this data folder, else 6390.
    redis_port: int | None = Field(default=None, ge=1, le=65535)
    # redis-server binary of the embedded mode; unset: the one that wrote the data folder, else the wheel's
    redis_server: str | None = None
    # Seconds a Redis command may take; blocking reads (consumers) add their block time to it.
    redis_socket_timeout: float = Field(default=10.0, gt=0)
    redis_connect_timeout: float = Field(default=5.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    seeds_dir: Path = Field(default_factory=_default_seeds_dir)
    storylines_dir: Path | None = None

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)

    user_agent: str = f"storyline-ingest/{__version__} (news ingestion; respects robots.txt)"
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=20.0, gt=0)
    fetch_deadline: float = Field(default=45.0, gt=0)
    # One attempt at a URL: every redirect hop, robots.txt and politeness wait (ingest/limits.py).
    attempt_deadline: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    robots_ttl: int = Field(default=24 * 3600, gt=0)
    max_host_wait: float = Field(default=20.0, ge=0)
    # trafilatura's fast mode skips its fallback extractors (readability, jusText): about 20% less
    # CPU per page and the same text F1 on the article-extraction benchmark (docs/benchmarks.md)
    extract_fast: bool = True

    stream_maxlen: int = Field(default=1_000_000, gt=0)
    dedup_retention_days: float = Field(default=90.0, gt=0)
    near_duplicate_threshold: float = Field(default=0.6, gt=0, le=1)
    seen_ttl_days: float = Field(default=90.0, gt=0)

    feed_interval: int = Field(default=300, ge=10)
    feed_max_backoff: int = Field(default=6 * 3600, ge=60)
    # Adaptive polling: a feed without its own interval is polled about once per new entry,
    # within [feed_min_interval, feed_max_interval]; publisher hints may only lengthen the wait.
    feed_adaptive: bool = True
    feed_min_interval: int = Field(default=300, ge=10)
    feed_max_interval: int = Field(default=24 * 3600, ge=60)
    feed_broken_after: int = Field(default=10, ge=1)
    # Some servers answer 304 forever after the feed changed: a conditional GET is skipped when the
    # last full answer is older than this (0: never).
    feed_unconditional_after: int = Field(default=24 * 3600, ge=0)
    feed_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Seconds a poll task spends enqueueing (and following sitemap indexes) before it hands the rest
    # to a continuation. A poll ends within fetch_deadline (the feed) + this + fetch_deadline (the
    # last child sitemap it started): 110 s by default, under the visibility timeout and time limit.
    feed_poll_budget: float = Field(default=20.0, gt=0)
    sitemap_max_depth: int = Field(default=2, ge=0, le=5)
    sitemap_max_files: int = Field(default=50, ge=1)
    beat_interval: float = Field(default=5.0, gt=0)
    sweep_interval: float = Field(default=60.0, gt=0)

    visibility_timeout: int = Field(default=120, ge=10)
    task_max_retries: int = Field(default=5, ge=0)
    max_deliveries: int = Field(default=5, ge=1)
    stale_job_after: int = Field(default=1800, ge=60)
    worker_concurrency: int | None = Field(default=None, ge=1)
    # Where worker pool processes write a CPU profile (cProfile) when they exit: benchmarks/profile_run.py
    profile_dir: Path | None = None
    # Where worker pool processes write the wall start, end and CPU time of each task when they exit:
    # where a run's cores sat idle (benchmarks/profile_run.py)
    timeline_dir: Path | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @field_validator("redis_url", "api_token", "redis_server")
    @classmethod
    def _blank_is_unset(cls, v: str | None) -> str | None:
        # docker-compose passes unset variables as empty strings
        return v or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then the environment, then the INGEST_CONFIG file.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("INGEST_CONFIG")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    @property
    def storylines_path(self) -> Path:
        """Folder of storyline definitions (seeds/storylines unless set)."""
        return self.storylines_dir or self.seeds_dir / "storylines"

    @property
    def retry_countdown_max(self) -> float:
        """Longest retry delay: kept under the visibility timeout so a held retry is not redelivered."""
        return self.visibility_timeout / 2


def env_name(field: str) -> str:
    """The environment variable of a setting (REDIS_URL has no prefix)."""
    return "REDIS_URL" if field == "redis_url" else f"INGEST_{field.upper()}"


def known_variables() -> set[str]:
    """Every INGEST_* variable the project reads."""
    return {env_name(f) for f in Settings.model_fields} | set(OTHER_VARIABLES)


def _suggest(name: str, known: set[str]) -> str:
    # Compared without the shared prefix, which would make every INGEST_ name look alike.
    by_stem = {k.removeprefix("INGEST_").lower(): k for k in known}
    close = difflib.get_close_matches(name.removeprefix("INGEST_").lower(), sorted(by_stem), n=1, cutoff=0.6)
    return f"; did you mean {by_stem[close[0]]}?" if close else ""


def check_names(environ: dict[str, str] | None = None) -> None:
    """Refuse unknown INGEST_* variables and unknown keys of the INGEST_CONFIG file: a typo is never ignored."""
    env = os.environ if environ is None else environ
    known = known_variables()
    for name in sorted(env):
        if name.startswith("INGEST_") and name not in known:
            raise ConfigError(f"unknown setting {name}{_suggest(name, known)}")
    path = env.get("INGEST_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read INGEST_CONFIG file {path}: {exc}") from None
        fields = set(Settings.model_fields)
        for key in data:
            if key not in fields:
                raise ConfigError(f"unknown key {key!r} in {path}{_suggest(key, fields)}")


def _where(field: str, environ: dict[str, str]) -> str:
    """Name a setting as the user wrote it: its variable, else its key in the TOML file."""
    var = env_name(field)
    if var in environ or not environ.get("INGEST_CONFIG"):
        return var
    return f"{field} in {environ['INGEST_CONFIG']}"


def load_settings(**overrides: Any) -> Settings:
    """Build Settings once at the edge of the program, turning validation errors into ConfigError."""
    path = os.environ.get("INGEST_CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"INGEST_CONFIG names {path!r}, which is not a file")
    check_names()
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        where = _where(field, dict(os.environ)) if field in Settings.model_fields else field or "settings"
        raise ConfigError(f"invalid {where}: {first['msg']}") from None
    except ValueError as exc:  # a TOML file that does not parse
        raise ConfigError(f"cannot read configuration: {exc}") from None
