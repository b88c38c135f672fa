"""Settings. Every knob is a YILIAN_* environment variable; the defaults give an embedded SQLite platform in ./var/."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YILIAN_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where the SQLite file, the secret key and exports live.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means sqlite:///<data_dir>/yilian.db.")
    secret_key: str = Field(default="", description="Signs sessions and tokens; generated into <data_dir>/secret_key.")
    lang: str = Field(default="zh", description="Default interface language: zh or en.")
    token_hours: int = Field(default=12, ge=1, le=24 * 30)
    timezone: str = "Asia/Shanghai"
    # Linkage thresholds (match probability) for the master patient index.
    mpi_auto_link: float = Field(default=0.97, ge=0, le=1)
    mpi_review: float = Field(default=0.80, ge=0, le=1)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'yilian.db').resolve()}"

    def resolved_secret_key(self) -> str:
        """The configured key, else the one stored in the data dir, else a new one written there (0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
