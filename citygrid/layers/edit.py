"""OGC API – Features Part 4 (Create, Replace, Update, Delete) on object-class collections.

GIS tools edit a department's classes as features; each write is the registry's own (`registry.objects`:
validation against the class's attribute table, code assignment, rights, history, audit and, by the history
trigger, the change feed), so editing through OGC API can do nothing `/objects` could not. This module only
translates: a GeoJSON Feature in the `Content-Crs` (Part 2; default CRS84, axis order as the CRS defines it) to
the registry's terms, the registry's 422s to OGC's 400s naming `properties.<attr>`, and preconditions
(`If-Match` against the object's ETag, `If-Unmodified-Since` against its last write) checked on the row locked
for the write, so two editors of one object cannot both win (the second gets 412, never a lost update).

Properties are the object's columns (`name`; the rest are computed and ignored on input, as GET writes them)
and its attributes. A caller who sees an attribute masked or not at all (`classification`) may still write it,
but sending back the masked value it was shown changes nothing, and a replace keeps what it could not see:
editing a copy must not wipe what the copy left out. DELETE retires the object (codes are never reused): its
item stays readable with `status: retired`, out of the collection's items.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from citygrid import crs as crsmod
from citygrid.crs import Crs
from citygrid.errors import CitygridError, E, detail
from citygrid.layers import features, sources
from citygrid.layers.sources import ObjectClassLayer
from citygrid.registry import objects
from citygrid.security import classification, rules
from citygrid.security.principal import Principal

_CONF = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/"
CONFORMANCE = [_CONF + c for c in ("create-replace-delete", "update", "features", "optimistic-locking-etags",
                                   "optimistic-locking-timestamps")]
FEATURE_TYPES = ("application/geo+json", "application/json")
PATCH_TYPES = (*FEATURE_TYPES, "application/merge-patch+json")
# Properties GET writes that are the registry's to set (codes, place, grids, version): ignored on input.
COMPUTED = frozenset({"code", "class_code", "division_code", "township_code", "village_code", "component_code",
                      "version", "valid_from", "unit_grid", "gov_grid", "status"})
READ_ONLY_ALLOW = "GET"


@dataclass
class Written:
    """What a write leaves: the feature's id, the new ETag (None after a delete) and the feature as the caller
    now sees it, in the CRS of the request."""

    fid: str
    etag: str | None = None
    last_modified: dt.datetime | None = None
    feature: dict[str, Any] | None = None


def content_crs(value: str | None) -> Crs:
    """The CRS of a request body's geometry (`Content-Crs`, Part 2): a registered one, default CRS84."""
    bare = value.strip().removeprefix("<").removesuffix(">") if value else value
    return crsmod.lookup(bare, "Content-Crs", default=crsmod.CRS84)


