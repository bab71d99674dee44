"""address base and three facts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 02:56:33.945782
"""
from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 一标: the standard address tree, one row per node (road, compound, village group, door plate, building,
    # unit, floor, room) with a permanent address code; 三实: houses, persons, organizations.
    op.execute(
        """
        CREATE TABLE addr_node (
          id bigserial PRIMARY KEY,
          code varchar(24) NOT NULL UNIQUE,
          level text NOT NULL CHECK (level IN ('road','compound','village_group','door','building','unit','floor','room')),
          parent_id bigint REFERENCES addr_node(id),
          division_code varchar(6) NOT NULL,
          township_code varchar(12),
          village_code varchar(12),
          name text NOT NULL,
          number integer,
          suffix text,
          aliases text[] NOT NULL DEFAULT '{}',
          full_name text NOT NULL,
          point geometry(Point, 4490),
          object_code varchar(32),
          status text NOT NULL DEFAULT 'active',
          created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX addr_node_parent_idx ON addr_node (parent_id);
        CREATE INDEX addr_node_level_town_idx ON addr_node (level, township_code);
        CREATE INDEX addr_node_name_idx ON addr_node (name);
        CREATE INDEX addr_node_object_idx ON addr_node (object_code);
        CREATE INDEX addr_node_point_idx ON addr_node USING gist (point);
        CREATE INDEX addr_node_full_trgm_idx ON addr_node USING gin (full_name gin_trgm_ops)
          WHERE level IN ('road', 'compound', 'village_group', 'door');
        CREATE TABLE house (
          id bigserial PRIMARY KEY,
          room_id bigint NOT NULL UNIQUE REFERENCES addr_node(id),
          house_use text NOT NULL,
          area numeric(10, 2),
          property_type text,
          generated boolean NOT NULL DEFAULT false
        );
        CREATE TABLE person (
          id bigserial PRIMARY KEY,
          room_id bigint REFERENCES addr_node(id),
          name text NOT NULL,
          id_number text,
          phone text,
          relation text,
          generated boolean NOT NULL DEFAULT false,
          created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX person_room_idx ON person (room_id);
        CREATE TABLE organization (
          id bigserial PRIMARY KEY,
          door_id bigint REFERENCES addr_node(id),
          name text NOT NULL,
          credit_code varchar(18),
          category text,
          generated boolean NOT NULL DEFAULT false,
          created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX organization_door_idx ON organization (door_id);
        CREATE INDEX organization_credit_idx ON organization (credit_code);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS organization, person, house, addr_node")
