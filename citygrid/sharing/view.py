"""The one-page view of an object (`GET /objects/{code}?expand=…`): the object as the caller may see it, with
any of its links (`links.links_of`), standard addresses, grids, history and lineage, each cut to the caller's
rights by the function that owns it."""

from __future__ import annotations

from typing import Any

from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.catalog import get_catalog
from citygrid.errors import E
from citygrid.registry import objects
from citygrid.security.principal import Principal
from citygrid.sharing import links

EXPANDS = ("links", "address", "grids", "history", "lineage")


def parse_expand(value: str | None) -> list[str]:
    parts = [x.strip() for x in (value or "").split(",") if x.strip()]
    for x in parts:
        if x not in EXPANDS:
            raise E.expand_unknown("expand", name=x[:40], known=", ".join(EXPANDS))
    return parts


def expanded(conn: Connection, p: Principal, code: str, expand: list[str], crs: str | None = None) -> dict[str, Any]:
    obj = objects.get(conn, p, code, crs)
    if obj is None:
        raise E.object_not_found("code", code=code)
    code = obj["code"]  # a component code finds the object; the rest asks with its unified code
    if "links" in expand:
        obj["links"] = links.links_of(conn, p, code)["links"]
    if "address" in expand:
        rows = conn.execute(text("SELECT code, level, full_name FROM addr_node WHERE object_code = :c ORDER BY code"),
                            {"c": code}).all()
        obj["address"] = [{"code": r.code, "level": r.level, "address": r.full_name, "page": f"/a/{r.code}"}
                          for r in rows]
    if "grids" in expand:
        g = obj.get("grids") or {}
        names = conn.execute(text("SELECT code, system, kind, name FROM grid WHERE code = ANY(:c) ORDER BY kind, code"),
                             {"c": [v for v in g.values() if v]}).all()
        obj["grids"] = g | {"cells": [dict(r._mapping) for r in names]}
    if "history" in expand:
        obj["history"] = objects.history(conn, p, code)
    if "lineage" in expand:
        lin = objects.lineage(conn, p, code)
        obj["lineage"] = {"parents": lin["parents"], "children": lin["children"]}
    return obj


def page(conn: Connection, p: Principal, code: str) -> dict[str, Any]:
    """What the object page (`/objects/{code}/page`) shows a person: the same as every expansion, cut to the
    caller's rights by the same functions, with the catalog's labels for attribute names and a point to show."""
    obj = expanded(conn, p, code, list(EXPANDS))
    cls = get_catalog().get(obj["class_code"])
    labels = {a.field: a.label for a in cls.attributes} if cls else {}
    point = None
    if obj.get("geometry"):
        rep = shape(obj["geometry"]).representative_point()
        point = (rep.x, rep.y)
    return {"obj": obj, "labels": labels, "point": point}
