"""Web pages: the map viewer `/map` (a MapLibre GL page), its assets at `/static`, MapLibre itself at
`/vendor/maplibre-gl` (served from the npm package in `data/vendor`, so the page makes no external requests), and
the Jinja2 templates of every HTML page (`api/templates/`, autoescaped) with `render` for routes that serve one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from citygrid.settings import get_settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MAPLIBRE_URL = "/vendor/maplibre-gl"

# Autoescape is on for every template whatever its name; an undefined variable is an error, not an empty string;
# a page is exactly its file (a final newline included).
_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                                undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def render(template: str, **context: Any) -> str:
    """The page `api/templates/<template>` rendered with `context` (values are escaped)."""
    return _templates.get_template(template).render(**context)


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
        # without MapLibre the page shows a message instead of a map (map.js checks window.maplibregl too)
        return HTMLResponse(render("map.html", maplibre_missing=lib is None), headers={"Cache-Control": "no-cache"})
