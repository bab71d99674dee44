"""What a code names: any unified or component code validated, its segments explained, and the object or
ledger entry it resolves to, as the caller may see them (`GET /codes/{code}`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from citygrid.catalog import get_catalog
from citygrid.coding.allocator import ledger_entry
from citygrid.coding.scheme import component_scheme, unified_scheme
from citygrid.errors import CitygridError, E
from citygrid.regions import query as regions
from citygrid.registry import objects
from citygrid.security import classification, rules
from citygrid.security.principal import Principal


def explain(c: Connection, p: Principal, code: str) -> dict[str, Any]:
    """A code of a restricted class the caller may not read says `withheld` whether it was issued or not, so
    the ledger does not reveal where classified objects are."""
    scheme = unified_scheme()
    comp = component_scheme()
    if len(code) == comp.length and code.isdigit():
        obj = objects.get(c, p, code)
        parts = comp.describe(code)
        if obj is None:
            raise E.code_not_found("code", code=code)
        return {"code": code, "scheme": comp.name, "standard": comp.standard, "valid": True, "segments": parts,
                "object": obj}
    problems = scheme.validate(code, known_division=lambda d: regions.get(c, d) is not None,
                               known_class=lambda k: get_catalog().get(k) is not None)
    if problems:
        raise CitygridError([pr.problem("code") for pr in problems], "invalid")
    segs = scheme.describe(code)
    d = scheme.decode(code)
    div = regions.get(c, d["division"])
    cls = get_catalog().get(d["class"])
    out = {
        "code": code, "scheme": scheme.name, "standard": scheme.standard, "valid": True, "segments": segs,
        "division": {"code": div.code, "name": div.name} if div else None,
        "class": {"code": cls.code, "name": cls.name, "major": cls.major_name, "middle": cls.middle_name} if cls else None,
    }
    obj = objects.get(c, p, code)
    if obj is None and cls is not None and rules.read_scopes(p, cls) is not None:
        return out | {"issued": None, "status": "withheld", "object": None}
    issued = ledger_entry(c, code)
    if issued is not None:
        issued = classification.redact_meta(p, d["division"], issued)
    return out | {"issued": issued, "status": obj["status"] if obj else ("reserved" if issued else "not_issued"),
                  "object": obj}
