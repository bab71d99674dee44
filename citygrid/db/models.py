"""The schema of the migrated database (Alembic head), declared table by table. Geometry is CGCS2000 (EPSG:4490).

Policy: SQL first. The migrations in `citygrid/db/migrations/versions/` build every database; queries are
`text()` SQL in the domain modules (`citygrid/regions/query.py`, `citygrid/registry/objects.py`,
`citygrid/layers/aggregate.py`, ...), because what they lean on (PostGIS functions, COPY, partial indexes whose
condition a query must repeat to use them) reads more plainly as SQL than as ORM expressions. These
classes are the schema's picture: every table, column, key, constraint and index at head, kept true by
`tests/test_schema.py`, which compares a migrated database with this module (Alembic autogenerate, then every
column, constraint and index as PostgreSQL prints it). Nothing calls `create_all` on a real database (the test
does, in a schema it rolls back); a new table or index is a new migration plus its declaration here, and
`alembic revision --autogenerate` can draft that migration from it. The models may be used in code wherever
they make it clearer.

Triggers and their PL/pgSQL functions cannot be declared here; this list is the picture of them, and
`tests/test_schema.py` checks it against the database (one line each: trigger on table → function).

- ``audit_log_no_change`` on audit_log → ``audit_log_append_only()``: refuses every UPDATE and DELETE, so the
  audit log stays append-only (0001_initial_schema.py).
- ``audit_log_no_truncate`` on audit_log → ``audit_log_append_only()``: refuses TRUNCATE too
  (0016_audit_chain.py).
- ``audit_log_chain`` on audit_log → ``audit_chain()``: before each insert, locks the one ``audit_head`` row,
  numbers the row (gapless ``seq``), stamps ``at`` and chains ``hash`` = sha256(previous hash, the row as
  ``audit_row_hash`` serialises it); SECURITY DEFINER, the application role never touches ``audit_head``
  (0016_audit_chain.py); since 0026 it chains onto the statement's previous row and leaves the head alone…
- ``audit_log_head`` on audit_log → ``audit_head_move()``: …which this statement trigger moves to the statement's
  last row, once: a bulk write's audit rows no longer walk a growing chain of head versions
  (0026_audit_head_per_statement.py).
- ``city_object_bgc_ins`` on city_object → ``city_object_bgc()``: sets ``bgc`` (Beidou code, level 10) from the
  point on surface when an insert gives none; the bulk path gives the batch's (0029_bulk_bgc_given.py).
- ``city_object_bgc_upd`` on city_object → ``city_object_bgc()``: recomputes it on every update that changes geom
  or bgc (0029_bulk_bgc_given.py).
- ``city_object_class_lock_ins`` on city_object → ``lock_object_classes()``: first of the statement's triggers
  (name order), takes a transaction-level advisory lock per class written, in class order, so writers of a class
  take its counts and layer version in one order and cannot deadlock (0024_object_class_write_lock.py).
- ``city_object_class_lock_upd`` on city_object → ``lock_object_classes()``: the same for updates, old and new
  classes (0024_object_class_write_lock.py).
- ``city_object_class_lock_del`` on city_object → ``lock_object_classes()``: the same for deletes
  (0024_object_class_write_lock.py).
- ``city_object_layer_ins`` on city_object → ``bump_object_layers()``: bumps ``layer_version`` of each class
  written, once per statement, so tile and page ETags change exactly when a layer does (0002_layer_versions.py).
- ``city_object_layer_upd`` on city_object → ``bump_object_layers()``: the same for updates
  (0002_layer_versions.py).
- ``city_object_layer_del`` on city_object → ``bump_object_layers_old()``: the same for deletes, from the old
  rows (0002_layer_versions.py).
- ``division_layer`` on division → ``bump_division_layer()``: bumps the ``divisions`` layer on any write or
  TRUNCATE (0002_layer_versions.py).
- ``grid_layer_ins`` on grid → ``bump_grid_layers_new()``: bumps ``grids-<system>`` for each system inserted
  into (0009_grid_and_doorplate_layer_versions.py).
- ``grid_layer_upd`` on grid → ``bump_grid_layers_upd()``: the same for the old and new systems of updated
  cells (0009_grid_and_doorplate_layer_versions.py).
- ``grid_layer_del`` on grid → ``bump_grid_layers_old()``: the same for deletes
  (0009_grid_and_doorplate_layer_versions.py).
- ``grid_layer_truncate`` on grid → ``bump_all_grid_layers()``: TRUNCATE has no rows, so every grid layer is
  bumped (0009_grid_and_doorplate_layer_versions.py).
- ``addr_node_layer`` on addr_node → ``bump_doorplate_layer()``: bumps the ``doorplates`` layer on any write or
  TRUNCATE (0009_grid_and_doorplate_layer_versions.py).
- ``city_object_counts_ins`` on city_object → ``agg_counts_ins()``: adds inserted active objects to
  ``agg_h3`` and ``agg_grid``, one GROUP BY per statement (0010_narrow_aggregation_counts.py).
- ``city_object_counts_del`` on city_object → ``agg_counts_del()``: subtracts deleted ones
  (0010_narrow_aggregation_counts.py).
- ``city_object_counts_upd`` on city_object → ``agg_counts_upd()``: subtracts the old rows and adds the new
  (0010_narrow_aggregation_counts.py).
- ``principal_version`` on principal → ``bump_principals_version()``: bumps the ``principals`` row of
  ``layer_version`` when a principal's rights can change (not on login bookkeeping), so cached credentials are
  checked per request at no extra round trip (0021_principals_version.py).
- ``principal_role_version`` on principal_role → ``bump_principals_version()``: the same for any change of
  roles (0021_principals_version.py).
- ``api_key_version`` on api_key → ``bump_principals_version()``: the same for a key revoked, expiring or
  deleted; not for ``last_used_at`` (0021_principals_version.py).
- ``city_object_history_feed`` on city_object_history → ``change_log_objects()``: one ``change_log`` entry per
  history row (create, update, retire, split, merge, confirm), with the object's class and place, once per
  statement from the transition table; SECURITY DEFINER, the application role may not insert into
  ``change_log`` (0018_links_and_change_feed.py).
- ``link_feed`` on link → ``change_log_links()``: a ``link`` entry per new link, an ``unlink`` entry when
  ``unlinked_at`` is set (0018_links_and_change_feed.py).
- ``link_county`` on link → ``county_from_code()``: fills ``county`` from the code's first 6 digits when the
  writer left it out; ``WHEN (NEW.county IS NULL)``, so citygrid's writers, which set it, pay nothing
  (0028_citus_ready.py).

``agg_rollup`` and its ``agg_rollup_*`` functions (0008_aggregation_rollup.py) were dropped by 0010; they are
history, not part of this picture.

The ``bump_*`` and ``agg_counts_*`` functions run as their owner (SECURITY DEFINER, 0017), so the application
role may only read ``layer_version``, ``agg_h3`` and ``agg_grid``. SQL (not PL/pgSQL) helpers: ``audit_row_hash``
(0016), and ``citygrid_areas``, ``citygrid_personal``, ``citygrid_hidden_classes``, ``citygrid_node_in_area``,
which the row-level security policies on city_object, addr_node, house, person and organization call (0017).
Roles, grants and policies are pictured in `citygrid/db/roles.py` and checked by `tests/test_security_rls.py`.

``citygrid_survey_neighbours`` and ``citygrid_survey_open_neighbours`` (SQL, SECURITY DEFINER,
0027_survey_states.py) give survey dedupe the objects of a class, and the valid rows of other villages' open
submissions, near given points that the caller's row-level security hides: code (or submission and row key),
class, distance and name similarity only (``citygrid_name_similarity``).

``citygrid_bgc(lon, lat, level)`` (PL/pgSQL, IMMUTABLE) computes ``city_object.bgc``, the Beidou grid code at
level 10 (0025_beidou_grid_code.py; the same code as `citygrid/grid/beidou.py`), in the row trigger
``city_object_bgc`` (0029_bulk_bgc_given.py): on insert when no code is given (the bulk path gives the batch's,
computed by `beidou.encode_many`), on every update that changes geom or bgc.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

SRID = 4490
ACTIVE = text("status = 'active'")


class XID8(UserDefinedType[str]):
    """PostgreSQL's 64-bit transaction id (never wraps around), which SQLAlchemy does not know."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


