"""Tables. Geometry is stored in CGCS2000 (EPSG:4490), the official CRS of Chinese surveying."""

from __future__ import annotations

import datetime as dt
import uuid

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SRID = 4490


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
    detail: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
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
    attribute_schema: Mapped[dict] = mapped_column(JSONB, nullable=False)
    update_period_days: Mapped[int | None] = mapped_column(Integer)


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
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    division_code: Mapped[str] = mapped_column(String(6), nullable=False)
    class_code: Mapped[str] = mapped_column(String(6), nullable=False)
    serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="reserved")
    batch: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    issued_by: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("division_code", "class_code", "serial", name="issued_code_serial"),)


class CityObject(Base):
    __tablename__ = "city_object"
    uid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(32), ForeignKey("issued_code.code"), unique=True, nullable=False)
    class_code: Mapped[str] = mapped_column(String(6), ForeignKey("object_class.code"), nullable=False, index=True)
    division_code: Mapped[str] = mapped_column(String(12), nullable=False, index=True)
    township_code: Mapped[str | None] = mapped_column(String(12), index=True)
    village_code: Mapped[str | None] = mapped_column(String(12), index=True)
    component_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=True), nullable=False)
    attrs: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
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
    __table_args__ = (
        CheckConstraint("status IN ('active','retired')", name="city_object_status"),
        Index("city_object_class_division_idx", "class_code", "division_code", "code"),
        Index("city_object_h3_idx", "h3"),
        Index("city_object_unit_grid_idx", "unit_grid"),
        Index("city_object_gov_grid_idx", "gov_grid"),
    )


class CityObjectHistory(Base):
    """Every version of every object, written in the same transaction as the change."""

    __tablename__ = "city_object_history"
    uid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("city_object.uid"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    op: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=False)
    attrs: Mapped[dict] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    division_code: Mapped[str] = mapped_column(String(12), nullable=False)
    changed_by: Mapped[str] = mapped_column(Text, nullable=False)
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (PrimaryKeyConstraint("uid", "version"),)


class Lineage(Base):
    __tablename__ = "lineage"
    parent_uid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("city_object.uid"), nullable=False)
    child_uid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("city_object.uid"), nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    by: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (
        PrimaryKeyConstraint("parent_uid", "child_uid"),
        CheckConstraint("kind IN ('split','merge')", name="lineage_kind"),
        Index("lineage_child_idx", "child_uid"),
    )


class ChangeLog(Base):
    """Ordered feed of changes (一码互联 consumers poll it with a cursor)."""

    __tablename__ = "change_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(Text, nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    op: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditLog(Base):
    """Append-only record of who did what; a trigger forbids UPDATE and DELETE."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    principal: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    target: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")


class Job(Base):
    """Long-running work (loads, bulk allocation) with progress that the API can report."""

    __tablename__ = "job"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="running")
    done: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

