"""Door plates for printing (智慧门牌): a village's or a compound's plates as one A4 PDF (citygrid/address/plates)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from api.deps import conn, current_principal
from api.openapi import errors, media
from api.proxy import public_base
from citygrid.address import plates
from citygrid.security.principal import Principal

router = APIRouter(tags=["address"])


@router.get("/doorplates.pdf", summary="Printable door plates (A4, 8 a page): standard address, code and a QR code "
                                       "to the county's public address; any role covering the place",
            responses=media("application/pdf") | errors(403, 404, 429))
def doorplates(request: Request, village: str | None = Query(None, pattern=r"^\d{12}$", description="村/社区代码"),
               compound: str | None = Query(None, min_length=6, max_length=24, pattern=r"^\d+$",
                                            description="小区院落的地址编码: its building plates"),
               c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> Response:
    batch = plates.collect(c, p, public_base(request), village=village, compound=compound)
    return Response(plates.render(batch), media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="doorplates-{batch.place_code}.pdf"',
        "Cache-Control": "private, no-store"})