class Base(DeclarativeBase):
    pass


class Division(Base):
    """One administrative division; `code` is the statistical code cut to its level (2/4/6/9/12 digits).

    Divisions that exist only in the civil-affairs list get their civil-affairs code as `code`.
    """

    __tablename__ = "division"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    short_name: Mapped[str] = mapped_column(Text, nullable=False)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    kind: Mapped[str | None] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(String(12), ForeignKey("division.code"), index=True)
    stat_code: Mapped[str | None] = mapped_column(String(12), index=True)
    mca_code: Mapped[str | None] = mapped_column(String(12), index=True)
    sources: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=True)
    geom_source: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 5", name="division_level"),
        Index("division_short_name_idx", "short_name"),
        Index("division_name_idx", "name"),
        Index("division_aliases_idx", "aliases", postgresql_using="gin"),
        # fuzzy name search (pg_trgm); 0001_initial_schema.py
        Index("division_name_trgm_idx", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
        # placing objects in townships and villages probes only local outlines; 0011_local_division_outline_index.py
        Index("division_local_geom_idx", "geom", postgresql_using="gist",
              postgresql_where=text("level >= 4 AND geom IS NOT NULL")),
    )


class DivisionCode(Base):
    """Every code under which a division is known, per scheme and edition (statistical, civil-affairs)."""

    __tablename__ = "division_code"
    code: Mapped[str] = mapped_column(String(12), nullable=False)
    scheme: Mapped[str] = mapped_column(Text, nullable=False)
    division_code: Mapped[str] = mapped_column(
        String(12), ForeignKey("division.code", ondelete="CASCADE"), nullable=False, index=True
    )
    edition: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (PrimaryKeyConstraint("code", "scheme"),)


