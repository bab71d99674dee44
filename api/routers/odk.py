"""ODK Collect's OpenRosa endpoints: the form list, each class's XForm (and XLSForm), and submissions
(citygrid/survey/odk.py; the server URL to give Collect is this service's root)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.deps import address_indexes, odk_principal
from api.openapi import TEXT, XLSX, errors, media
from api.openapi import XML as XML_MEDIA
from citygrid.address.index import AddressIndexCache
from citygrid.catalog import get_catalog
from citygrid.errors import E
from citygrid.security.principal import Principal
from citygrid.survey import odk
from citygrid.survey.intake import submit_odk

router = APIRouter(tags=["odk"])
XML = "text/xml; charset=utf-8"


def _headers() -> dict[str, str]:
    return dict(odk.OPENROSA)


@router.get("/formList", summary="OpenRosa form list: one form per class (ODK Collect)",
            responses=media(XML_MEDIA, TEXT) | errors(403))
def form_list(request: Request, formID: str | None = Query(None, max_length=40),  # noqa: N803 (the spec's name)
              p: Principal = Depends(odk_principal)) -> Response:
    return Response(odk.form_list(str(request.base_url), formID), media_type=XML, headers=_headers())


@router.get("/forms/{fid}.xml", summary="A class's XForm, compiled from its XLSForm with pyxform",
            responses=media(XML_MEDIA, TEXT) | errors(403, 404))
def form_xml(fid: str, p: Principal = Depends(odk_principal)) -> Response:
    cls = odk.class_of_form(fid)
    if cls is None:
        raise E.odk_form_unknown("formID", form=fid[:60])
    return Response(odk.xform(cls.code), media_type=XML, headers=_headers())


@router.get("/forms/{fid}.xlsx", summary="A class's XLSForm, to adapt in Excel and compile with pyxform",
            responses=media(XLSX) | errors(404))
def form_xlsx(fid: str) -> Response:
    cls = odk.class_of_form(fid) or get_catalog().get(fid)
    if cls is None:
        raise E.odk_form_unknown("formID", form=fid[:60])
    return Response(odk.xlsform(cls), headers={"Content-Disposition": f'attachment; filename="{odk.form_id(cls)}.xlsx"'},
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@router.head("/submission", status_code=204, summary="OpenRosa pre-flight: authenticated, and the size accepted",
             responses=errors(403))
def submission_head(p: Principal = Depends(odk_principal)) -> Response:
    return Response(status_code=204, headers=_headers() | {
        "X-OpenRosa-Accept-Content-Length": str(odk.MAX_SUBMISSION)})


@router.post("/submission", status_code=201, summary="OpenRosa submission: the instance XML (xml_submission_file) "
                                                      "and its attachments, multipart",
             responses=media(XML_MEDIA, TEXT, 201) | media(XML_MEDIA, TEXT, 202, "stored; not yet a valid row")
             | errors(403, 404))
async def submission_post(request: Request, indexes: AddressIndexCache = Depends(address_indexes),
                          p: Principal = Depends(odk_principal)) -> Response:
    """Stored and committed before the answer; validated afterwards as a job (the submission's page shows it)."""
    form = await request.form(max_files=50, max_fields=50, max_part_size=odk.MAX_SUBMISSION)
    xml: bytes | None = None
    attachments: list[tuple[str, str | None, bytes]] = []
    for key, value in form.multi_items():
        if isinstance(value, str):
            continue
        data = await value.read()
        if key == "xml_submission_file":
            xml = data
        else:
            attachments.append((value.filename or key, value.content_type, data))

    created, message = await run_in_threadpool(submit_odk, request.app.state.engine, p, xml, attachments,
                                                indexes.get)
    return Response(odk.response_xml(message), status_code=201 if created else 202, media_type=XML,
                    headers=_headers() | {"Location": str(request.url)})
