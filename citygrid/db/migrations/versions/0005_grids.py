"""grids

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 03:23:17.809792
"""
from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Grids as first-class polygons: unit grids (GB/T 30428.1), governance grids, and any department's own
    # system imported beside them (多网合一), each cell mapped onto the base grid with overlap ratios.
    op.execute(
        """
        CREATE TABLE grid (
          code varchar(24) NOT NULL,
          system text NOT NULL,
          kind text NOT NULL CHECK (kind IN ('unit', 'governance', 'thematic')),
          division_code varchar(12),
          township_code varchar(12),
          name text,
          households integer,
          attrs jsonb NOT NULL DEFAULT '{}',
          geom geometry(MultiPolygon, 4490) NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (system, code)
        );
        CREATE INDEX grid_geom_idx ON grid USING gist (geom);
        CREATE INDEX grid_division_idx ON grid (division_code);
        CREATE TABLE grid_membership (
          system text NOT NULL,
          grid_code varchar(24) NOT NULL,
          base_system text NOT NULL,
          base_code varchar(24) NOT NULL,
          overlap_ratio double precision NOT NULL,
          PRIMARY KEY (system, grid_code, base_system, base_code)
        );
        ALTER TABLE city_object ADD COLUMN unit_grid varchar(24), ADD COLUMN gov_grid varchar(24);
        CREATE INDEX city_object_unit_grid_idx ON city_object (unit_grid);
        CREATE INDEX city_object_gov_grid_idx ON city_object (gov_grid);
        ALTER TABLE addr_node ADD COLUMN unit_grid varchar(24), ADD COLUMN gov_grid varchar(24);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE addr_node DROP COLUMN unit_grid, DROP COLUMN gov_grid;
        ALTER TABLE city_object DROP COLUMN unit_grid, DROP COLUMN gov_grid;
        DROP TABLE grid_membership;
        DROP TABLE grid;
        """
    )