class DataSource(Base):
    """Provenance of loaded reference data: package, edition, checksum, counts."""

    __tablename__ = "data_source"
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    edition: Mapped[str] = mapped_column(Text, nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Department(Base):
    __tablename__ = "department"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    name_en: Mapped[str | None] = mapped_column(Text)
    division_code: Mapped[str | None] = mapped_column(String(12))


class ObjectClassRow(Base):
    """Mirror of the catalog in `schemas/`, synced at start so objects can reference it by key."""

    __tablename__ = "object_class"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    geometry_type: Mapped[str] = mapped_column(Text, nullable=False)
    department_id: Mapped[str | None] = mapped_column(Text, ForeignKey("department.id"))
    component_code: Mapped[str | None] = mapped_column(String(4))
    attribute_schema: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    update_period_days: Mapped[int | None] = mapped_column(Integer)
    # catalog `public: false` keeps the class out of public layers; row-level security reads it (0017)
    public: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))


class CodeCounter(Base):
    """Next free serial per (division, class); one row locked per allocation, blocks in one UPDATE."""

    __tablename__ = "code_counter"
    division_code: Mapped[str] = mapped_column(String(6), nullable=False)
    class_code: Mapped[str] = mapped_column(String(6), nullable=False)
    next_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (PrimaryKeyConstraint("division_code", "class_code"),)


class IssuedCode(Base):
    """Ledger of every code ever issued: the primary key makes reissue impossible."""

    __tablename__ = "issued_code"
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    division_code: Mapped[str] = mapped_column(String(6), nullable=False)
    class_code: Mapped[str] = mapped_column(String(6), nullable=False)
    serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="reserved")
    batch: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    issued_by: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        # the county (distribution column under Citus, 0028) in the key; it is the code's first 6 digits
        PrimaryKeyConstraint("code", "division_code"),
        UniqueConstraint("division_code", "class_code", "serial", name="issued_code_serial"),
        CheckConstraint("left(code, 6) = division_code", name="issued_code_county"),
    )


