"""Addresses (一标三实): normalize, parse, geocode (single and many), reverse, batch files, address nodes, QR."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from api.deps import acting_principal, address_indexes, conn, current_principal, writing
from api.openapi import BINARY, CSV, GEOJSON, TEXT, XLSX, FeatureCollection, errors, media, ok
from api.proxy import public_base
from api.schemas import (
    AddressNode,
    BatchStarted,
    Geocoded,
    GeocodedMany,
    Job,
    Normalized,
    Parsed,
    PersonsFound,
    Registered,
    Reverse,
)
from api.web import render
from citygrid import jobs
from citygrid.address import answer, facts, nodes
from citygrid.address import batch as batchmod
from citygrid.address import reverse as reversemod
from citygrid.address.index import AddressIndexCache
from citygrid.address.normalize import normalize
from citygrid.errors import E
from citygrid.security import rules
from citygrid.security.principal import ANONYMOUS, Principal
from citygrid.security.scope import scoped_engine
from citygrid.settings import get_settings

router = APIRouter(tags=["address"])
MAX_LEN = batchmod.MAX_LEN
MAX_UPLOAD = 512 * 1024 * 1024
_check_text = batchmod.check_address


@router.get("/address/normalize", summary="Normalize an address (traditional→simplified, numerals, 幢/栋 …)",
            responses=ok(Normalized))
def get_normalize(q: str = Query(..., max_length=MAX_LEN)) -> dict[str, Any]:
    return {"input": q, "normalized": normalize(_check_text(q))}


@router.get("/address/parse", summary="Split an address into levels (sequence labeller + gazetteer)",
            responses=ok(Parsed))
def get_parse(q: str = Query(..., max_length=MAX_LEN)) -> dict[str, Any]:
    """Each span's `text` is exactly the caller's characters (`q[start:end]`), its `value` the normalized form
    (九层 → 9层, 三號樓 → 3栋), the form the address base and the resolver compare."""
    from citygrid.address.parse import AddressParser

    spans = AddressParser.load().parse(_check_text(q))
    return {"input": q, "normalized": normalize(q),
            "spans": [{"label": s.label, "text": s.text, "value": s.value, "start": s.start, "end": s.end}
                      for s in spans]}


CRS_DOC = ("CRS of the answer's points: gcj02 (Amap, Tencent), bd09 (Baidu), CGCS2000 = EPSG:4490 (default), "
           "EPSG:4326, EPSG:4534–4554 (Gauss-Krüger), or their URIs; GCJ-02/BD-09 only inside China")


@router.get("/address/geocode", summary="Geocode one address: best candidates with codes, point, level (also Amap's), "
                                        "precise", description=answer.DESCRIPTION, responses=ok(Geocoded))
async def get_geocode(q: str = Query(..., max_length=MAX_LEN),
                      division: str | None = Query(None, pattern=r"^\d{6,12}$"), limit: int = Query(5, ge=1, le=20),
                      crs: str | None = Query(None, max_length=100, description=CRS_DOC),
                      indexes: AddressIndexCache = Depends(address_indexes)) -> dict[str, Any]:
    """Async: with the index in memory a geocode is ~0.2 ms of CPU and no I/O, so it runs on the event loop; a
    sync route took two trips through the thread pool (the call, then the answer's validation) and the
    index's freshness query, several times the geocode itself. An index not loaded, or that this process has
    just rebuilt, is fetched in a thread (`AddressIndexCache.current`), so a load never blocks the loop."""
    index = indexes.current()
    if index is None:  # not `or`: an empty index (no address base yet) is falsy, and still the index
        index = await run_in_threadpool(indexes.get)
    if len(q) > LOOP_LEN:  # a long text costs more than the loop should stall every other request for
        return await run_in_threadpool(answer.geocode, index, _check_text(q), division, limit, crs)
    return answer.geocode(index, _check_text(q), division, limit, crs)


LOOP_LEN = 60  # longer single addresses are geocoded in a thread (a real address is 10-40 characters)


class GeocodeMany(BaseModel):
    addresses: list[str] = Field(..., min_length=1, max_length=10_000)
    division: str | None = Field(None, pattern=r"^\d{6,12}$")
    limit: int = Field(1, ge=1, le=20)
    crs: str | None = Field(None, max_length=100, description=CRS_DOC)


@router.post("/address/geocode", summary="Geocode many addresses in one request (per-row errors, none dropped); "
                                        "departments and admins", description=answer.DESCRIPTION,
             responses=ok(GeocodedMany) | errors(403))
def post_geocode(body: GeocodeMany, indexes: AddressIndexCache = Depends(address_indexes),
                 p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    results = batchmod.geocode_many(p, indexes.get(), body.addresses, body.division, body.limit, body.crs)
    return {"count": len(results), "results": results}


@router.get("/address/reverse", summary="Point → nearest door plate, building, road, village, township",
            responses=ok(Reverse))
def reverse(x: float = Query(..., description="lon or easting"), y: float = Query(..., description="lat or northing"),
            crs: str | None = Query(None, max_length=100, description="CRS of x/y and of the door's point: " + CRS_DOC
                                    + "; any other EPSG system pyproj knows is read too"),
            radius: float = Query(100, gt=0, le=5000),
            c: Connection = Depends(conn)) -> dict[str, Any]:
    return reversemod.reverse(c, x, y, crs, radius)


@router.get("/addresses/{code}", summary="A standard address node with parents, children, objects and 三实 (by clearance)",
            responses=ok(AddressNode) | errors(404))
def get_address(code: str, c: Connection = Depends(conn), limit: int = Query(200, ge=1, le=2000),
                p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return nodes.describe(c, p, code, limit)


@router.get("/addresses/{code}/qr.svg", summary="QR code of the door plate (智慧门牌): opens the address page at "
                                                "the county's public address (CITYGRID_PUBLIC_BASE_URL)",
            responses=media("image/svg+xml") | errors(404))
def qr(code: str, request: Request, c: Connection = Depends(conn)) -> Response:
    return Response(nodes.qr_svg(c, code, public_base(request)), media_type="image/svg+xml")


@router.get("/a/{code}", response_class=HTMLResponse, summary="The page a door-plate QR code opens",
            responses=errors(404))
def page(code: str, c: Connection = Depends(conn)) -> HTMLResponse:
    # the door plate's public page: what the public may see, whoever scans it
    return HTMLResponse(render("address.html", node=nodes.describe(c, ANONYMOUS, code, 200)))


@router.post("/address/batch", status_code=202, summary="Upload CSV/Excel; geocoded as a job with progress; "
                                                          "departments and admins",
             responses=ok(BatchStarted, 202) | errors(403))
def post_batch(request: Request, file: UploadFile = File(...), column: str | None = Form(None),
               division: str | None = Form(None), indexes: AddressIndexCache = Depends(address_indexes),
               p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    # the framework spooled the part to a temporary file; it is copied to the data directory in chunks (a 4xx on a
    # bad file, which then leaves nothing there)
    root = get_settings().data_dir
    upload = batchmod.accept(p, root, file.filename, file.file, column, division, MAX_UPLOAD)
    # the job's rows are written in the caller's scope, from the job's thread
    rec = jobs.start(scoped_engine(request.app.state.engine, p), p.name, batchmod.KIND,
                     batchmod.geocode_job(indexes.get(), upload), detail=upload.detail(root))
    return {"job": str(rec.id), "status": f"/address/batch/{rec.id}", "header": upload.header,
            "result": f"/address/batch/{rec.id}/result"}


def _batch(c: Connection, p: Principal, job_id: str) -> dict[str, Any]:
    j = jobs.load(c, job_id, rules.job_owner(p))
    if j is None or j["kind"] != batchmod.KIND:
        raise E.job_not_found("job_id", job=job_id)
    return j


@router.get("/address/batch/{job_id}", summary="Batch status: state, rows done, counts (your own batches)",
            responses=ok(Job) | errors(404))
def batch_status(job_id: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)
                 ) -> dict[str, Any]:
    return jobs.public(_batch(c, p, job_id))


@router.get("/address/batch/{job_id}/result", summary="Download the result as csv, xlsx or geojson",
            description="Columns include level, level_amap (Amap's level words), precise, confidence, lon, lat and crs. "
                        + answer.DESCRIPTION,
            responses=media({CSV: TEXT, XLSX: BINARY, GEOJSON: FeatureCollection}) | errors(404, 409))
def batch_result(job_id: str, format: str = Query("csv", pattern="^(csv|xlsx|geojson)$"),
                 crs: str | None = Query(None, max_length=100, description=CRS_DOC + " (projected: columns x, y)"),
                 c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> Response:
    j = _batch(c, p, job_id)
    if j["state"] != "done":
        raise E.job_not_done("job_id", state=j["state"])
    body, media, suffix = batchmod.convert(batchmod.Upload.of_job(get_settings().data_dir, j).result, format, crs)
    headers = {"Content-Disposition": f'attachment; filename="geocode-{job_id}.{suffix}"'}
    if isinstance(body, bytes):
        return Response(body, media_type=media, headers=headers)
    return StreamingResponse(body, media_type=media, headers=headers)


@router.post("/address/batch/{job_id}/resume", status_code=202,
             summary="Resume an interrupted, failed or cancelled batch from the rows already written",
             responses=ok(BatchStarted, 202) | errors(403, 404, 409))
def batch_resume(job_id: str, c: Connection = Depends(conn), p: Principal = Depends(acting_principal),
                 indexes: AddressIndexCache = Depends(address_indexes)) -> dict[str, Any]:
    return _restart(c, p, indexes, job_id, fresh=False)


@router.post("/address/batch/{job_id}/retry", status_code=202,
             summary="Run an interrupted, failed or cancelled batch again from its first row",
             responses=ok(BatchStarted, 202) | errors(403, 404, 409))
def batch_retry(job_id: str, c: Connection = Depends(conn), p: Principal = Depends(acting_principal),
                indexes: AddressIndexCache = Depends(address_indexes)) -> dict[str, Any]:
    return _restart(c, p, indexes, job_id, fresh=True)


def _restart(c: Connection, p: Principal, indexes: AddressIndexCache, job_id: str, fresh: bool) -> dict[str, Any]:
    rec = batchmod.restart(scoped_engine(c.engine, p), indexes.get(), _batch(c, p, job_id), fresh=fresh,
                           background=True)
    return {"job": str(rec.id), "status": f"/address/batch/{rec.id}", "result": f"/address/batch/{rec.id}/result"}


@router.post("/addresses/{code}/persons", status_code=201, summary="Register a person in a room (实有人口): the personal grant there",
             responses=ok(Registered, 201) | errors(403, 404))
def post_person(code: str, body: dict[str, Any], request: Request, p: Principal = Depends(acting_principal)
                ) -> dict[str, Any]:
    with writing(request) as s:
        return facts.add_person(s.connection(), p, code, body)


@router.post("/addresses/{code}/organizations", status_code=201, summary="Register an organization at a door (实有单位)",
             responses=ok(Registered, 201) | errors(403, 404))
def post_org(code: str, body: dict[str, Any], request: Request, p: Principal = Depends(acting_principal)
             ) -> dict[str, Any]:
    with writing(request) as s:
        return facts.add_organization(s.connection(), p, code, body)


class PersonQuery(BaseModel):
    id_number: str = Field(..., max_length=40, description="公民身份号码 (sent in the body, never in a URL)")


@router.post("/persons/search", summary="Find persons by ID number (keyed hash; needs the personal-data grant)",
             responses=ok(PersonsFound) | errors(403))
def search_persons(body: PersonQuery, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    with writing(request) as s:
        found = facts.find_persons(s.connection(), p, body.id_number)
    return {"count": len(found), "persons": found}
