"""The FastAPI application. `create_app(url)` is what tests and `citygrid serve` both use."""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import deps, errors, hardening, openapi, proxy, retry, web
from api.openapi import errors as errors_doc
from api.openapi import ok
from api.routers import (
    address,
    aggregate,
    audit,
    auth,
    catalog,
    changes,
    codes,
    divisions,
    doorplates,
    freshness,
    grids,
    jobs,
    links,
    objects,
    odk,
    ogc,
    survey,
    tiles,
    webhooks,
)
from api.schemas import Health, Liveness, Readiness, ServiceIndex
from citygrid import __version__
from citygrid.catalog import get_catalog
from citygrid.db.aio import close_pools
from citygrid.db.health import loaded, readiness
from citygrid.db.replicas import from_settings
from citygrid.jobs import mark_interrupted
from citygrid.security.principal import ANONYMOUS, SYSTEM
from citygrid.security.scope import scoped, scoped_engine
from citygrid.settings import get_settings
from citygrid.survey import intake as survey_intake


def create_app(database_url: str | None = None, *, prepare: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from citygrid.address.index import AddressIndexCache
        from citygrid.db.bootstrap import AppRoleError, check_app_login
        from citygrid.db.bootstrap import prepare as prepare_db
        from citygrid.db.engine import app_database_url, app_engine_for
        from citygrid.db.engine import database_url as resolve
        from citygrid.db.migrate import SchemaError

        get_settings()  # a bad CITYGRID_* value fails here, at start, naming the variable
        url = database_url or resolve()
        get_catalog()  # a malformed catalog fails here, at start, naming file and path
        try:
            if prepare:
                prepare_db(url)  # migrations and the catalog as the owner; requests never run as the owner
            # requests log in as citygrid_app, which owns nothing and takes its caller's scope (citygrid/db/roles.py)
            app.state.engine = check_app_login(app_engine_for(app_database_url(url)))
        except (SchemaError, AppRoleError) as exc:  # the operator's to fix: said first, in one line
            logging.getLogger("citygrid").critical("citygrid refuses to start: %s", exc)
            raise
        # hot standbys for the heavy reads, when configured (citygrid/db/replicas.py); None: the primary only
        app.state.replicas = replicas = from_settings(app.state.engine)
        app.state.address_indexes = AddressIndexCache(  # loaded on first use (api/deps.py)
            app.state.engine, (lambda: replicas.for_read(None)[1]) if replicas else None,
            max_age=get_settings().address_check_ms / 1000)
        # jobs left `running` by a process that died (kill -9, a crash) are marked interrupted, their output cut
        # back to what their record says (citygrid/jobs.py); they can then be resumed, retried or cancelled
        mark_interrupted(scoped_engine(app.state.engine, SYSTEM))
        # survey submissions stored but never processed (their job died with its process) are processed again
        survey_intake.resume_pending(app.state.engine, app.state.address_indexes.get)
        # Everything loaded so far (catalog, CRS tables, SQLAlchemy, h3...) lives as long as the process; moving it
        # out of the collector's generations keeps full collections from walking it during large responses
        # (20k-group aggregates: 178 -> 105 ms).
        gc.freeze()
        yield
        await close_pools()  # the async read path's connections (citygrid/db/aio.py)

    app = FastAPI(
        title="citygrid",
        version=__version__,
        summary="城市数字公共基础设施：统一编码、行政区划、城市对象登记 / unified codes, divisions, object registry",
        description="Errors are 4xx answers with `{error_code, message_zh, message_en, field, row, errors[]}` "
                    "(an internal error is a 500 in the same shape, with a reference to the server log); "
                    "`{name}` in a message is filled in per request. Also at `GET /errors`.\n\n" + errors.markdown(),
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # self-hosted under the pages' CSP instead (api/web.py)
    )
    errors.install(app)
    for r in (auth.router, audit.router, divisions.router, catalog.router, codes.router, objects.router, jobs.router, ogc.router, tiles.router, aggregate.router,
              address.router, grids.router, links.router, changes.router, webhooks.router, survey.router,
              odk.router, freshness.router, doorplates.router):
        app.include_router(r)

    web.install(app)
    openapi.install(app, credentials=(deps.conn, deps.polling_conn, deps.read_conn, deps.read_target, deps.odk_principal), database=(deps.address_indexes,),
                    body_methods=hardening.BODY_METHODS,
                    rate_limited=[key for key, rule in hardening.ROUTES.items() if rule.bucket])
    app.add_middleware(retry.RetryAborted)  # innermost: bodies are size-checked and text-checked before it buffers
    hardening.install(app)
    # outermost: the rate limits and every route see the caller's address and scheme, not the proxy's
    app.add_middleware(proxy.TrustedProxyHeaders)

    started = time.monotonic()

    @app.get("/health", tags=["system"], responses=ok(Health) | errors_doc(503))
    def health() -> dict[str, Any]:
        with app.state.engine.connect() as c:
            return {"status": "ok", "version": __version__} | loaded(scoped(c, ANONYMOUS))

    @app.get("/healthz", tags=["system"], summary="Liveness: the process answers (no database access)",
             responses=ok(Liveness))
    async def healthz() -> dict[str, Any]:
        return {"status": "alive", "version": __version__, "pid": os.getpid(),
                "uptime_s": round(time.monotonic() - started, 1)}

    @app.get("/readyz", tags=["system"], summary="Readiness: the database answers and the address index is in "
             "memory; 503 with Retry-After until then (the first probe starts loading the index)",
             responses=ok(Readiness) | errors_doc(503))
    def readyz() -> dict[str, Any]:
        ready = readiness(app.state.engine, app.state.address_indexes)
        if app.state.replicas is not None:
            ready["replicas"] = app.state.replicas.status()
        return ready

    @app.get("/", tags=["system"], responses=ok(ServiceIndex))
    def index() -> dict[str, Any]:
        return {"name": "citygrid", "docs": "/docs", "openapi": "/openapi.json",
                "links": ["/divisions/420281", "/classes", "/departments", "/objects", "/codes/{code}", "/health"]}

    return app


def worker_app() -> FastAPI:
    """The app of one `citygrid serve --workers N` process (uvicorn's factory): the parent already migrated the
    database and loaded what it serves, so workers do not race to prepare it."""
    return create_app(prepare=False)