class CityObject(Base):
    __tablename__ = "city_object"
    uid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    # no index of its own: city_object_class_division_idx leads with it (0029 dropped ix_city_object_class_code)
    class_code: Mapped[str] = mapped_column(String(6), ForeignKey("object_class.code"), nullable=False)
    # the county: the code's first 6 digits, and the distribution column under Citus (0028)
    division_code: Mapped[str] = mapped_column(String(12), nullable=False, index=True)
    township_code: Mapped[str | None] = mapped_column(String(12), index=True)
    village_code: Mapped[str | None] = mapped_column(String(12), index=True)
    component_code: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=True), nullable=False)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="active")
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    h3: Mapped[int | None] = mapped_column(BigInteger, index=False)
    unit_grid: Mapped[str | None] = mapped_column(String(24))
    gov_grid: Mapped[str | None] = mapped_column(String(24))
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    bgc: Mapped[str | None] = mapped_column(Text)  # kept by the trigger city_object_bgc (0029)
    # for tiles (0031, citygrid/layers/sources.py `_mvt`): the minimum clearance in degrees, and the geometry in
    # Web Mercator, both kept by PostgreSQL on every write path
    geom_clearance: Mapped[float | None] = mapped_column(Double, Computed("st_minimumclearance(geom)", persisted=True))
    geom_3857 = mapped_column(Geometry("GEOMETRY", srid=3857, spatial_index=False),
                              Computed("st_transform(geom, 3857)", persisted=True))
    __table_args__ = (
        CheckConstraint("status IN ('active','retired')", name="city_object_status"),
        PrimaryKeyConstraint("uid", "division_code"),
        UniqueConstraint("code", "division_code", name="city_object_code_key"),
        UniqueConstraint("component_code", "division_code", name="city_object_component_code_key"),
        CheckConstraint("left(code, 6) = division_code", name="city_object_county"),
        ForeignKeyConstraint(["code", "division_code"], ["issued_code.code", "issued_code.division_code"],
                             name="city_object_code_fkey"),
        Index("city_object_class_division_idx", "class_code", "division_code", "code"),
        Index("city_object_unit_grid_idx", "unit_grid"),
        Index("city_object_gov_grid_idx", "gov_grid"),
        # "this class in this box" for maps (btree_gist); 0006_class_and_geometry_index.py
        Index("city_object_class_geom_idx", "class_code", "geom", postgresql_using="gist", postgresql_where=ACTIVE),
        # aggregation by H3 and grid as an index-only scan; 0007_aggregation_and_grid_lookup_indexes.py
        Index("city_object_agg_idx", "class_code", "h3", postgresql_include=["unit_grid", "gov_grid"],
              postgresql_where=ACTIVE),
    )


class CityObjectHistory(Base):
    """Every version of every object, written in the same transaction as the change."""

    __tablename__ = "city_object_history"
    uid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    op: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=False)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    division_code: Mapped[str] = mapped_column(String(12), nullable=False)
    changed_by: Mapped[str] = mapped_column(Text, nullable=False)
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        PrimaryKeyConstraint("uid", "version", "division_code"),
        ForeignKeyConstraint(["uid", "division_code"], ["city_object.uid", "city_object.division_code"],
                             name="city_object_history_uid_fkey"),
    )


class Lineage(Base):
    __tablename__ = "lineage"
    """Split and merge: parent → child. Kept on the child's shard (`county`); the parent may lie in another county
    (`parent_county`), so only the child has a foreign key (0028)."""

    parent_uid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    child_uid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    by: Mapped[str] = mapped_column(Text, nullable=False)
    county: Mapped[str] = mapped_column(String(6), nullable=False)
    parent_county: Mapped[str] = mapped_column(String(6), nullable=False)
    __table_args__ = (
        PrimaryKeyConstraint("parent_uid", "child_uid", "county"),
        CheckConstraint("kind IN ('split','merge')", name="lineage_kind"),
        ForeignKeyConstraint(["child_uid", "county"], ["city_object.uid", "city_object.division_code"],
                             name="lineage_child_uid_fkey"),
        Index("lineage_child_idx", "child_uid"),
        Index("lineage_parent_idx", "parent_uid"),
    )


class ChangeLog(Base):
    """Ordered feed of changes (一码互联 consumers follow it with a cursor, `citygrid/sharing/changes.py`): written
    only by the triggers on `city_object_history` and `link` (0018); `xid` is the writing transaction's id, and
    the cursor is (xid, seq). `class_code` and `place` (the most specific division) filter it by the caller's
    rights; `detail` holds the version, or the link's system, record and level."""

    __tablename__ = "change_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    county: Mapped[str] = mapped_column(String(6), primary_key=True)  # Citus distribution column (0028)
    entity: Mapped[str] = mapped_column(Text, nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    op: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    xid: Mapped[str] = mapped_column(XID8, nullable=False, server_default=text("pg_current_xact_id()"))
    class_code: Mapped[str | None] = mapped_column(Text)
    place: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    __table_args__ = (Index("change_log_cursor_idx", "xid", "seq"),)


class Link(Base):
    """A department system's record attached to an object's code (一码互联, 0018): one live link per (system,
    record_id); unlinking stamps `unlinked_at` (kept for the feed and history). `level` is the record's own
    classification (catalog L1–L4): callers below it at the object's place do not see the link."""

    __tablename__ = "link"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    county: Mapped[str] = mapped_column(String(6), primary_key=True)  # the code's first 6 digits (0028)
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    system: Mapped[str] = mapped_column(Text, nullable=False)
    record_id: Mapped[str] = mapped_column(Text, nullable=False)
    title: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    level: Mapped[str] = mapped_column(Text, nullable=False, server_default="L1")
    valid_from: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    department: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    unlinked_by: Mapped[str | None] = mapped_column(Text)
    unlinked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("level IN ('L1', 'L2', 'L3', 'L4')", name="link_level"),
        CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from", name="link_valid"),
        CheckConstraint("left(code, 6) = county", name="link_county"),
        ForeignKeyConstraint(["code", "county"], ["city_object.code", "city_object.division_code"],
                             name="link_code_fkey", ondelete="CASCADE"),
        # one live link per record and county: Citus cannot check a key across shards (0028)
        Index("link_record_idx", "system", "record_id", "county", unique=True,
              postgresql_where=text("unlinked_at IS NULL")),
        Index("link_code_idx", "code"),
    )


