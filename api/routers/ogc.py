"""OGC API – Features at /ogc: landing, conformance, collections, items (keyset next/prev), Part 2 CRS,
Part 3 CQL2 filters (`filter`, `filter-lang`, `filter-crs`) and queryables, Part 4 editing of object-class
collections (POST items, PUT/PATCH/DELETE an item, with ETag/If-Match: `citygrid.layers.edit`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import ReadTarget, acting_principal, conn, current_principal, not_modified, read_target, writing
from api.openapi import GEOJSON, NOT_MODIFIED, Responses, errors, media, ok, with_headers
from api.schemas import CollectionOut, Collections, Conformance, Landing, OgcFeature, OgcItems, Queryables
from citygrid import crs as crsmod
from citygrid.layers import cql2, edit
from citygrid.layers import features as F
from citygrid.security.principal import Principal

router = APIRouter(prefix="/ogc", tags=["ogc"])
RESERVED = {"limit", "bbox", "bbox-crs", "crs", "datetime", "cursor", "before", "f", "filter", "filter-lang",
            "filter-crs"}
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    # not conf/oas30: FastAPI writes OpenAPI 3.1, which that requirement class does not accept (ogctests ast6)
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    *cql2.CONFORMANCE,  # Part 3 filtering: CQL2 text and JSON
    *edit.CONFORMANCE,  # Part 4: create, replace, update, delete; optimistic locking by ETag and by time
]


def _http_date(d: dt.datetime) -> str:
    return format_datetime(d.astimezone(dt.UTC), usegmt=True)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


@router.get("", summary="Landing page", responses=ok(Landing))
@router.get("/", include_in_schema=False)  # answered, not redirected: OGC test suites do not follow redirects
def landing(request: Request) -> dict[str, Any]:
    b = _base(request)
    return {"title": "citygrid OGC API – Features", "description": "城市对象与行政区划图层 / city objects and divisions",
            "links": [
                {"href": b, "rel": "self", "type": "application/json", "title": "this document"},
                {"href": str(request.base_url).rstrip("/") + "/openapi.json", "rel": "service-desc",
                 "type": "application/vnd.oai.openapi+json;version=3.1", "title": "OpenAPI"},
                {"href": str(request.base_url).rstrip("/") + "/docs", "rel": "service-doc", "type": "text/html"},
                {"href": b + "/conformance", "rel": "conformance", "type": "application/json"},
                {"href": b + "/collections", "rel": "data", "type": "application/json"},
            ]}


@router.get("/conformance", summary="Conformance classes", responses=ok(Conformance))
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


CONTENT_CRS_OUT = "the CRS of the answer's coordinates, as <URI> (Part 2)"
PAGE_ETAG = "strong: the layer's data version and the query; send it back as If-None-Match for a 304"
ITEM_ETAG = "the item's state (registry objects): If-None-Match gets a 304, If-Match guards a write (Part 4)"
ITEM_MODIFIED = "when the item last changed (registry objects): If-Unmodified-Since guards a write"
CRS_DOC = ("CRS as a URI from the collection's `crs` list: CRS84 (default), EPSG:4490 (CGCS2000, storage), 4326, "
           "4534–4554 (CGCS2000 Gauss-Krüger 3° zones), and GCJ-02 / BD-09 (the offsets Amap/Tencent and Baidu maps use, "
           "as " + crsmod.CITYGRID_URI + "GCJ-02 and …/BD-09; longitude first; only inside China, else 400 "
           "crs_offset_outside); short names (gcj02, bd09, EPSG:4547) are accepted too")


def _collection_doc(b: str, c: F.Collection) -> dict[str, Any]:
    return {
        "id": c.id, "title": c.title, "description": c.description, "itemType": "feature",
        "crs": F.supported_crs(), "storageCrs": F.crs_uri(4490),
        "extent": c.extent,
        "links": [
            {"href": f"{b}/collections/{c.id}", "rel": "self", "type": "application/json"},
            {"href": f"{b}/collections/{c.id}/items", "rel": "items", "type": GEOJSON},
            {"href": f"{b}/collections/{c.id}/queryables", "type": "application/schema+json",
             "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "title": "可查询属性 / queryables"},
        ],
        "numberOfFeatures": c.count, "geometryType": c.geometry_type, "classCode": c.class_code,
    }


@router.get("/collections", summary="Collections: one per object class with objects, plus divisions",
            responses=ok(Collections))
def list_collections(request: Request, c: Connection = Depends(conn), p: Principal = Depends(current_principal)
                     ) -> dict[str, Any]:
    b = _base(request)
    return {"links": [{"href": f"{b}/collections", "rel": "self", "type": "application/json"}],
            "collections": [_collection_doc(b, col) for col in F.collections(c, p)], "crs": F.supported_crs()}


@router.get("/collections/{cid}", summary="One collection", responses=ok(CollectionOut) | errors(404))
def get_collection(cid: str, request: Request, c: Connection = Depends(conn),
                   p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return _collection_doc(_base(request), F.collection(c, p, cid, count=True))


@router.get("/collections/{cid}/items", summary="Features, keyset-paged", response_class=JSONResponse,
            responses=with_headers(media(GEOJSON, OgcItems), ETag=PAGE_ETAG, Content_Crs=CONTENT_CRS_OUT) | NOT_MODIFIED
            | errors(404))
async def get_items(cid: str, request: Request, limit: int = Query(100, ge=1, le=F.MAX_LIMIT),
              bbox: str | None = None, bbox_crs: str | None = Query(None, alias="bbox-crs", description=CRS_DOC),
              crs: str | None = Query(None, description=CRS_DOC), datetime: str | None = None, cursor: str | None = Query(None, max_length=32),
              before: str | None = Query(None, max_length=32),
              filter_: str | None = Query(None, alias="filter", description="CQL2 filter (Part 3)"),
              filter_lang: str | None = Query(None, alias="filter-lang", description="cql2-text (default), cql2-json"),
              filter_crs: str | None = Query(None, alias="filter-crs",
                                             description="CRS of geometry literals: " + CRS_DOC),
              r: ReadTarget = Depends(read_target)) -> Response:
    props = {k: v for k, v in request.query_params.items() if k not in RESERVED}
    page = await F.items_async(r.engine, r.principal, cid, limit=limit, cursor=cursor, before=before, bbox=bbox,
                               bbox_crs=bbox_crs, crs=crs, datetime_=datetime, props=props, filter_=filter_,
                               filter_lang=filter_lang, filter_crs=filter_crs)
    headers = {"Content-Crs": f"<{page['crs']}>", "ETag": page["etag"], "Cache-Control": "no-cache"}
    if not_modified(request, page["etag"]):
        return Response(status_code=304, headers=headers)
    b = _base(request)
    keep = {k: v for k, v in request.query_params.items() if k not in ("cursor", "before")}
    self_href = f"{b}/collections/{cid}/items?{urlencode(dict(request.query_params))}"
    links = [{"href": self_href, "rel": "self", "type": GEOJSON},
             {"href": f"{b}/collections/{cid}", "rel": "collection", "type": "application/json"}]
    if page["next"]:
        links.append({"href": f"{b}/collections/{cid}/items?{urlencode(keep | {'cursor': page['next']})}",
                      "rel": "next", "type": GEOJSON})
    if page["prev"]:
        links.append({"href": f"{b}/collections/{cid}/items?{urlencode(keep | {'before': page['prev']})}",
                      "rel": "prev", "type": GEOJSON})
    head = {"type": "FeatureCollection", "numberMatched": page["numberMatched"],
            "numberReturned": page["numberReturned"], "links": links}
    body = json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [' + ",".join(page["features_json"]) + "]}"
    return Response(body.encode(), media_type=GEOJSON, headers=headers)


@router.get("/collections/{cid}/queryables", summary="Queryables (JSON Schema) for CQL2 filters",
            responses=media("application/schema+json", Queryables) | errors(404))
def get_queryables(cid: str, request: Request, c: Connection = Depends(conn),
                   p: Principal = Depends(current_principal)) -> JSONResponse:
    body = F.queryables(c, p, cid, f"{_base(request)}/collections/{cid}/queryables")
    return JSONResponse(body, media_type="application/schema+json")


@router.get("/collections/{cid}/items/{fid}", summary="One feature by code",
            responses=with_headers(media(GEOJSON, OgcFeature), ETag=ITEM_ETAG, Last_Modified=ITEM_MODIFIED,
                                   Content_Crs=CONTENT_CRS_OUT) | NOT_MODIFIED | errors(404))
def get_item(cid: str, fid: str, request: Request, crs: str | None = Query(None, description=CRS_DOC), c: Connection = Depends(conn),
             p: Principal = Depends(current_principal)) -> Response:
    feat = F.item(c, p, cid, fid, crs)
    out_crs = feat.pop("crs")
    tag, modified = feat.pop("etag"), feat.pop("last_modified")
    headers = {"Content-Crs": f"<{out_crs}>"}
    if tag is not None:  # registry objects: the state If-Match names (Part 4 optimistic locking)
        headers |= {"ETag": tag, "Last-Modified": _http_date(modified)}
        if not_modified(request, tag):
            return Response(status_code=304, headers=headers)
    b = _base(request)
    feat["links"] = [{"href": f"{b}/collections/{cid}/items/{fid}", "rel": "self", "type": GEOJSON},
                     {"href": f"{b}/collections/{cid}", "rel": "collection", "type": "application/json"}]
    return JSONResponse(feat, media_type=GEOJSON, headers=headers)


# --- Part 4: create, replace, update, delete (object-class collections only) ------------------------------------

CONTENT_CRS_DOC = ("CRS of the body's geometry as a URI in angle brackets or plain (Part 2; default CRS84, axis "
                   "order as the CRS defines it: EPSG:4490, 4326 and 4534–4554 are northing first); an "
                   "unsupported one is a 400")
IF_MATCH_DOC = "the ETag of the item as last read: a stale one is a 412 and nothing changes"
IF_UNMODIFIED_DOC = "HTTP date: refused with 412 when the item changed after it (ignored when If-Match is given)"


def _feature_body(*types: str) -> dict[str, Any]:
    schema = {"type": "object", "required": ["type", "geometry", "properties"],
              "properties": {"type": {"const": "Feature"}, "geometry": {"type": "object"},
                             "properties": {"type": "object"}}}
    return {"requestBody": {"required": True, "content": {t: {"schema": schema} for t in types}}}


RETIRED: Responses = {204: {"description": "retired"}}
_WRITE_ERRORS = errors(400, 401, 403, 404, 405, 409, 412, 415, why={
    400: "invalid feature, attribute (field names it: properties.<attr>), geometry or Content-Crs",
    403: "no right to edit this class here", 404: "no such collection or item",
    405: "the collection is read-only (Allow header)", 409: "the item is retired",
    412: "If-Match / If-Unmodified-Since failed: the item changed", 415: "the body is not JSON / GeoJSON"})


def _write_answer(request: Request, cid: str, w: edit.Written, status: int) -> Response:
    if w.feature is None:
        return Response(status_code=status)
    headers = {"Content-Crs": f"<{edit.content_crs(request.headers.get('content-crs')).uri}>"}
    if w.etag:
        headers["ETag"] = w.etag
    if w.last_modified is not None:
        headers["Last-Modified"] = _http_date(w.last_modified)
    if status == 201:
        headers["Location"] = f"{_base(request)}/collections/{cid}/items/{w.fid}"
    return Response(json.dumps(w.feature, ensure_ascii=False, default=str).encode(), status_code=status,
                    media_type=GEOJSON, headers=headers)


async def _write(request: Request, work: Callable[[Session, bytes], edit.Written]) -> edit.Written:
    body = await request.body()

    def run() -> edit.Written:
        with writing(request) as s:
            return work(s, body)

    return await run_in_threadpool(run)


@router.post("/collections/{cid}/items", status_code=201, summary="Create a feature (Part 4): a new object with a "
             "new code; 201 with Location and ETag", openapi_extra=_feature_body(*edit.FEATURE_TYPES),
             responses=with_headers(media(GEOJSON, OgcFeature, 201, "created; the body is the feature as stored"),
                                    Location="the new item's URL", ETag=ITEM_ETAG, Content_Crs=CONTENT_CRS_OUT)
             | _WRITE_ERRORS)
async def create_item(cid: str, request: Request, p: Principal = Depends(acting_principal),
                      content_crs: str | None = Header(None, alias="Content-Crs", description=CONTENT_CRS_DOC)
                      ) -> Response:
    w = await _write(request, lambda s, body: edit.create(s, p, cid, body, request.headers.get("content-type"),
                                                          content_crs))
    return _write_answer(request, cid, w, 201)


@router.put("/collections/{cid}/items/{fid}", summary="Replace a feature (Part 4): properties left out are "
            "removed; a new version", openapi_extra=_feature_body(*edit.FEATURE_TYPES),
            responses=with_headers(media(GEOJSON, OgcFeature, description="replaced; the body is the feature"),
                                   ETag=ITEM_ETAG, Content_Crs=CONTENT_CRS_OUT) | _WRITE_ERRORS)
async def replace_item(cid: str, fid: str, request: Request, p: Principal = Depends(acting_principal),
                       content_crs: str | None = Header(None, alias="Content-Crs", description=CONTENT_CRS_DOC),
                       if_match: str | None = Header(None, alias="If-Match", description=IF_MATCH_DOC),
                       if_unmodified_since: str | None = Header(None, alias="If-Unmodified-Since",
                                                                description=IF_UNMODIFIED_DOC)) -> Response:
    w = await _write(request, lambda s, body: edit.replace_item(
        s, p, cid, fid, body, request.headers.get("content-type"), content_crs, if_match, if_unmodified_since))
    return _write_answer(request, cid, w, 200)


@router.patch("/collections/{cid}/items/{fid}", summary="Update a feature (Part 4): a JSON merge patch (RFC 7396) "
              "of a Feature or of its properties; null removes an attribute",
              openapi_extra=_feature_body(*edit.PATCH_TYPES),
              responses=with_headers(media(GEOJSON, OgcFeature, description="updated; the body is the feature"),
                                     ETag=ITEM_ETAG, Content_Crs=CONTENT_CRS_OUT) | _WRITE_ERRORS)
async def update_item(cid: str, fid: str, request: Request, p: Principal = Depends(acting_principal),
                      content_crs: str | None = Header(None, alias="Content-Crs", description=CONTENT_CRS_DOC),
                      if_match: str | None = Header(None, alias="If-Match", description=IF_MATCH_DOC),
                      if_unmodified_since: str | None = Header(None, alias="If-Unmodified-Since",
                                                               description=IF_UNMODIFIED_DOC)) -> Response:
    w = await _write(request, lambda s, body: edit.update_item(
        s, p, cid, fid, body, request.headers.get("content-type"), content_crs, if_match, if_unmodified_since))
    return _write_answer(request, cid, w, 200)


@router.delete("/collections/{cid}/items/{fid}", status_code=204, summary="Delete a feature (Part 4): the object "
               "is retired, its code never reused; GET still answers it with status retired",
               responses=RETIRED | _WRITE_ERRORS)
async def delete_item(cid: str, fid: str, request: Request, p: Principal = Depends(acting_principal),
                      if_match: str | None = Header(None, alias="If-Match", description=IF_MATCH_DOC),
                      if_unmodified_since: str | None = Header(None, alias="If-Unmodified-Since",
                                                               description=IF_UNMODIFIED_DOC)) -> Response:
    w = await _write(request, lambda s, _: edit.delete_item(s, p, cid, fid, if_match, if_unmodified_since))
    return _write_answer(request, cid, w, 204)
