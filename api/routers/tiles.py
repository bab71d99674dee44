"""Vector tiles, TileJSON and MapLibre styles per layer; strong ETags from the layer's data version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.engine import Connection

from api.deps import conn, not_modified
from citygrid.catalog import get_catalog
from citygrid.errors import CitygridError
from citygrid.layers import tiles as T

router = APIRouter(tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", summary="Mapbox vector tile (EPSG:3857 tile matrix)",
            response_class=Response)
def get_tile(layer: str, z: int, x: int, y: int, request: Request, c: Connection = Depends(conn)) -> Response:
    t = T.tile(c, layer, z, x, y)
    headers = {"ETag": t.etag, "Cache-Control": "no-cache"}
    if not_modified(request, t.etag):
        return Response(status_code=304, headers=headers)
    return Response(t.data, media_type=MVT, headers=headers)


@router.get("/tiles/{layer}.json", summary="TileJSON 3.0 for a layer")
def tilejson(layer: str, request: Request, c: Connection = Depends(conn)) -> dict[str, Any]:
    if not T.layer_exists(c, layer):
        raise CitygridError.one("layer_not_found", f"图层 {layer} 不存在", f"layer {layer} not found", "layer",
                                kind="not_found")
    cls = get_catalog().get(layer[6:]) if layer.startswith("class-") else None
    fields = {"code": "String", "name": "String"} | (
        {"state": "String", "township_code": "String", "village_code": "String"} if cls else
        {"kind": "String", "households": "Number"} if layer.startswith("grids-") else
        {"full_name": "String"} if layer == "doorplates" else {"level": "Number"})
    title = cls.name if cls else f"网格 {layer[6:]}" if layer.startswith("grids-") else \
        "门牌" if layer == "doorplates" else "行政区划"
    return {"tilejson": "3.0.0", "name": title,
            "tiles": [f"{_root(request)}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"], "minzoom": 0, "maxzoom": 16,
            "bounds": [73.0, 3.0, 136.0, 54.0], "vector_layers": [{"id": layer, "fields": fields}]}


@router.get("/styles/{layer}.json", summary="MapLibre style for a layer, generated from the catalog")
def get_style(layer: str, request: Request, c: Connection = Depends(conn)) -> dict[str, Any]:
    if not T.layer_exists(c, layer):
        raise CitygridError.one("layer_not_found", f"图层 {layer} 不存在", f"layer {layer} not found", "layer",
                                kind="not_found")
    return T.style(layer, f"{_root(request)}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt")
