"""township and village outlines get their own spatial index

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 06:45:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Placing an object in its township and village probes the outlines at levels 4-5; through the index of
    # every outline each probe also met the county, city, province and their neighbours (13 candidates for
    # one point in 大冶). Write-time township + village assignment: 445 -> 226 µs per object.
    op.execute("CREATE INDEX division_local_geom_idx ON division USING gist (geom) "
               "WHERE level >= 4 AND geom IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS division_local_geom_idx")
