"""Settings read from SHEQUN_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-insecure-secret-change-me"


class Settings(BaseSettings):
    """All configuration of a shequn process; the defaults boot on SQLite with no other service."""

    model_config = SettingsConfigDict(env_prefix="SHEQUN_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = DEV_SECRET
    host: str = "127.0.0.1"
    port: int = 8000
    # Where members reach this server (links in messages, QR codes); empty: the request's own address.
    public_url: str = ""
    # "embedded" runs the job worker inside the server process; "external" expects `shequn worker`.
    jobs_mode: Literal["embedded", "external", "immediate"] = "embedded"
    job_workers: int = 2
    max_upload_mb: int = Field(default=50, ge=1)
    import_batch_size: int = Field(default=10_000, ge=1)
    # Full segment refreshes: "numpy" evaluates on a cached columnar snapshot, "sql" runs the compiled query.
    segment_engine: Literal["numpy", "sql"] = "numpy"
    default_locale: Literal["zh-CN", "en"] = "zh-CN"
    default_timezone: str = "Asia/Shanghai"
    session_hours: int = 12
    sql_echo: bool = False
    sqlite_cache_mb: int = Field(default=128, ge=8, description="page cache per SQLite connection")

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        """Outside development and tests a default secret would make every signature forgeable."""
        if self.env == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("SHEQUN_SECRET_KEY must be set to a random value in production")
        return self

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file under var_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'shequn.db').resolve()}"

    @property
    def upload_dir(self) -> Path:
        """Where uploaded import files wait for their job."""
        return self.var_dir / "uploads"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache after changing the environment)."""
    return Settings()
