"""Runtime settings from the environment, in one place so every entry point agrees."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None
    schemas_dir: Path
    host: str
    port: int
    npm_dir: Path
    tile_renders: int  # tiles built at once per process; more only queue up in PostgreSQL and fight for its CPUs


def get_settings() -> Settings:
    data_dir = Path(os.environ.get("CITYGRID_DATA_DIR", REPO_ROOT / ".citygrid")).resolve()
    return Settings(
        data_dir=data_dir,
        database_url=os.environ.get("DATABASE_URL") or None,
        schemas_dir=Path(os.environ.get("CITYGRID_SCHEMAS", REPO_ROOT / "schemas")).resolve(),
        host=os.environ.get("CITYGRID_HOST", "127.0.0.1"),
        port=int(os.environ.get("CITYGRID_PORT", "8000")),
        npm_dir=Path(os.environ.get("CITYGRID_NPM_DIR", REPO_ROOT / "data" / "vendor")).resolve(),
        tile_renders=int(os.environ.get("CITYGRID_TILE_RENDERS", "0")) or max(2, os.cpu_count() or 2),
    )
