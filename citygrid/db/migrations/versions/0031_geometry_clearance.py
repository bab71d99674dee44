"""Each object's minimum clearance and Web-Mercator geometry, so most of a tile's features skip ST_AsMVTGeom's
repair pass and the per-tile reprojection

Revision ID: 0031
Revises: 0029
Create Date: 2026-12-03 13:50:00

ST_AsMVTGeom runs every polygon through wagyu (clip and make valid) even when the polygon lies wholly inside the
tile; on a z14 tile of buildings that is about half of PostgreSQL's time. A feature inside the tile needs only the
affine map to tile units and the snap to the integer grid, and that snap cannot break it when no vertex moves
close enough to another part: each vertex moves at most √2/2 unit, so a minimum clearance (ST_MinimumClearance:
the shortest distance a vertex could move to make the geometry invalid) above 1.5 units keeps rings valid and
lines and rings from collapsing. The clearance does not depend on the tile, so it is kept once per object, as a
stored generated column like `bgc`, in degrees (Infinity for a single point); `citygrid/layers/sources.py` turns
it into tile units at render time.

With that pass gone, reprojecting every feature to EPSG:3857 per tile is the next largest cost (about 1.6 µs a
building, a quarter of the rest), so the 3857 geometry is stored too, by the same mechanism. Measured on buildings
of the demo at scale 0.3, database time per feature: z14 7.1 µs (ST_AsMVTGeom) → 5.2 (snap only) → 4.0 (and the
stored geometry); z16 11.8 → 9.8 → 9.4 (fixed costs dominate a 40-feature tile). A stored 3857 column alone was
tried before this and saved only 7 %: the repair pass hid it.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0031'
down_revision: str | None = '0029'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE city_object ADD COLUMN geom_clearance double precision "
               "GENERATED ALWAYS AS (ST_MinimumClearance(geom)) STORED, "
               "ADD COLUMN geom_3857 geometry(Geometry, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED")


def downgrade() -> None:
    op.execute("ALTER TABLE city_object DROP COLUMN geom_clearance, DROP COLUMN geom_3857")