class Webhook(Base):
    """A principal's follower of the change feed that citygrid runs (`citygrid/sharing/webhooks.py`, 0018): each
    batch after `cursor`, filtered like `/changes` for that principal, is POSTed to `url` signed with `secret`
    (HMAC-SHA256); failures are retried with a growing pause, and after the last one the batch goes to
    `webhook_dead`. The secret is sealed at rest (`secret_enc` under key `secret_kid`, 0022); `secret` only held
    plaintext before that migration and stays empty (checked)."""

    __tablename__ = "webhook"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("principal.id", ondelete="CASCADE"),
                                                    nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    secret: Mapped[str | None] = mapped_column(Text)
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_kid: Mapped[str | None] = mapped_column(Text)
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    cursor: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                         server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    __table_args__ = (
        Index("webhook_due_idx", "next_attempt_at", postgresql_where=text("active")),
        Index("webhook_secret_kid_idx", "secret_kid"),
        CheckConstraint("secret_enc IS NULL OR secret_kid IS NOT NULL", name="webhook_secret_kid"),
        CheckConstraint("secret IS NULL", name="webhook_no_plaintext"),
    )


class WebhookDead(Base):
    """Batches a webhook gave up on after its last retry (the dead-letter list), for its owner to fetch."""

    __tablename__ = "webhook_dead"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook.id", ondelete="CASCADE"), nullable=False)
    since: Mapped[str] = mapped_column(Text, nullable=False)
    cursor: Mapped[str] = mapped_column(Text, nullable=False)
    entries: Mapped[list[Any]] = mapped_column(JSONB, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    __table_args__ = (Index("webhook_dead_hook_idx", "webhook_id", "id"),)


class AuditLog(Base):
    """Append-only, hash-chained record of every write and every read of personal fields: who (principal name and
    id, roles), when, what (action, target, fields), from where, outcome. Written only through
    `citygrid/security/audit.py`; triggers forbid UPDATE, DELETE and TRUNCATE and compute the chain (0016)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    principal: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    target: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)  # gapless position in the chain
    principal_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    roles: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    fields: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    client_addr: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'ok'::text"))
    error_code: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    __table_args__ = (
        CheckConstraint("outcome IN ('ok', 'refused', 'failed')", name="audit_log_outcome_check"),
        Index("audit_log_seq_idx", "seq", unique=True),
        Index("audit_log_at_idx", "at"),
        Index("audit_log_target_idx", "target"),
    )


class AuditHead(Base):
    """The head of the audit chain: one row (last seq and hash), locked by each insert (0016)."""

    __tablename__ = "audit_head"
    one: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    __table_args__ = (CheckConstraint("one", name="audit_head_one_check"),)


class Principal(Base):
    """A person (user: password, short-lived tokens) or a department system (service: API keys) that calls citygrid
    (citygrid/security/credentials.py, migration 0012)."""

    __tablename__ = "principal"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    username: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(Text)  # argon2id
    clearance: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'L2'::text"))
    personal: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    demo: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        CheckConstraint("kind IN ('user', 'service')", name="principal_kind_check"),
        CheckConstraint("username ~ '^[A-Za-z0-9_.@-]{2,64}$'", name="principal_username_check"),
        CheckConstraint("clearance IN ('L1', 'L2', 'L3', 'L4')", name="principal_clearance_check"),
    )


class PrincipalRole(Base):
    """One role of a principal with its scope: a division prefix and, for departments, the department whose
    catalog classes it owns (citygrid/security/principal.py)."""

    __tablename__ = "principal_role"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("principal.id", ondelete="CASCADE"),
                                                    nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    division: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text, ForeignKey("department.id"))
    classes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    __table_args__ = (
        CheckConstraint("role IN ('cadre', 'reviewer', 'department', 'admin')", name="principal_role_role_check"),
        CheckConstraint("division ~ '^[0-9]{2,12}$'", name="principal_role_division_check"),
        CheckConstraint("role <> 'department' OR department IS NOT NULL OR classes IS NOT NULL",
                        name="principal_role_check"),
        CheckConstraint("role NOT IN ('cadre', 'reviewer') OR division IS NOT NULL", name="principal_role_check1"),
        Index("principal_role_principal_idx", "principal_id"),
    )


class ApiKey(Base):
    """A department system's API key, stored as a keyed HMAC of its secret (`hash_kid` names the keyring key)."""

    __tablename__ = "api_key"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("principal.id", ondelete="CASCADE"),
                                                    nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    hash_kid: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("api_key_principal_idx", "principal_id"),)


