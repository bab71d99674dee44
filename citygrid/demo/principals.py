"""One demo principal of each role for the demo county, with well-known passwords that work only while the demo
flag is on (`CITYGRID_DEMO=1`, set by `make run`): a deployment that loads the demo data by mistake cannot be
entered with them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.demo.common import DEMO_COUNTY
from citygrid.security import credentials
from citygrid.security.principal import Grant


def _first(conn: Any, level: int, prefix: str) -> str:
    code = conn.execute(text("SELECT min(code) FROM division WHERE level = :l AND code LIKE :p AND geom IS NOT NULL"),
                        {"l": level, "p": prefix + "%"}).scalar()
    return str(code or prefix)


def demo_principals(engine: Engine) -> list[dict[str, Any]]:
    """Create the demo principals that are missing; return all of them with their passwords and roles."""
    with engine.begin() as c:
        township = _first(c, 4, DEMO_COUNTY)
        village = _first(c, 5, township)
        people: list[tuple[str, str, list[Grant], str, bool, str]] = [
            ("demo-admin", "管理员（演示）", [Grant("admin")], "L4", True, "demo-admin-pass"),
            ("demo-zrzy", "自然资源和规划局（演示）", [Grant("department", DEMO_COUNTY, "natural_resources")], "L3", False,
             "demo-zrzy-pass"),
            ("demo-police", "公安局（演示）", [Grant("department", DEMO_COUNTY, "public_security")], "L4", True,
             "demo-police-pass"),
            ("demo-reviewer", f"乡镇审核员 {township}（演示）", [Grant("reviewer", township)], "L2", False,
             "demo-reviewer-pass"),
            ("demo-cadre", f"村干部 {village}（演示）", [Grant("cadre", village)], "L2", False, "demo-cadre-pass"),
        ]
        out = []
        for username, display, grants, clearance, personal, password in people:
            if not c.execute(text("SELECT 1 FROM principal WHERE username = :u"), {"u": username}).first():
                credentials.add_principal(c, username, password=password, grants=grants, clearance=clearance,
                                          personal=personal, display_name=display, demo=True, by="demo")
            out.append({"username": username, "password": password, "display_name": display, "clearance": clearance,
                        "personal": personal, "roles": [g.to_dict() for g in grants]})
    return out
