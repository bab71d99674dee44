"""Web pages: the map viewer `/map` (a MapLibre GL page), its assets at `/static`, MapLibre itself at
`/vendor/maplibre-gl` and Swagger UI (`/docs`) at `/vendor/swagger-ui` (served from the npm packages in
`data/vendor`, so no page makes external requests), and the Jinja2 templates of every HTML page
(`api/templates/`, autoescaped) with `render` for routes that serve one. No page has inline script or style: the
CSP of api/hardening.py forbids both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.openapi import media
from citygrid.address.plates import font_path
from citygrid.catalog import get_catalog
from citygrid.errors import E
from citygrid.layers import glyphs
from citygrid.settings import get_settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MAPLIBRE_URL = "/vendor/maplibre-gl"
SWAGGER_URL = "/vendor/swagger-ui"

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


def swagger_dir() -> Path | None:
    """`<npm_dir>/node_modules/swagger-ui-dist` when it has been installed (`npm ci` in data/vendor)."""
    d = get_settings().npm_dir / "node_modules" / "swagger-ui-dist"
    return d if (d / "swagger-ui-bundle.js").is_file() else None


def install(app: FastAPI) -> None:
    """Mount the static assets, MapLibre and Swagger UI, and add `GET /map` and `GET /docs`. Idempotent."""
    if any(getattr(r, "path", None) == "/map" for r in app.routes):
        return
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    lib = maplibre_dir()
    if lib is not None:
        app.mount(MAPLIBRE_URL, StaticFiles(directory=lib), name="maplibre-gl")
    swagger = swagger_dir()
    if swagger is not None:
        app.mount(SWAGGER_URL, StaticFiles(directory=swagger), name="swagger-ui")

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs_page() -> HTMLResponse:
        """Swagger UI, self-hosted (FastAPI's default page loads it from a CDN with an inline script)."""
        return HTMLResponse(render("docs.html", openapi_url=app.openapi_url, swagger=SWAGGER_URL,
                                   swagger_missing=swagger is None))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> RedirectResponse:
        """One documentation page is enough to self-host and keep under the CSP: old links land on /docs."""
        return RedirectResponse("/docs", status_code=308)

    @app.get("/survey", response_class=HTMLResponse, tags=["survey"], summary="Survey page: cadres upload, "
             "reviewers approve (the data comes from /submissions with the logged-in token)")
    def survey_page() -> HTMLResponse:
        classes = [{"code": c.code, "name": c.name} for c in get_catalog().classes.values()]
        return HTMLResponse(render("survey.html", classes=classes, maplibre_missing=lib is None),
                            headers={"Cache-Control": "no-cache"})

    @app.get("/glyphs/{fontstack}/{block}.pbf", tags=["tiles"], summary="Map label glyphs (SDF protobuf, 256 "
             "code points) made from the server's CJK font, so map labels need no glyph server",
             responses=media("application/x-protobuf"))
    def glyph_block(fontstack: str, block: str) -> Response:
        start, _, end = block.partition("-")
        if not (start.isdigit() and end.isdigit()):
            raise E.glyph_range("range", range=block[:40])
        body = glyphs.glyph_range(font_path(), fontstack, int(start), int(end))
        return Response(body, media_type="application/x-protobuf", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/map", response_class=HTMLResponse, tags=["system"], summary="Web map viewer (MapLibre GL)")
    def map_page() -> HTMLResponse:
        # without MapLibre the page shows a message instead of a map (map.js checks window.maplibregl too)
        return HTMLResponse(render("map.html", maplibre_missing=lib is None), headers={"Cache-Control": "no-cache"})
