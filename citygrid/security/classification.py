"""Data classification (数据分级分类) and what each caller is shown: the one place where answers are filtered or
masked by the caller's clearance. Rights themselves (who holds which clearance where) are `rules.py`.

The catalog grades every attribute L1–L4 (`schemas/catalog/classes.yaml`); the national schemes map onto it:

| catalog | GB/T 43697-2024 (数据分类分级规则) | GB/T 35273-2020 (个人信息) | shown to a caller below it |
|---|---|---|---|
| L1 公开 | 一般数据, public | - | (everyone sees L1) |
| L2 内部 | 一般数据, internal use | - | withheld |
| L3 敏感 | 重要数据 (graded up when in doubt: 就高从严) | 个人信息 of organisations' contacts | withheld; names and phones masked |
| L4 涉密 (non-personal classes) | 核心数据 (state secrets proper fall under the secrecy law, outside 43697) | - | withheld |
| L4 个人信息 (names, phones of persons) | 一般数据 with personal information | 个人信息 | masked; unmasked only with the personal grant |
| L4 敏感个人信息 (ID numbers) | 一般数据 with sensitive personal information | 敏感个人信息 (Annex B: identity documents) | masked; unmasked only with the personal grant |

Withheld means removed from the answer, whatever its type: numbers and dates are never passed through or
rounded. Strings of a known kind (a person's name, an ID number, a phone) are masked instead, keeping enough to
recognise a record one already knows (surname, birth region and last digits) and nothing that identifies a
stranger. Attributes the catalog does not list are treated as L4 (就高从严).

Every answer goes through here: registry objects and their history (`object_view`, `redact_attrs`), persons
(`redact_person`, `redact_persons`: a room's persons only with the personal grant there), OGC items
(`attrs_sql`, the same plan as SQL so pages stay serialised by PostgreSQL), tiles (`tile_attributes`: L1 only),
record metadata (who changed what and why: L2), and counts of persons or households (`k_anonymity`,
`small_count`, `count_sql`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from citygrid.catalog import Attribute, ObjectClass
from citygrid.security import rules
from citygrid.security.principal import LEVELS, Level, Principal
from citygrid.settings import get_settings

MaskKind = Literal["name", "id_number", "phone"]


@dataclass(frozen=True)
class Grade:
    """One row of the table above."""

    level: Level
    catalog: str
    gbt43697: str
    gbt35273: str | None


GRADES: dict[str, Grade] = {
    "L1": Grade("L1", "公开", "一般数据（公开）", None),
    "L2": Grade("L2", "内部", "一般数据（内部）", None),
    "L3": Grade("L3", "敏感", "重要数据", None),
    "L4": Grade("L4", "涉密", "核心数据", None),
    "L4-personal": Grade("L4", "个人信息", "一般数据（个人信息）", "个人信息"),
    "L4-sensitive": Grade("L4", "敏感个人信息", "一般数据（敏感个人信息）", "敏感个人信息"),
}
# Who did what and why (history authors, reasons, ledger issuers): staff names and free text, internal.
META_LEVEL: Level = "L2"
META_FIELDS = ("created_by", "updated_by", "changed_by", "reason", "by", "issued_by")
_PERSON_LABEL = re.compile(r"(姓名|人|者)$")


def mask_kind(a: Attribute) -> MaskKind | None:
    """What kind of personal string an attribute holds, from its name and label (the catalog has no field for
    it): phones, ID numbers, persons' names (产权人姓名, 权利人, 责任人, 法定代表人, 经营者 …)."""
    if a.type != "string":
        return None
    if "phone" in a.field:
        return "phone"
    if "id_number" in a.field:
        return "id_number"
    if _PERSON_LABEL.search(a.label):
        return "name"
    return None


def grade(a: Attribute) -> Grade:
    """The national grade of one attribute."""
    if a.level != "L4":
        return GRADES[a.level]
    kind = mask_kind(a)
    if kind is None:
        return GRADES["L4"]
    return GRADES["L4-sensitive" if kind == "id_number" else "L4-personal"]


def classification_table() -> list[dict[str, Any]]:
    """The table above as data, for `GET /classification`."""
    return [{"key": k, "level": g.level, "catalog": g.catalog, "gbt43697": g.gbt43697, "gbt35273": g.gbt35273}
            for k, g in GRADES.items()]


# --- masks: the same in Python and in SQL (tests/test_security_classification.py compares them) ---------------


def mask_name(v: str) -> str:
    return v[:1] + "*" * max(1, len(v) - 1)


def mask_id_number(v: str) -> str:
    return v[:6] + "*" * (len(v) - 10) + v[-4:] if len(v) > 10 else "*" * len(v)


def mask_phone(v: str) -> str:
    return v[:3] + "****" + v[-4:] if len(v) >= 11 else "*" * len(v)


MASKS: dict[MaskKind, Callable[[str], str]] = {"name": mask_name, "id_number": mask_id_number, "phone": mask_phone}