def check_media(content_type: str | None, allowed: tuple[str, ...]) -> None:
    """A body labelled as something else than JSON is a 415; an unlabelled one is read as JSON (curl, scripts)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media and media not in allowed:
        raise E.media_type_unsupported("Content-Type", given=media, supported=", ".join(allowed))


def _layer(cid: str, action_zh: str, action_en: str) -> ObjectClassLayer:
    layer = sources.find(cid)
    if layer is None:
        raise E.collection_not_found("collectionId", collection=cid)
    if not isinstance(layer, ObjectClassLayer):
        raise E.collection_read_only("collectionId", collection=cid, action_zh=action_zh, action_en=action_en)
    return layer


def read_only(cid: str) -> None:
    """405 for a collection that exists and is not editable (divisions, grids, door plates), else nothing."""
    _layer(cid, "编辑", "editing")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except ValueError as exc:
        raise E.feature_body_invalid("body", **detail("不是合法的 JSON", "not valid JSON")) from exc


_NO_GEOMETRY = object()


def _feature(body: Any, *, partial: bool) -> tuple[Any, dict[str, Any], Any]:
    """(geometry or _NO_GEOMETRY, properties, id) of a Feature; for an update also a bare properties object
    (a merge patch of the properties)."""
    if not isinstance(body, dict):
        raise E.feature_body_invalid("body", **detail("应为 JSON 对象", "not a JSON object"))
    if partial and body.get("type") != "Feature" and "properties" not in body and "geometry" not in body:
        return _NO_GEOMETRY, body, None
    if body.get("type") != "Feature":
        raise E.feature_body_invalid("type", **detail("type 应为 Feature", "type must be Feature"))
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise E.feature_body_invalid("properties", **detail("properties 应为对象", "properties must be an object"))
    return body.get("geometry", _NO_GEOMETRY), props, body.get("id")


def _swap(coords: Any) -> Any:
    """Coordinates with the first two axes exchanged (northing-first CRSs to GeoJSON's x-first)."""
    if isinstance(coords, list) and coords and all(isinstance(v, int | float) for v in coords):
        return [coords[1], coords[0], *coords[2:]] if len(coords) >= 2 else coords
    return [_swap(c) for c in coords] if isinstance(coords, list) else coords


def _geometry(geometry: Any, c: Crs) -> Any:
    """The geometry as the registry reads it (x first): Part 2 writes EPSG:4490, 4326 and the Gauss-Krüger zones
    northing first; anything malformed is left for the registry's own errors."""
    if not c.northing_first or not isinstance(geometry, dict):
        return geometry
    if isinstance(geometry.get("geometries"), list):
        return geometry | {"geometries": [_geometry(g, c) for g in geometry["geometries"]]}
    return geometry | {"coordinates": _swap(geometry.get("coordinates"))}


def _split(layer: ObjectClassLayer, props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(object fields, attributes) of a feature's properties."""
    given = props.get("class_code")
    if given is not None and given != layer.cls.code:
        raise E.feature_body_invalid("properties.class_code", **detail(
            f"class_code 应为 {layer.cls.code}", f"class_code must be {layer.cls.code}"))
    fields: dict[str, Any] = {k: props[k] for k in ("name", "division_code") if k in props}
    return fields, {k: v for k, v in props.items() if k not in COMPUTED and k != "name"}


def _ogc_field(field: str | None) -> str | None:
    if field is None:
        return None
    if field.startswith("attrs."):
        return "properties." + field[len("attrs."):]
    return "properties." + field if field in ("name", "division_code", "class_code") else field


@contextmanager
def _as_ogc() -> Iterator[None]:
    """The registry's problems with the content (422) as OGC API answers them (400), fields named as in the
    feature."""
    try:
        yield
    except CitygridError as e:
        if e.kind != "unprocessable":
            raise
        raise CitygridError([replace(p, field=_ogc_field(p.field)) for p in e.problems], "invalid") from e


def _precondition(cur: Any, fid: str, if_match: str | None, if_unmodified_since: str | None) -> None:
    """RFC 9110 §13: If-Match (strong comparison, `*` any) decides; without it If-Unmodified-Since (a date that
    does not parse is ignored, as the RFC says)."""
    tag = features.etag(cur.version, cur.updated_at)
    if if_match is not None:
        tags = [t.strip() for t in if_match.split(",") if t.strip()]
        if not tags or any(t != "*" and not t.startswith(('"', 'W/"')) for t in tags):
            raise E.precondition_invalid("If-Match", header="If-Match", value=if_match[:80])
        if "*" not in tags and tag not in tags:
            raise E.feature_precondition_failed("If-Match", feature=fid, etag=tag)
        return
    if if_unmodified_since:
        try:
            since = email.utils.parsedate_to_datetime(if_unmodified_since)
        except (TypeError, ValueError):
            return
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        if cur.updated_at.replace(microsecond=0) > since:
            raise E.feature_precondition_failed("If-Unmodified-Since", feature=fid, etag=tag)


def _locked(s: Session, p: Principal, layer: ObjectClassLayer, fid: str, action_zh: str, action_en: str,
            if_match: str | None, if_unmodified_since: str | None) -> Any:
    """The object locked for the write, after the refusals (401, 403, 404 as `/objects`), then preconditions."""
    rules.require_login(p, action_zh, action_en)
    try:
        cur = objects.lock(s, p, fid, action_zh, action_en)
    except CitygridError as e:
        if e.error_code == "object_not_found":
            raise E.feature_not_found("featureId", feature=fid) from e
        raise
    if cur.class_code != layer.cls.code:
        raise E.feature_not_found("featureId", feature=fid)
    _precondition(cur, fid, if_match, if_unmodified_since)
    return cur


def _kept(p: Principal, layer: ObjectClassLayer, cur: Any, attrs: dict[str, Any], *, replacing: bool
          ) -> dict[str, Any]:
    """The attribute changes to make: a masked value sent back as it was shown changes nothing; a replace
    removes the attributes the caller saw and left out, and keeps those it could not see."""
    plan = classification.plan_at(p, layer.cls, rules.place_of(cur.village_code, cur.township_code,
                                                                cur.division_code))
    current = dict(cur.attrs or {})
    shown = plan.apply(current)
    out = {k: v for k, v in attrs.items()
           if not (k in shown and k not in plan.keep and not plan.keep_all and v == shown[k])}
    if replacing:
        for k in current:
            if k not in attrs and (plan.keep_all or k in plan.keep):
                out[k] = None
    return out


def _written(s: Session, p: Principal, cid: str, fid: str, c: Crs) -> Written:
    conn = s.connection()
    feat = features.item(conn, p, cid, fid, c.uri)
    feat.pop("crs")
    return Written(fid, feat.pop("etag"), feat.pop("last_modified"), feat)


def create(s: Session, p: Principal, cid: str, body: bytes, content_type: str | None, crs: str | None) -> Written:
    layer = _layer(cid, "新增要素", "creating features")
    rules.require_login(p, "新增要素", "creating features")
    check_media(content_type, FEATURE_TYPES)
    c = content_crs(crs)
    geometry, props, _ = _feature(_json(body), partial=False)  # an id in the body is ignored: the registry codes
    fields, attrs = _split(layer, props)
    with _as_ogc():
        made = objects.create(s, p, objects.NewObject(
            class_code=layer.cls.code, geometry=None if geometry is _NO_GEOMETRY else _geometry(geometry, c),
            attrs=attrs, name=fields.get("name"), division_code=fields.get("division_code"), crs=c.key))
    return _written(s, p, cid, str(made["code"]), c)


def replace_item(s: Session, p: Principal, cid: str, fid: str, body: bytes, content_type: str | None,
                 crs: str | None, if_match: str | None, if_unmodified_since: str | None) -> Written:
    return _change(s, p, cid, fid, body, content_type, crs, if_match, if_unmodified_since, replacing=True)


def update_item(s: Session, p: Principal, cid: str, fid: str, body: bytes, content_type: str | None,
                crs: str | None, if_match: str | None, if_unmodified_since: str | None) -> Written:
    return _change(s, p, cid, fid, body, content_type, crs, if_match, if_unmodified_since, replacing=False)


def _change(s: Session, p: Principal, cid: str, fid: str, body: bytes, content_type: str | None, crs: str | None,
            if_match: str | None, if_unmodified_since: str | None, *, replacing: bool) -> Written:
    """PUT (the feature as a whole: attributes left out are removed) or PATCH (RFC 7396 merge patch: given
    properties change, null removes, the rest stays), as one registry update."""
    action_zh, action_en = ("替换要素", "replacing features") if replacing else ("修改要素", "updating features")
    layer = _layer(cid, action_zh, action_en)
    rules.require_login(p, action_zh, action_en)
    check_media(content_type, FEATURE_TYPES if replacing else PATCH_TYPES)
    c = content_crs(crs)
    geometry, props, given_id = _feature(_json(body), partial=not replacing)
    if given_id is not None and str(given_id) != fid:
        raise E.feature_id_mismatch("id", given=str(given_id)[:40], feature=fid)
    if geometry is None or (replacing and geometry is _NO_GEOMETRY):
        raise E.geom_missing("geometry")
    cur = _locked(s, p, layer, fid, action_zh, action_en, if_match, if_unmodified_since)
    fields, attrs = _split(layer, props)
    name = fields.get("name")
    if name is not None and not isinstance(name, str):
        raise E.name_invalid("properties.name", label_zh="名称", max=200, nonempty_zh="", nonempty_en="")
    with _as_ogc():
        objects.update(s, p, fid, attrs=_kept(p, layer, cur, attrs, replacing=replacing), name=name,
                       geometry=None if geometry is _NO_GEOMETRY else _geometry(geometry, c), crs=c.key,
                       reason="OGC API " + ("PUT" if replacing else "PATCH"))
    return _written(s, p, cid, fid, c)


def delete_item(s: Session, p: Principal, cid: str, fid: str, if_match: str | None,
                if_unmodified_since: str | None) -> Written:
    layer = _layer(cid, "删除要素", "deleting features")
    _locked(s, p, layer, fid, "注销对象", "retiring objects", if_match, if_unmodified_since)
    objects.retire(s, p, fid, reason="OGC API DELETE")
    return Written(fid)
