"""The layer registry (`citygrid.layers.sources`): every kind of layer is served the same way by every consumer.

A new kind of layer added to `sources.KINDS` is covered here by itself: the demo county must give it data,
and its id must round-trip, list, page as OGC items, filter by its queryables, tile, and describe itself
in TileJSON, a style and the web map's layer list.
"""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from citygrid.layers import sources
from citygrid.security.principal import ANONYMOUS


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _first_position(geom: dict) -> tuple[float, float]:
    c = geom["coordinates"]
    while isinstance(c[0], list):
        c = c[0]
    return float(c[0]), float(c[1])


@pytest.fixture(scope="module")
def listed(engine: Engine, demo_county: dict) -> list[tuple[sources.Layer, int]]:
    with engine.connect() as c:
        return sources.listing(c, ANONYMOUS)


def test_every_kind_has_layers_in_the_demo_and_ids_round_trip(listed: list[tuple[sources.Layer, int]]) -> None:
    kinds = {layer.kind for layer, _ in listed}
    assert kinds == {k.kind for k in sources.KINDS}
    for layer, n in listed:
        again = sources.find(layer.id)
        assert again is not None and type(again) is type(layer) and again.id == layer.id
        assert n > 0
    assert sources.find("class-000000") is None and sources.find("nothing") is None and sources.find("grids-") is None


def test_layers_endpoint_lists_what_collections_list(client: TestClient, listed: list) -> None:
    layers = client.get("/layers").json()["layers"]
    cols = client.get("/ogc/collections").json()["collections"]
    assert [(x["id"], x["count"]) for x in layers] == [(c["id"], c["numberOfFeatures"]) for c in cols]
    by_id = {x["id"]: x for x in layers}
    assert by_id["divisions"]["group"] is None  # the map's base, not a toggle
    for x in layers:
        layer = sources.find(x["id"])
        assert layer is not None
        assert x["kind"] == layer.kind and x["opens_object"] == (layer.class_code is not None)
        if layer.class_code:
            assert x["group"]["key"] == layer.class_code[:2]
        assert x["tiles"].endswith(f"/tiles/{x['id']}/{{z}}/{{x}}/{{y}}.mvt")


def test_each_layer_pages_filters_tiles_and_describes_itself(client: TestClient, listed: list) -> None:
    seen: set[str] = set()
    for layer, n in listed:
        if layer.kind in seen and layer.kind != "grids":
            continue  # one object class stands for all
        seen.add(layer.kind)
        lid = layer.id
        page = client.get(f"/ogc/collections/{lid}/items", params={"limit": 3})
        assert page.status_code == 200, (lid, page.text)
        body = page.json()
        assert body["numberMatched"] == n and body["numberReturned"] == min(3, n)
        feat = body["features"][0]
        # the queryables name the properties a feature carries, and filtering by one finds the feature
        q = client.get(f"/ogc/collections/{lid}/queryables").json()["properties"]
        assert "code" in q and "geom" in q
        hit = client.get(f"/ogc/collections/{lid}/items", params={"filter": f"code = '{feat['id']}'"}).json()
        assert [f["id"] for f in hit["features"]] == [feat["id"]]
        one = client.get(f"/ogc/collections/{lid}/items/{feat['id']}").json()
        assert one["id"] == feat["id"] and one["properties"]["code"] == feat["id"]
        # the feature shows in the tile that holds its first vertex (z16: no thinning; divisions show villages)
        if layer.kind == "divisions":
            feat = client.get(f"/ogc/collections/{lid}/items", params={"limit": 1, "level": "5"}).json()["features"][0]
        lon, lat = _first_position(feat["geometry"])
        x, y = _tile_of(lon, lat, 16)
        tile = client.get(f"/tiles/{lid}/16/{x}/{y}.mvt")
        assert tile.status_code == 200
        decoded = mapbox_vector_tile.decode(tile.content)
        assert set(decoded) == {lid}
        assert feat["id"] in {f["properties"]["code"] for f in decoded[lid]["features"]}
        fields = client.get(f"/tiles/{lid}.json").json()["vector_layers"][0]["fields"]
        for f in decoded[lid]["features"]:
            assert set(f["properties"]) <= set(fields)
        style = client.get(f"/styles/{lid}.json").json()
        assert style["sources"][lid]["tiles"][0].endswith(f"/tiles/{lid}/{{z}}/{{x}}/{{y}}.mvt")
        assert all(ly["source-layer"] == lid for ly in style["layers"])
    assert seen == {k.kind for k in sources.KINDS}


def test_area_layers_give_outlines_for_aggregates(engine: Engine, listed: list) -> None:
    from sqlalchemy import text

    with engine.connect() as c:
        for layer, _ in listed:
            if not layer.area_outlines:
                continue
            where, params = layer.where()
            code = c.execute(text(f"SELECT o.code FROM {layer.table} WHERE {' AND '.join(where)} LIMIT 1"),
                             params).scalar_one()
            sql, extra = layer.outlines_sql()
            rows = c.execute(text(sql), extra | {"c": [code]}).all()
            assert [r[0] for r in rows] == [code] and '"coordinates"' in rows[0][1]