class Job(Base):
    """Long-running work (loads, bulk allocation, batch geocoding) with progress that the API can report; `worker`
    is the process running it (host:pid:start ticks), so one whose process died is marked interrupted
    (citygrid/jobs.py)."""

    __tablename__ = "job"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="running")
    done: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    worker: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("job_unfinished", "state", postgresql_where=text("state IN ('running', 'cancelling')")),)



class LayerVersion(Base):
    """One counter per map layer, bumped by statement triggers (listed above); tile and page caches key on it
    (citygrid/db/versions.py)."""

    __tablename__ = "layer_version"
    layer: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AddrNode(Base):
    """一标: one node of the standard address tree (road, compound, village group, door plate, building, unit,
    floor, room) with its permanent address code; built by citygrid/address/base.py."""

    __tablename__ = "addr_node"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(24), nullable=False)
    level: Mapped[str] = mapped_column(Text, nullable=False)
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    # the county: the code's first 6 digits, and the distribution column under Citus (0028)
    division_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    township_code: Mapped[str | None] = mapped_column(String(12))
    village_code: Mapped[str | None] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text, nullable=False)
    number: Mapped[int | None] = mapped_column(Integer)
    suffix: Mapped[str | None] = mapped_column(Text)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    full_name: Mapped[str] = mapped_column(Text, nullable=False)
    point = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False), nullable=True)
    object_code: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="active")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    unit_grid: Mapped[str | None] = mapped_column(String(24))
    gov_grid: Mapped[str | None] = mapped_column(String(24))
    __table_args__ = (
        CheckConstraint("level IN ('road','compound','village_group','door','building','unit','floor','room')",
                        name="addr_node_level_check"),
        CheckConstraint("left(code, 6) = division_code", name="addr_node_county"),
        UniqueConstraint("code", "division_code", name="addr_node_code_key"),
        ForeignKeyConstraint(["parent_id", "division_code"], ["addr_node.id", "addr_node.division_code"],
                             name="addr_node_parent_id_fkey"),
        Index("addr_node_parent_idx", "parent_id"),
        Index("addr_node_level_town_idx", "level", "township_code"),
        Index("addr_node_name_idx", "name"),
        Index("addr_node_object_idx", "object_code"),
        Index("addr_node_point_idx", "point", postgresql_using="gist"),
        # geocoding matches fuzzy names of the levels people write down, not of buildings and rooms
        Index("addr_node_full_trgm_idx", "full_name", postgresql_using="gin",
              postgresql_ops={"full_name": "gin_trgm_ops"},
              postgresql_where=text("level IN ('road', 'compound', 'village_group', 'door')")),
    )


class House(Base):
    """实有房屋: the house behind one room node."""

    __tablename__ = "house"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    county: Mapped[str] = mapped_column(String(6), primary_key=True)  # the room's (0028)
    room_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    house_use: Mapped[str] = mapped_column(Text, nullable=False)
    area: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    property_type: Mapped[str | None] = mapped_column(Text)
    generated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    __table_args__ = (
        UniqueConstraint("room_id", "county", name="house_room_id_key"),
        ForeignKeyConstraint(["room_id", "county"], ["addr_node.id", "addr_node.division_code"],
                             name="house_room_id_fkey"),
    )


