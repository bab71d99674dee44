"""class and geometry index

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 04:26:17.384589
"""
from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Map clients always ask "this class in this box": one GiST over (class_code, geom) answers it
    # without intersecting two bitmaps.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute("CREATE INDEX city_object_class_geom_idx ON city_object USING gist (class_code, geom) "
               "WHERE status = 'active'")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS city_object_class_geom_idx")