def mask_sql(kind: MaskKind, v: str) -> str:
    """SQL of the mask over a text expression `v`."""
    n = f"char_length({v})"
    if kind == "name":
        return f"(left({v}, 1) || repeat('*', greatest(1, {n} - 1)))"
    if kind == "id_number":
        return f"(CASE WHEN {n} > 10 THEN left({v}, 6) || repeat('*', {n} - 10) || right({v}, 4) ELSE repeat('*', {n}) END)"
    return f"(CASE WHEN {n} >= 11 THEN left({v}, 3) || '****' || right({v}, 4) ELSE repeat('*', {n}) END)"


# --- plans: which attributes of a class one clearance keeps, masks and withholds -------------------------------


@dataclass(frozen=True)
class Plan:
    """What a caller with one clearance sees of a class's attributes. `keep_all` when nothing is withheld;
    `known` are the attributes the catalog lists (any other is treated as L4)."""

    keep: frozenset[str]
    mask: tuple[tuple[str, MaskKind], ...]
    keep_all: bool
    known: frozenset[str] = frozenset()

    def apply(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        if self.keep_all:
            return dict(attrs)
        out = {k: v for k, v in attrs.items() if k in self.keep}
        for f, kind in self.mask:
            v = attrs.get(f)
            if isinstance(v, str):
                out[f] = MASKS[kind](v)
        return out

    def sql(self, column: str, prefix: str) -> tuple[str, dict[str, Any]]:
        """The same as `apply`, as SQL over a jsonb column; bind parameters start with `prefix`. Rows holding only
        catalog attributes (all of them, as written through validation) take the withheld ones out with one
        `-`; a row with others is rebuilt from the kept keys (five times slower, and never seen in practice)."""
        if self.keep_all:
            return column, {}
        params: dict[str, Any] = {f"{prefix}keep": sorted(self.keep), f"{prefix}known": sorted(self.known | self.keep),
                                  f"{prefix}drop": sorted(self.known - self.keep)}
        out = (f"(CASE WHEN ({column} - CAST(:{prefix}known AS text[])) = '{{}}'::jsonb "
               f"THEN {column} - CAST(:{prefix}drop AS text[]) "
               f"ELSE (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb) FROM jsonb_each({column}) e "
               f"WHERE e.key = ANY(CAST(:{prefix}keep AS text[]))) END)")
        if self.mask:
            pairs = []
            for i, (f, kind) in enumerate(self.mask):
                params[f"{prefix}m{i}"] = f
                name = f"CAST(:{prefix}m{i} AS text)"
                pairs.append(f"{name}, CASE WHEN jsonb_typeof({column}->{name}) = 'string' "
                             f"THEN {mask_sql(kind, f'({column}->>{name})')} END")
            out = f"({out} || jsonb_strip_nulls(jsonb_build_object({', '.join(pairs)})))"
        return out, params

    @property
    def key(self) -> tuple[Any, ...]:
        return ("all",) if self.keep_all else (tuple(sorted(self.keep)), self.mask)


def _visible(a: Attribute, level: Level, personal: bool) -> bool:
    if LEVELS.index(a.level) > LEVELS.index(level):
        return False
    return personal or a.level != "L4" or mask_kind(a) is None


@lru_cache(maxsize=4096)
def plan(cls: ObjectClass, level: Level, personal: bool) -> Plan:
    keep = frozenset(a.field for a in cls.attributes if _visible(a, level, personal))
    mask = tuple((a.field, k) for a in cls.attributes if a.field not in keep and (k := mask_kind(a)) is not None)
    keep_all = level == "L4" and personal  # unknown attributes count as L4
    return Plan(keep, mask, keep_all, frozenset(a.field for a in cls.attributes))


# Attributes every table may carry (the catalog's `every_class` set, L1): where generated data came from.
PROVENANCE = frozenset({"generated", "generator"})


def free_plan(level: Level, personal: bool) -> Plan:
    """For attributes no catalog describes (properties of an imported grid system: a department's file may
    hold anything, grid workers' phones included): L4, so only provenance is shown below that."""
    return Plan(PROVENANCE, (), level == "L4" and personal)


def free_attrs_at(p: Principal, place: str | None) -> Plan:
    return free_plan(rules.clearance_at(p, place), rules.may_read_personal(p, place))


def plan_at(p: Principal, cls: ObjectClass, place: str | None) -> Plan:
    """The plan for one object of `cls` at `place`: the caller's clearance there, its personal grant there."""
    return plan(cls, rules.clearance_at(p, place), rules.may_read_personal(p, place))


def redact_attrs(p: Principal, cls: ObjectClass | None, place: str | None, attrs: Mapping[str, Any]
                 ) -> dict[str, Any]:
    if cls is None:  # a class no longer in the catalog: nothing is known about its attributes
        return dict(attrs) if rules.clearance_at(p, place) == "L4" and rules.may_read_personal(p, place) else {}
    return plan_at(p, cls, place).apply(attrs)


def may_read_meta(p: Principal, place: str | None) -> bool:
    return LEVELS.index(rules.clearance_at(p, place)) >= LEVELS.index(META_LEVEL)


def redact_meta(p: Principal, place: str | None, record: dict[str, Any]) -> dict[str, Any]:
    """Who changed a record and why, for callers cleared for internal data there; set to None otherwise."""
    if may_read_meta(p, place):
        return record
    return {k: (None if k in META_FIELDS else v) for k, v in record.items()}


def object_view(p: Principal, cls: ObjectClass | None, place: str | None, obj: dict[str, Any]) -> dict[str, Any]:
    """A registry object (or one version of it) as this caller may see it."""
    out = redact_meta(p, place, obj)
    if "attrs" in out:
        out = out | {"attrs": redact_attrs(p, cls, place, out["attrs"])}
    return out


def attrs_sql(p: Principal, cls: ObjectClass | None, column: str = "o.attrs", place_sql: str = rules.PLACE_SQL
              ) -> tuple[str, dict[str, Any], tuple[Any, ...]]:
    """The attributes as this caller sees them, as SQL over the row (its clearance inside its scope, the public's
    outside), with bind parameters and a key for caches of answers built from it. `cls` None: attributes no
    catalog describes (`free_plan`)."""
    def plan_for(level: Level, personal: bool) -> Plan:
        return plan(cls, level, personal) if cls is not None else free_plan(level, personal)

    outside = plan_for(rules.public_clearance(), False)
    inside = plan_for(rules.own_clearance(p), rules.may_read_personal(p))
    scope = rules.clearance_scopes(p)
    if scope is None or scope == () or inside == outside:
        chosen = inside if scope is None else outside
        sql, params = chosen.sql(column, "rd_")
        return sql, params, (chosen.key,)
    in_sql, in_params = inside.sql(column, "rdi_")
    out_sql, out_params = outside.sql(column, "rdo_")
    params = in_params | out_params | {"rd_scopes": [s + "%" for s in scope]}
    sql = f"(CASE WHEN {place_sql} LIKE ANY(CAST(:rd_scopes AS text[])) THEN {in_sql} ELSE {out_sql} END)"
    return sql, params, (inside.key, outside.key, scope)


def queryable_level(p: Principal) -> Level:
    """Attributes a caller may filter on: the clearance it holds everywhere (a filter runs over every row, so
    a filter on a withheld attribute would tell its values)."""
    return rules.clearance_at(p, None) if rules.clearance_scopes(p) is None else rules.public_clearance()


def may_query(a: Attribute, level: Level) -> bool:
    """Filterable and aggregatable: at or below `level`, and never a personal (L4) attribute."""
    return a.level != "L4" and LEVELS.index(a.level) <= LEVELS.index(level)


def tile_attributes(cls: ObjectClass) -> frozenset[str]:
    """Attributes vector tiles may carry: L1 only (tiles are one product for every caller)."""
    return frozenset(a.field for a in cls.attributes if a.level == "L1")


# --- persons ----------------------------------------------------------------------------------------------------

PERSON_MASKS: dict[str, MaskKind] = {"name": "name", "id_number": "id_number", "phone": "phone"}


def may_list_facts(p: Principal, place: str | None) -> bool:
    """The 三实 records of a room (its persons, even masked, and its house) are shown only with the personal
    grant there: anyone else, the QR page included, learns not even how many persons live in it. Row-level
    security says the same in the database (`citygrid/db/roles.py`: persons and houses need the personal flag)."""
    return rules.may_read_personal(p, place)


def redact_person(p: Principal, person: Mapping[str, Any], place: str | None) -> dict[str, Any]:
    """A person (实有人口) as this caller may see it: name, ID number and phone masked unless it holds the
    personal grant for the place."""
    if rules.may_read_personal(p, place):
        return dict(person)
    return {k: (MASKS[PERSON_MASKS[k]](v) if k in PERSON_MASKS and isinstance(v, str) else
                None if k in PERSON_MASKS else v) for k, v in person.items()} | {"masked": True}


def redact_persons(p: Principal, persons: list[Mapping[str, Any]], place: str | None) -> list[dict[str, Any]] | None:
    """The persons of a room: None (withheld, their number included) unless `may_list_facts`, else each through
    `redact_person`."""
    if not may_list_facts(p, place):
        return None
    return [redact_person(p, x, place) for x in persons]


# --- counts of persons and households (k-anonymity) --------------------------------------------------------------


def k_anonymity() -> int:
    return get_settings().k_anonymity


def small_count(n: int | None, cleared: bool) -> int | None:
    """A count of persons or households, or None when it is below k and the caller is not cleared."""
    return n if cleared or n is None or n >= k_anonymity() else None


def count_sql(expr: str, cleared: bool) -> str:
    """`small_count` as SQL over a count expression (k bound as :k_anon)."""
    return expr if cleared else f"(CASE WHEN {expr} >= :k_anon THEN {expr} END)"