class Person(Base):
    """实有人口: a person living in a room; personal fields are masked on the way out
    (citygrid/security/classification.py). ID numbers and phones are stored only encrypted (`*_enc`, AES-GCM blobs that
    carry their key id `pii_kid`) with a keyed hash for lookup (citygrid/security/crypto.py); the plaintext
    columns `id_number` and `phone` are kept empty by a check and will be dropped."""

    __tablename__ = "person"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    county: Mapped[str] = mapped_column(String(6), primary_key=True)  # the room's (0028)
    room_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    id_number: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    relation: Mapped[str | None] = mapped_column(Text)
    generated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    pii_kid: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        ForeignKeyConstraint(["room_id", "county"], ["addr_node.id", "addr_node.division_code"],
                             name="person_room_id_fkey"),
        Index("person_room_idx", "room_id"),
        Index("person_id_number_hash_idx", "id_number_hash"),
        Index("person_pii_kid_idx", "pii_kid"),
        CheckConstraint("(id_number_enc IS NULL AND phone_enc IS NULL) OR pii_kid IS NOT NULL", name="person_pii_kid"),
        CheckConstraint("id_number IS NULL AND phone IS NULL", name="person_no_plaintext"),
    )


class Organization(Base):
    """实有单位: an organization at a door plate, by its unified social credit code."""

    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    county: Mapped[str] = mapped_column(String(6), primary_key=True)  # the door plate's (0028)
    door_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    credit_code: Mapped[str | None] = mapped_column(String(18))
    category: Mapped[str | None] = mapped_column(Text)
    generated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        ForeignKeyConstraint(["door_id", "county"], ["addr_node.id", "addr_node.division_code"],
                             name="organization_door_id_fkey"),
        Index("organization_door_idx", "door_id"),
        Index("organization_credit_idx", "credit_code"),
    )


class Grid(Base):
    """One cell of a grid system: unit grids (GB/T 30428.1), governance grids, or a department's own system
    imported beside them (多网合一; citygrid/grid/multi.py)."""

    __tablename__ = "grid"
    code: Mapped[str] = mapped_column(String(24), nullable=False)
    system: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    division_code: Mapped[str | None] = mapped_column(String(12))
    township_code: Mapped[str | None] = mapped_column(String(12))
    name: Mapped[str | None] = mapped_column(Text)
    households: Mapped[int | None] = mapped_column(Integer)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        PrimaryKeyConstraint("system", "code"),
        CheckConstraint("kind IN ('unit', 'governance', 'thematic')", name="grid_kind_check"),
        Index("grid_geom_idx", "geom", postgresql_using="gist"),
        Index("grid_division_idx", "division_code"),
        # write-time grid lookups search one system's cells; 0007_aggregation_and_grid_lookup_indexes.py
        Index("grid_unit_geom_idx", "geom", postgresql_using="gist", postgresql_where=text("system = 'unit'")),
        Index("grid_governance_geom_idx", "geom", postgresql_using="gist",
              postgresql_where=text("system = 'governance'")),
    )


class GridMembership(Base):
    """How much of a cell of one system lies in each cell of the base system (多网合一)."""

    __tablename__ = "grid_membership"
    system: Mapped[str] = mapped_column(Text, nullable=False)
    grid_code: Mapped[str] = mapped_column(String(24), nullable=False)
    base_system: Mapped[str] = mapped_column(Text, nullable=False)
    base_code: Mapped[str] = mapped_column(String(24), nullable=False)
    overlap_ratio: Mapped[float] = mapped_column(Double, nullable=False)
    __table_args__ = (PrimaryKeyConstraint("system", "grid_code", "base_system", "base_code"),)


class AggH3(Base):
    """Active objects per (class, H3 res-9 cell), kept exact by the ``city_object_counts_*`` triggers; the key
    INCLUDEs the count so a class's counts are an index-only scan (citygrid/layers/aggregate.py)."""

    __tablename__ = "agg_h3"
    class_code: Mapped[str] = mapped_column(String(6), nullable=False)
    h3_9: Mapped[int] = mapped_column(BigInteger, nullable=False)
    n: Mapped[int] = mapped_column(Integer, nullable=False)
    __table_args__ = (PrimaryKeyConstraint("class_code", "h3_9", postgresql_include=["n"]),)


