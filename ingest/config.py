"""The one Settings object: environment variables, optionally a TOML file named by INGEST_CONFIG."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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

    data_dir: Path = Path("var")
    seeds_dir: Path = Field(default_factory=_default_seeds_dir)
    storylines_dir: Path | None = None

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)

    user_agent: str = f"storyline-ingest/{__version__} (news ingestion; respects robots.txt)"
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=20.0, gt=0)
    fetch_deadline: float = Field(default=45.0, gt=0)
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

    @field_validator("redis_url", "api_token")
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


def load_settings(**overrides: Any) -> Settings:
    """Build Settings once at the edge of the program, turning validation errors into ConfigError."""
    path = os.environ.get("INGEST_CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"INGEST_CONFIG names {path!r}, which is not a file")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
    except ValueError as exc:  # a TOML file that does not parse
        raise ConfigError(f"cannot read configuration: {exc}") from None
