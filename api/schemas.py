"""The shapes of the API's JSON answers, for the OpenAPI document (`api/openapi.py`: declared with `ok(Model)`,
documented, never validated per request). A field is required when every answer has it; answers may carry more
(models allow extra keys), and values the caller may not see are null (`citygrid.security.classification`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields
from typing import Any, get_type_hints

from pydantic import BaseModel, Field, create_model

from api.openapi import Feature, FeatureCollection, Geometry, Link
from citygrid.regions import query as regions

# --- system -------------------------------------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    version: str
    divisions_by_level: dict[str, int]
    objects: int


class Liveness(BaseModel):
    status: str
    version: str
    pid: int
    uptime_s: float


class Readiness(BaseModel):
    status: str
    database: str
    address_index: str
    pid: int
    replicas: list[dict[str, Any]] | None = None


class ServiceIndex(BaseModel):
    name: str
    docs: str
    openapi: str
    links: list[str]


class ErrorEntryOut(BaseModel):
    error_code: str
    http_status: int
    message_zh: str
    message_en: str
    params: list[str]
    note: str | None


class ErrorCatalogue(BaseModel):
    errors: list[ErrorEntryOut]


# --- auth and audit -----------------------------------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class GrantOut(BaseModel):
    role: str
    division: str | None
    department: str | None
    classes: list[str] | None


class PrincipalOut(BaseModel):
    id: str | None
    kind: str
    username: str
    display_name: str | None
    clearance: str
    personal: bool
    roles: list[GrantOut]
    via: str | None


class AuditPage(BaseModel):
    count: int
    items: list[dict[str, Any]]


class AuditReport(BaseModel):
    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    broken_at: dict[str, Any] | None


# --- divisions and catalog ----------------------------------------------------------------------------------------


# The domain's own division record (`citygrid.regions.query.DivisionOut`) with what its `to_dict` adds, built
# from the dataclass's fields so the two cannot drift apart.
_DIVISION: dict[str, Any] = {f.name: (get_type_hints(regions.DivisionOut)[f.name], ...) for f in fields(regions.DivisionOut)}
DivisionOut = create_model("DivisionOut", **_DIVISION, level_name=(str | None, ...),
                           codes=(dict[str, str | None], ...))


class DivisionChild(BaseModel):
    code: str
    name: str
    kind: str | None
    mca_code: str | None


class DivisionDetail(DivisionOut):
    parents: list[DivisionOut]
    children: list[DivisionChild]
    children_count: int
    also_matches: list[dict[str, Any]]
    has_boundary: bool


class DivisionSearch(BaseModel):
    items: list[DivisionOut]
    count: int


class DivisionChildren(BaseModel):
    items: list[DivisionOut]
    next: str | None = Field(..., description="the `after` of the next page; null on the last")


class DivisionParents(BaseModel):
    items: list[DivisionOut]


class DepartmentOut(BaseModel):
    id: str
    name: str
    name_en: str


class ClassOut(BaseModel):
    code: str
    major: str
    middle: str
    minor: str
    name: str
    geometry: str
    department: DepartmentOut
    component_code: str | None
    update_period_days: int | None
    personal: bool
    public: bool
    attributes: list[dict[str, Any]]


class ClassList(BaseModel):
    source: str | None
    edition: str | None
    majors: dict[str, Any]
    middles: dict[str, Any]
    items: list[ClassOut]
    count: int


class Classification(BaseModel):
    levels: dict[str, Any]
    grades: list[dict[str, Any]] | dict[str, Any]


class DepartmentRow(DepartmentOut):
    classes: list[str]


class DepartmentList(BaseModel):
    items: list[DepartmentRow]
    count: int


# --- codes and objects --------------------------------------------------------------------------------------------


class CodeExplained(BaseModel):
    code: str
    scheme: str
    standard: str | None
    valid: bool
    segments: list[dict[str, Any]] | dict[str, Any]
    object: dict[str, Any] | None
    status: str | None = Field(None, description="issued codes: active/retired …, reserved, not_issued or withheld")


class CodeBlock(BaseModel):
    batch: str | None
    count: int
    first: str
    last: str
    codes: list[str] | None = Field(..., description="every code, for blocks of up to 10,000")


class CityObject(BaseModel):
    """An object as the caller may see it (attributes above its clearance left out, who/why null)."""

    uid: str
    code: str
    class_code: str
    class_name: str | None
    division_code: str | None
    township_code: str | None
    village_code: str | None
    component_code: str | None
    grids: dict[str, Any] = Field(..., description="unit, governance, beidou: the object's cells (`expand=grids`: "
                                                   "and their names)")
    name: str | None
    geometry: Geometry
    crs: str
    attrs: dict[str, Any]
    status: str
    version: int
    valid_from: dt.datetime | None
    valid_to: dt.datetime | None
    created_by: str | None
    created_at: dt.datetime | None
    updated_by: str | None
    updated_at: dt.datetime | None


class ObjectExpanded(CityObject):
    links: list[dict[str, Any]] | dict[str, Any] | None = None
    address: list[dict[str, Any]] | None = None
    history: list[dict[str, Any]] | None = None
    lineage: dict[str, Any] | None = None


class ObjectPage(BaseModel):
    items: list[CityObject]
    next: str | None = Field(..., description="the `after` of the next page; null on the last")
    count: int


class AreaConfirmed(BaseModel):
    division: str
    class_code: str
    confirmed: int


class SplitOut(BaseModel):
    parent: CityObject | None
    children: list[CityObject]


class MergeOut(BaseModel):
    parents: list[CityObject | None]
    result: CityObject


class Version(BaseModel):
    version: int
    op: str
    name: str | None
    geometry: Geometry
    attrs: dict[str, Any]
    status: str
    changed_by: str | None
    changed_at: dt.datetime | None
    reason: str | None


class History(BaseModel):
    code: str
    versions: list[Version]


class LineageEntry(BaseModel):
    code: str
    kind: str
    at: dt.datetime | None
    by: str | None


class Lineage(BaseModel):
    code: str
    parents: list[LineageEntry]
    children: list[LineageEntry]


# --- jobs, links, changes, webhooks -------------------------------------------------------------------------------


class Job(BaseModel):
    id: str
    kind: str
    state: str
    done: int
    total: int | None
    detail: dict[str, Any]
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class JobList(BaseModel):
    items: list[Job]
    count: int


class LinkOut(BaseModel):
    id: int
    code: str
    system: str
    record_id: str
    title: str | None
    url: str | None
    payload: dict[str, Any] | None
    level: str
    valid_from: dt.datetime | None
    valid_to: dt.datetime | None
    current: bool
    department: str | None
    created_by: str | None
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    inherited_from: str | None
    lineage: list[dict[str, Any]]
    unlinked_at: dt.datetime | None = None


class LinksOf(BaseModel):
    code: str
    status: str
    links: list[LinkOut]
    count: int
    successors: list[str] | None = Field(None, description="a retired object's current successors")


class LinkFound(BaseModel):
    system: str
    record_id: str
    code: str
    status: str
    link: LinkOut
    successors: list[str] | None = None


class ChangeEntry(BaseModel):
    cursor: str
    kind: str
    entity: str
    code: str | None
    class_code: str | None
    place: str | None
    at: dt.datetime | None


class ChangePage(BaseModel):
    entries: list[ChangeEntry]
    count: int
    cursor: str = Field(..., description="send it back as `since`")
    more: bool


class Webhook(BaseModel):
    id: int
    url: str
    filters: dict[str, Any]
    cursor: str | None
    active: bool
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    delivered: int
    created_at: dt.datetime | None


class WebhookCreated(Webhook):
    secret: str = Field(..., description="shown once: signs every batch (X-Citygrid-Signature)")


class WebhookList(BaseModel):
    webhooks: list[Webhook]


class DeadLetters(BaseModel):
    webhook: int
    dead: list[dict[str, Any]]


# --- addresses ----------------------------------------------------------------------------------------------------


class Normalized(BaseModel):
    input: str
    normalized: str


class Span(BaseModel):
    label: str
    text: str
    value: str
    start: int
    end: int


class Parsed(Normalized):
    spans: list[Span]


class Point(BaseModel):
    crs: str
    lon: float | None = None
    lat: float | None = None
    x: float | None = Field(None, description="projected CRS: easting")
    y: float | None = Field(None, description="projected CRS: northing")
    wgs84: dict[str, float] | None = None


class Candidate(BaseModel):
    address: str | None
    address_code: str | None
    level: str
    level_zh: str
    level_amap: str
    precise: bool
    confidence: float = Field(..., ge=0, le=1)
    point: Point | None
    codes: dict[str, str]
    township: dict[str, Any] | None
    village: dict[str, Any] | None
    grid: Any
    unused: list[str]
    notes: list[Any]


class Geocoded(BaseModel):
    input: Any
    normalized: str | None = None
    candidates: list[Candidate]
    error: dict[str, Any] | None = Field(None, description="bad input in a list: the problem of this row")


class GeocodedRow(Geocoded):
    row: int


class GeocodedMany(BaseModel):
    count: int
    results: list[GeocodedRow]


class Reverse(BaseModel):
    point: Point
    door: dict[str, Any] | None
    building: dict[str, Any] | None
    road: dict[str, Any] | None
    reason: dict[str, str] | None = Field(None, description="why nothing near was found")


class AddressNode(BaseModel):
    code: str
    level: str
    name: str | None
    address: str | None
    status: str
    point: dict[str, Any] | None
    object_code: str | None
    township_code: str | None
    village_code: str | None
    parents: list[dict[str, Any]]
    children: list[dict[str, Any]]
    qr: str
    page: str
    house: dict[str, Any] | None = None
    persons: list[dict[str, Any]] | None = None
    organizations: list[dict[str, Any]] | None = None


class BatchStarted(BaseModel):
    job: str
    status: str = Field(..., description="where to follow the job")
    result: str = Field(..., description="where to download the result when it is done")
    header: list[str] | None = None


class Registered(BaseModel):
    """A person or an organization as registered (fields above the caller's clearance masked)."""

    id: int | str
    name: str | None


class PersonsFound(BaseModel):
    count: int
    persons: list[dict[str, Any]]


# --- survey -------------------------------------------------------------------------------------------------------


class Submission(BaseModel):
    id: str
    class_code: str
    village_code: str | None
    township_code: str | None
    submitter: str | None
    source: str | None
    filename: str | None
    status: str
    rows: int | None
    invalid: int | None
    errors: list[dict[str, Any]] | None
    revision: int
    created_at: dt.datetime | None
    processed_at: dt.datetime | None
    job: dict[str, Any] | None = Field(None, description="the processing job: state and progress")


class SubmissionList(BaseModel):
    count: int
    items: list[Submission]


class SubmissionDetail(Submission):
    revisions: list[dict[str, Any]]
    items: list[dict[str, Any]]


class Revisions(BaseModel):
    count: int
    items: list[dict[str, Any]]


class Reviewed(BaseModel):
    submission: Submission
    results: list[dict[str, Any]]


# --- grids, aggregates, freshness, layers -------------------------------------------------------------------------


class GridCells(FeatureCollection):
    numberReturned: int  # noqa: N815 (the OGC name)


class GridSystems(BaseModel):
    items: list[dict[str, Any]]


class MultiReport(BaseModel):
    cells: int
    crossing_communities: list[dict[str, Any]]
    overlaps: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    split_over_base_cells: int


class GridCell(Feature):
    base: Any = Field(..., description="the base grid's cells it maps onto")


class GridImported(BaseModel):
    system: str
    cells: int
    base: str
    report: MultiReport


class Aggregate(FeatureCollection):
    meta: dict[str, Any]


class FreshnessReport(BaseModel):
    division: str | None
    class_: str | None = Field(..., alias="class")
    department: str | None
    rows: list[dict[str, Any]]


class LayerList(BaseModel):
    layers: list[dict[str, Any]]


class TileJSON(BaseModel):
    tilejson: str
    name: str | None = None
    tiles: list[str]
    minzoom: int
    maxzoom: int


class MapStyle(BaseModel):
    version: int
    name: str | None = None
    sources: dict[str, Any]
    layers: list[dict[str, Any]]


# --- OGC API - Features -------------------------------------------------------------------------------------------


class Landing(BaseModel):
    title: str
    description: str | None = None
    links: list[Link]


class Conformance(BaseModel):
    conformsTo: list[str]  # noqa: N815 (the standard's name)


class CollectionOut(BaseModel):
    id: str
    title: str | None
    description: str | None = None
    itemType: str  # noqa: N815
    crs: list[str]
    storageCrs: str  # noqa: N815
    extent: dict[str, Any]
    links: list[Link]


class Collections(BaseModel):
    links: list[Link]
    collections: list[CollectionOut]
    crs: list[str]


class OgcItems(FeatureCollection):
    numberMatched: int | None = None  # noqa: N815
    numberReturned: int  # noqa: N815
    links: list[Link]


class OgcFeature(Feature):
    links: list[Link] | None = None


class Queryables(BaseModel):
    """A JSON Schema of the properties CQL2 filters may name (OGC API - Features Part 3)."""

    type: str = Field(..., pattern="^object$")
    properties: dict[str, Any]
    title: str | None = None