class AggGrid(Base):
    """Active objects per (class, grid system, cell), kept like ``agg_h3``; rows that fall to 0 stay."""

    __tablename__ = "agg_grid"
    class_code: Mapped[str] = mapped_column(String(6), nullable=False)
    system: Mapped[str] = mapped_column(Text, nullable=False)
    code: Mapped[str] = mapped_column(String(24), nullable=False)
    n: Mapped[int] = mapped_column(Integer, nullable=False)
    __table_args__ = (PrimaryKeyConstraint("class_code", "system", "code", postgresql_include=["n"]),)


class Submission(Base):
    """A survey submission (citygrid/survey): the raw bytes as received, stored before anything reads them,
    then the outcome of processing (0019_survey_intake.py; row-level security by village)."""

    __tablename__ = "submission"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    class_code: Mapped[str] = mapped_column(String(6), ForeignKey("object_class.code"), nullable=False)
    village_code: Mapped[str] = mapped_column(String(12), nullable=False)
    township_code: Mapped[str] = mapped_column(String(12), nullable=False)
    submitter: Mapped[str] = mapped_column(Text, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    filename: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    crs: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="received")
    n_rows: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    n_invalid: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    errors: Mapped[list[Any]] = mapped_column(JSONB, nullable=False, server_default="[]")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # corrected rows sent again count up; what each send replaced is in submission_revision (0023)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    # when its cadre handed it in for review (0027)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("status IN ('received', 'validated', 'invalid', 'submitted', 'rejected', 'coded')",
                        name="submission_status_check"),
        CheckConstraint("source IN ('xlsx', 'csv', 'json', 'odk', 'geojson', 'gpkg', 'shapefile')",
                        name="submission_source_check"),
        Index("submission_village_idx", "village_code", "created_at"),
        Index("submission_township_idx", "township_code", "status"),
        Index("submission_submitter_idx", "submitter"),
    )


class SubmissionRow(Base):
    """One row of a submission: its cells as read, the values it becomes, every problem, the review."""

    __tablename__ = "submission_row"
    submission_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("submission.id", ondelete="CASCADE"),
                                                     nullable=False)
    row: Mapped[int] = mapped_column(Integer, nullable=False)
    cells: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=True)
    errors: Mapped[list[Any]] = mapped_column(JSONB, nullable=False, server_default="[]")
    # likely duplicates among registered objects (code, distance, name similarity), for the reviewer to decide
    duplicates: Mapped[list[Any]] = mapped_column(JSONB, nullable=False, server_default="[]")
    status: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    object_code: Mapped[str | None] = mapped_column(String(21))
    reviewed_by: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # `row` is the row's stable key; the line of the latest file that gave it and that file's revision (0027)
    file_row: Mapped[int | None] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    __table_args__ = (
        PrimaryKeyConstraint("submission_id", "row"),
        CheckConstraint("status IN ('invalid', 'valid', 'approved', 'rejected')", name="submission_row_status_check"),
        Index("submission_row_object_idx", "object_code", postgresql_where=text("object_code IS NOT NULL")),
        # duplicates among the class's open submissions (0023)
        Index("submission_row_open_geom_idx", "geom", postgresql_using="gist", postgresql_where=text("status = 'valid'")),
    )


class SubmissionAttachment(Base):
    """A file sent with a submission (an ODK photo), kept as received."""

    __tablename__ = "submission_attachment"
    submission_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("submission.id", ondelete="CASCADE"),
                                                     nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str | None] = mapped_column(Text)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    __table_args__ = (PrimaryKeyConstraint("submission_id", "name"),)


class SubmissionRevision(Base):
    """What a resubmission of corrected rows replaced: the earlier file and its rows' outcome (0023)."""

    __tablename__ = "submission_revision"
    submission_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("submission.id", ondelete="CASCADE"),
                                                     nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    submitter: Mapped[str] = mapped_column(Text, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    filename: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    crs: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    n_rows: Mapped[int] = mapped_column(Integer, nullable=False)
    n_invalid: Mapped[int] = mapped_column(Integer, nullable=False)
    errors: Mapped[list[Any]] = mapped_column(JSONB, nullable=False, server_default="[]")
    rows: Mapped[list[Any]] = mapped_column(JSONB, nullable=False, server_default="[]")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    replaced_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    __table_args__ = (PrimaryKeyConstraint("submission_id", "revision"),)
