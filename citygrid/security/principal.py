"""Who is calling: a `Principal` with its roles and their scopes, passed into every core function that reads or
writes, so rights are decided in the core (`citygrid/security/rules.py`), never in a router.

Roles (stored in `principal_role`, migration 0012):

- `cadre`: one village (村/社区, a 12-digit division code): submits objects, sees its own submissions, reads its
  village's objects.
- `reviewer`: one township (9 digits): everything the cadres of its villages submitted; approves or rejects.
- `department`: owns the catalog classes of its department (`schemas/catalog/departments.yaml`, 责任分工目录)
  within its jurisdiction (a division prefix, usually the county): creates, updates, retires, splits and merges
  objects of those classes only; resolves addresses.
- `admin`: principals, grants, catalog, imports; everything.

Anonymous callers are `ANONYMOUS` (the public: published layers, tiles, aggregates above k, reference data).
`SYSTEM` is the process itself (CLI loads, the demo, background jobs started by an authorised request carry that
request's principal instead).

Clearance is the highest attribute level (catalog L1–L4, `citygrid/security/classification.py`) the principal
may read; reading personal information (L4 person fields: names, ID numbers, phones) also needs the explicit
`personal` grant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Literal

Role = Literal["cadre", "reviewer", "department", "admin"]
Level = Literal["L1", "L2", "L3", "L4"]
Kind = Literal["anonymous", "user", "service", "system"]
LEVELS: tuple[Level, ...] = ("L1", "L2", "L3", "L4")


@dataclass(frozen=True)
class Grant:
    """One role with its scope: a division code prefix (None: everywhere), and for departments the department
    whose classes it owns and/or an explicit class list."""

    role: Role
    division: str | None = None
    department: str | None = None
    classes: frozenset[str] | None = None

    def covers(self, division_code: str | None) -> bool:
        """Whether a place (any division code: county, township or village) lies in this grant's scope."""
        if self.division is None:
            return True
        return division_code is not None and division_code.startswith(self.division)

    def to_dict(self) -> dict[str, object]:
        return {"role": self.role, "division": self.division, "department": self.department,
                "classes": sorted(self.classes) if self.classes is not None else None}


@dataclass(frozen=True)
class RequestMeta:
    """Where a call came from, for the audit log: carried on the `Principal` into the core explicitly (a
    thread-local would not survive FastAPI's thread pool)."""

    client: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Principal:
    kind: Kind
    name: str
    id: uuid.UUID | None = None
    grants: tuple[Grant, ...] = ()
    clearance: Level = "L1"
    personal: bool = False
    display_name: str | None = None
    via: str = field(default="none", compare=False)  # how it authenticated: none | token | api_key | process
    meta: RequestMeta | None = field(default=None, compare=False)  # the request's origin (api/deps.py)

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def is_admin(self) -> bool:
        return self.kind == "system" or any(g.role == "admin" for g in self.grants)

    def roles(self) -> set[Role]:
        return {g.role for g in self.grants}

    def grants_of(self, role: Role) -> list[Grant]:
        return [g for g in self.grants if g.role == role]

    def may_read_level(self, level: str) -> bool:
        return self.is_admin or LEVELS.index(level) <= LEVELS.index(self.clearance)

    def to_dict(self) -> dict[str, object]:
        return {"id": str(self.id) if self.id else None, "kind": self.kind, "username": self.name,
                "display_name": self.display_name, "clearance": self.clearance, "personal": self.personal,
                "roles": [g.to_dict() for g in self.grants], "via": self.via}


ANONYMOUS = Principal(kind="anonymous", name="anonymous", clearance="L1")
# The process acting on its own (CLI loads, the demo generator, migrations): every right, recorded as "system".
SYSTEM = Principal(kind="system", name="system", clearance="L4", personal=True, via="process")


def system_as(name: str) -> Principal:
    """The process acting on its own under a name of its own, so history says which process wrote (the demo
    generator, an import, a test): every right, like `SYSTEM`."""
    return replace(SYSTEM, name=name)
