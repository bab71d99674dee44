"""survey intake: GIS sources, an index for duplicates among open submissions, revisions of a submission

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 07:00:00

- `submission.source` admits the GIS files (GeoJSON, GeoPackage, zipped Shapefile) read through pyogrio.
- Each valid row is compared with the valid rows of the class's other open submissions (two cadres surveying the
  same lane); `submission_row.geom` had no spatial index, so that comparison read every open row once per row.
- A cadre sends corrected rows into the same submission (`revision` counts the sends): the file and the rows it
  replaced are kept in `submission_revision`, so the submission's history is never lost. Its rows follow the
  submission's row-level security like `submission_row`.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL, AREA = "citygrid_all", "citygrid_area"


def upgrade() -> None:
    op.execute(f"""
ALTER TABLE submission DROP CONSTRAINT submission_source_check;
ALTER TABLE submission ADD CONSTRAINT submission_source_check
  CHECK (source IN ('xlsx', 'csv', 'json', 'odk', 'geojson', 'gpkg', 'shapefile'));
ALTER TABLE submission ADD COLUMN revision integer NOT NULL DEFAULT 1;
CREATE INDEX submission_row_open_geom_idx ON submission_row USING gist (geom) WHERE status = 'valid';
CREATE TABLE submission_revision (
  submission_id uuid NOT NULL REFERENCES submission (id) ON DELETE CASCADE,
  revision integer NOT NULL,
  submitter text NOT NULL,
  source text NOT NULL,
  filename text,
  raw bytea NOT NULL,
  sha256 bytea NOT NULL,
  crs text,
  status text NOT NULL,
  n_rows integer NOT NULL,
  n_invalid integer NOT NULL,
  errors jsonb NOT NULL DEFAULT '[]',
  rows jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL,
  replaced_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (submission_id, revision)
);
ALTER TABLE submission_revision ENABLE ROW LEVEL SECURITY;
CREATE POLICY submission_revision_all ON submission_revision FOR ALL TO {ALL} USING (true) WITH CHECK (true);
CREATE POLICY submission_revision_area ON submission_revision FOR ALL TO {AREA}
  USING (submission_id IN (SELECT id FROM submission)) WITH CHECK (submission_id IN (SELECT id FROM submission));
GRANT SELECT, INSERT ON submission_revision TO {ALL}, {AREA};
""")


def downgrade() -> None:
    op.execute("""
DROP TABLE submission_revision;
DROP INDEX submission_row_open_geom_idx;
ALTER TABLE submission DROP COLUMN revision;
ALTER TABLE submission DROP CONSTRAINT submission_source_check;
ALTER TABLE submission ADD CONSTRAINT submission_source_check CHECK (source IN ('xlsx', 'csv', 'json', 'odk'));
""")
