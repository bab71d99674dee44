"""Survey intake: templates per class, uploads by cadres, their hand-in, listing, review by the township
(citygrid/survey; the states and which act each allows are `intake.TRANSITIONS`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from api.deps import acting_principal, address_indexes, conn, current_principal, writing
from api.openapi import BINARY, CSV, TEXT, errors, media, ok
from api.schemas import Reviewed, Revisions, Submission, SubmissionDetail, SubmissionList
from citygrid.address.index import AddressIndexCache
from citygrid.catalog import get_catalog
from citygrid.errors import E
from citygrid.security.principal import Principal
from citygrid.survey import intake, read, template

router = APIRouter(tags=["survey"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STILL_VALIDATING = "stored; still being validated: follow `job` at GET /submissions/{id}"


@router.get("/templates/{class_code}.xlsx", summary="Survey template of a class (Excel): headers, drop-downs, "
                                                     "validation, instructions",
            responses=media(XLSX) | errors(404))
def get_template(class_code: str) -> Response:
    cls = get_catalog().get(class_code)
    if cls is None:
        raise E.class_not_found("class_code", code=class_code)
    return Response(template.build(cls), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="template-{cls.code}.xlsx"'})


@router.post("/submissions", status_code=201, summary="Upload a filled template (xlsx or CSV) or a GIS file "
                                                       "(GeoJSON, GeoPackage, zipped Shapefile) for your village; "
                                                       "stored first, then validated row by row as a job (cadres)",
             responses=ok(Submission, 201, "stored and validated") | ok(Submission, 202, STILL_VALIDATING)
             | errors(403, 404))
async def post_submission(request: Request, response: Response, file: UploadFile = File(...),
                          class_code: str = Form(..., max_length=6),
                          village: str | None = Form(None, pattern=r"^\d{12}$"),
                          crs: str | None = Form(None, max_length=40, description="CGCS2000 (default), WGS84, GCJ-02, "
                                                 "a Gauss-Krüger EPSG code (EPSG:4547) or zone (38带)"),
                          indexes: AddressIndexCache = Depends(address_indexes),
                          p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    data = await file.read(intake.MAX_BYTES + 1)
    out, finished = await run_in_threadpool(
        intake.submit_job, request.app.state.engine, p, class_code, village, data, source=read.source_of(data),
        filename=file.filename, content_type=file.content_type, crs=crs, index=indexes.get)
    if not finished:
        response.status_code = 202
    return out


@router.get("/submissions", summary="Submissions you may see: a cadre's own, a reviewer's township's",
            responses=ok(SubmissionList))
def list_submissions(status: str | None = Query(None, pattern="^(received|validated|invalid|submitted|rejected|coded)$",
                                                 description="submitted: handed in, pending review"),
                     limit: int = Query(100, ge=1, le=1000), c: Connection = Depends(conn),
                     p: Principal = Depends(current_principal)) -> dict[str, Any]:
    items = intake.list_submissions(c, p, status, limit)
    return {"count": len(items), "items": items}


@router.get("/submissions/{sid}", summary="A submission with every row, its problems and its review",
            responses=ok(SubmissionDetail) | errors(404))
def get_submission(sid: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)
                   ) -> dict[str, Any]:
    return intake.detail_of(c, p, sid)


class HandIn(BaseModel):
    partial: bool = Field(False, description="hand in the valid rows of a submission that has rows with problems")


@router.post("/submissions/{sid}/submit", summary="Hand a validated submission in for review (its cadre): "
             "reviewers see it as pending from now on",
             responses=ok(Submission) | errors(403, 404, 409, why={409: "not in a state that can be handed in "
                                                                         "(submission_state)"}))
def post_hand_in(sid: str, request: Request, body: HandIn | None = None, p: Principal = Depends(acting_principal)
                 ) -> dict[str, Any]:
    with writing(request) as s:
        return intake.hand_in(s, p, sid, partial=body.partial if body is not None else False)


@router.post("/submissions/{sid}/resubmit", summary="Send corrected rows into the same submission (the file back "
             "with its 行标识 column, whole or only the corrected rows; without it rows are matched by name and "
             "place): the earlier file and outcome are kept as a revision, approved rows stay as they are",
             responses=ok(Submission, 200, "stored and validated") | ok(Submission, 202, STILL_VALIDATING)
             | errors(403, 404, 409))
async def post_resubmit(sid: str, request: Request, response: Response, file: UploadFile = File(...),
                        crs: str | None = Form(None, max_length=40, description="as for POST /submissions"),
                        indexes: AddressIndexCache = Depends(address_indexes),
                        p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    data = await file.read(intake.MAX_BYTES + 1)
    out, finished = await run_in_threadpool(
        intake.resubmit_job, request.app.state.engine, p, sid, data, source=read.source_of(data),
        filename=file.filename, crs=crs, index=indexes.get)
    if not finished:
        response.status_code = 202
    return out


@router.get("/submissions/{sid}/revisions", summary="The earlier sends of a submission and how their rows came out",
            responses=ok(Revisions) | errors(404))
def get_revisions(sid: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)
                  ) -> dict[str, Any]:
    items = intake.revisions(c, p, sid)
    return {"count": len(items), "items": items}


@router.get("/submissions/{sid}/file", summary="Your file back with the codes of approved rows and each row's "
                                            "outcome in two added columns",
            responses=media({XLSX: BINARY, CSV: TEXT}) | errors(404))
def get_file(sid: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> Response:
    body, kind = intake.file_with_codes(c, p, sid)
    media = XLSX if kind == "xlsx" else "text/csv; charset=utf-8"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="submission-{sid}.{kind}"'})


class Decision(BaseModel):
    row: int
    decision: str = Field(..., pattern="^(approve|reject)$")
    reason: str | None = Field(None, max_length=500)


class ReviewIn(BaseModel):
    decisions: list[Decision] = Field(..., min_length=1, max_length=10_000)


@router.post("/submissions/{sid}/review", summary="Approve (registered with a code) or reject (with a reason) rows; "
                                                   "the township's reviewer",
             responses=ok(Reviewed) | errors(403, 404, 409))
def post_review(sid: str, body: ReviewIn, request: Request, p: Principal = Depends(acting_principal)
                ) -> dict[str, Any]:
    with writing(request) as s:
        return intake.review(s, p, sid, [d.model_dump() for d in body.decisions])
