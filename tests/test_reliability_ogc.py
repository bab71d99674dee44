"""OGC API - Features details that ogctests (README: OGC conformance) checks, kept as our own tests so they hold
between its runs: the API definition's advertised version is the document's, /conformance claims no class the
document cannot meet (OpenAPI 3.0), a bad `limit` is a 400 (/req/core/query-param-invalid, ats ast20), `/ogc/`
is answered rather than redirected, and GeoJSON geometries carry no `crs` member (RFC 7946)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_the_api_definition_link_says_the_version_the_document_is(client: TestClient) -> None:
    version = client.get("/openapi.json").json()["openapi"]
    desc = [lk for lk in client.get("/ogc").json()["links"] if lk["rel"] == "service-desc"]
    assert desc and desc[0]["type"] == f"application/vnd.oai.openapi+json;version={version.rsplit('.', 1)[0]}"
    conf = client.get("/ogc/conformance").json()["conformsTo"]
    assert version.startswith("3.0") or not any(c.endswith("/conf/oas30") for c in conf)


def test_bad_parameters_are_400_and_the_landing_page_answers_with_a_slash(client: TestClient) -> None:
    for params in ({"limit": "unlimited"}, {"limit": "0"}, {"bbox": "1,2,3"}):
        r = client.get("/ogc/collections/divisions/items", params=params)
        assert r.status_code == 400, (params, r.text)
        assert {"error_code", "message_zh", "message_en"} <= set(r.json())
    r = client.get("/ogc/", follow_redirects=False)
    assert r.status_code == 200 and r.json()["links"]


def test_geojson_geometries_carry_no_crs_member(client: TestClient) -> None:
    r = client.get("/ogc/collections/divisions/items", params={"limit": 5, "bbox": "114.8,30.0,115.3,30.3"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    feats = r.json()["features"]
    assert feats and all(f["geometry"] is None or "crs" not in f["geometry"] for f in feats)
    assert "crs" not in r.json()
