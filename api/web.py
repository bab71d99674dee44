"""The web map viewer: `/map` (a MapLibre GL page), its assets at `/static`, and MapLibre itself at
`/vendor/maplibre-gl`, served from the npm package in `data/vendor` so the page makes no external requests.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from citygrid.settings import get_settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAPLIBRE_URL = "/vendor/maplibre-gl"


def maplibre_dir() -> Path | None:
    """`<npm_dir>/node_modules/maplibre-gl/dist` when it has been installed (`npm ci` in data/vendor)."""
    d = get_settings().npm_dir / "node_modules" / "maplibre-gl" / "dist"
    return d if (d / "maplibre-gl.js").is_file() else None


def install(app: FastAPI) -> None:
    """Mount the static assets and MapLibre, and add `GET /map`. Idempotent."""
    if any(getattr(r, "path", None) == "/map" for r in app.routes):
        return
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    lib = maplibre_dir()
    if lib is not None:
        app.mount(MAPLIBRE_URL, StaticFiles(directory=lib), name="maplibre-gl")

    @app.get("/map", response_class=HTMLResponse, tags=["system"], summary="Web map viewer (MapLibre GL)")
    def map_page() -> HTMLResponse:
        html = (STATIC_DIR / "map.html").read_text(encoding="utf-8")
        if lib is None:  # the page checks window.maplibregl and shows this message instead of a map
            html = html.replace("<!--maplibre-missing-->",
                                '<div id="fatal">地图库未安装：请在 data/vendor 下运行 npm ci '
                                "(MapLibre GL is not installed: run <code>npm ci</code> in data/vendor)</div>")
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
