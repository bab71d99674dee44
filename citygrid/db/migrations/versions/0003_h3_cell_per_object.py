"""h3 cell per object

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 02:53:48.278486
"""
from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # H3 cell (resolution 12, as a bigint) of each object's representative point, computed at write time;
    # coarser cells are bit operations on it, so aggregation to any resolution is a GROUP BY.
    op.add_column("city_object", sa.Column("h3", sa.BigInteger(), nullable=True))
    op.create_index("city_object_h3_idx", "city_object", ["h3"])


def downgrade() -> None:
    op.drop_index("city_object_h3_idx", table_name="city_object")
    op.drop_column("city_object", "h3")
