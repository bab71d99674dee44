"""`citygrid serve --workers N`: gunicorn's pre-fork master with uvicorn workers.

uvicorn's own `--workers` starts each worker with `spawn`, so every worker builds its own address index (the
largest thing in memory). Here the master builds the app and the index once and then forks (`preload_app`):
workers start with the index already in their memory, sharing its pages with the master and each other until
they write to them, and answer geocodes from their first request. The app's lifespan (database engine, pools,
interrupted jobs) still runs in each worker after the fork, so no connection crosses a fork.

Webhook deliveries run in a spawned process of their own (`deliver_webhooks`): a thread of the master would be
running while gunicorn forks (re)started workers, and a lock it held then would stay locked in the child.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):  # type: ignore[misc]  # untyped base
    """uvicorn in a gunicorn worker. Forwarded headers are read by the app from CITYGRID_FORWARDED_ALLOW_IPS
    (api/proxy.py), not by uvicorn, which would ignore the forwarded host."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "proxy_headers": False}


class _PreforkServer(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self._app, self._options = app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app


def run_prefork(build: Callable[[], Any], *, host: str, port: int, workers: int, keepalive: int = 75) -> None:
    """Build the app in this process (`build` also preloads what workers should share), then serve it from
    `workers` forked processes behind one port until stopped."""
    app = build()
    gc.collect()
    gc.freeze()  # what the master built stays out of the collector's reach, so collections do not copy its pages
    _PreforkServer(app, {"bind": f"{host}:{port}", "workers": workers, "worker_class": "citygrid.server.Worker",
                         "preload_app": True, "graceful_timeout": 20, "timeout": 120, "keepalive": keepalive,
                         "loglevel": "info"}).run()


def deliver_webhooks(url: str) -> multiprocessing.process.BaseProcess:
    """Webhook deliveries (citygrid/sharing/webhooks.py) in a spawned child that ends with the server."""
    proc = multiprocessing.get_context("spawn").Process(target=_deliver, args=(url,), name="citygrid-webhooks",
                                                        daemon=True)
    proc.start()
    return proc


def _deliver(url: str) -> None:
    import threading

    from citygrid.db.engine import app_engine_for
    from citygrid.sharing.webhooks import run

    run(app_engine_for(url), threading.Event())
