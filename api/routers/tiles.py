"""Vector tiles, TileJSON and MapLibre styles per layer, and the layer list the web map is built from;
strong ETags from the layer's data version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.engine import Connection

from api.deps import ReadTarget, not_modified, read_conn, read_principal, read_target
from api.openapi import MVT, NOT_MODIFIED, errors, media, ok, with_headers
from api.schemas import LayerList, MapStyle, TileJSON
from citygrid.layers import tiles as T
from citygrid.security.principal import Principal

router = APIRouter(tags=["tiles"])
TILE_ETAG = "strong: the layer's data version; send it back as If-None-Match for a 304"


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _tiles_url(request: Request, layer: str) -> str:
    return f"{_root(request)}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"


@router.get("/layers", summary="Every layer with data: kind, title, map group, count, tile and style links",
            responses=ok(LayerList))
def get_layers(request: Request, c: Connection = Depends(read_conn), p: Principal = Depends(read_principal)
               ) -> dict[str, Any]:
    return {"layers": T.layer_list(c, p, _root(request))}


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", summary="Mapbox vector tile (EPSG:3857 tile matrix)",
            response_class=Response, responses=with_headers(media(MVT), ETag=TILE_ETAG) | NOT_MODIFIED | errors(404))
async def get_tile(layer: str, z: int, x: int, y: int, request: Request, r: ReadTarget = Depends(read_target)
                   ) -> Response:
    t = await T.tile_async(r.engine, r.principal, layer, z, x, y)
    headers = {"ETag": t.etag, "Cache-Control": "no-cache"} | t.headers()
    if not_modified(request, t.etag):
        return Response(status_code=304, headers=headers)
    return Response(t.data, media_type=MVT, headers=headers)


@router.get("/tiles/{layer}.json", summary="TileJSON 3.0 for a layer", responses=ok(TileJSON) | errors(404))
def tilejson(layer: str, request: Request, c: Connection = Depends(read_conn), p: Principal = Depends(read_principal)
             ) -> dict[str, Any]:
    return T.tilejson(c, p, layer, _tiles_url(request, layer))


@router.get("/styles/{layer}.json", summary="MapLibre style for a layer, generated from the catalog",
            responses=ok(MapStyle) | errors(404))
def get_style(layer: str, request: Request, c: Connection = Depends(read_conn), p: Principal = Depends(read_principal)
              ) -> dict[str, Any]:
    return T.style(T.find_layer(c, p, layer), _tiles_url(request, layer))
