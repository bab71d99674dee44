"""survey intake: submissions kept raw before processing, their rows with errors, attachments (ODK photos)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 17:00:00

Numbered 0019 because 0018 (and 0020) belong to other branches; whichever lands first, the other's
`down_revision` is set to it when merging (the tables here depend on nothing 0018 adds).

A submission's bytes are stored in the same row that announces it (`raw`), committed before a single cell is
read, so nothing a cadre sent is lost when processing fails; processing replaces the submission's rows
(idempotent). Row-level security keeps an area-scoped principal (a cadre's village, a reviewer's township) to
the submissions of its area, and the rows and attachments to those submissions.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL, AREA = "citygrid_all", "citygrid_area"

TABLES = """
CREATE TABLE submission (
  id uuid PRIMARY KEY,
  class_code varchar(6) NOT NULL REFERENCES object_class (code),
  village_code varchar(12) NOT NULL,
  township_code varchar(12) NOT NULL,
  submitter text NOT NULL,
  source text NOT NULL,
  filename text,
  content_type text,
  raw bytea NOT NULL,
  sha256 bytea NOT NULL,
  crs text,
  status text NOT NULL DEFAULT 'received',
  n_rows integer NOT NULL DEFAULT 0,
  n_invalid integer NOT NULL DEFAULT 0,
  errors jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz,
  CONSTRAINT submission_status_check CHECK (status IN ('received', 'validated', 'invalid', 'reviewed')),
  CONSTRAINT submission_source_check CHECK (source IN ('xlsx', 'csv', 'json', 'odk'))
);
CREATE INDEX submission_village_idx ON submission (village_code, created_at);
CREATE INDEX submission_township_idx ON submission (township_code, status);
CREATE INDEX submission_submitter_idx ON submission (submitter);

CREATE TABLE submission_row (
  submission_id uuid NOT NULL REFERENCES submission (id) ON DELETE CASCADE,
  row integer NOT NULL,
  cells jsonb NOT NULL,
  name text,
  attrs jsonb NOT NULL DEFAULT '{}',
  geom geometry(Geometry, 4490),
  errors jsonb NOT NULL DEFAULT '[]',
  duplicates jsonb NOT NULL DEFAULT '[]',
  status text NOT NULL,
  reason text,
  object_code varchar(21),
  reviewed_by text,
  reviewed_at timestamptz,
  PRIMARY KEY (submission_id, row),
  CONSTRAINT submission_row_status_check CHECK (status IN ('invalid', 'valid', 'approved', 'rejected'))
);
CREATE INDEX submission_row_object_idx ON submission_row (object_code) WHERE object_code IS NOT NULL;

CREATE TABLE submission_attachment (
  submission_id uuid NOT NULL REFERENCES submission (id) ON DELETE CASCADE,
  name text NOT NULL,
  content_type text,
  data bytea NOT NULL,
  PRIMARY KEY (submission_id, name)
);
"""

POLICIES = f"""
ALTER TABLE submission ENABLE ROW LEVEL SECURITY;
ALTER TABLE submission_row ENABLE ROW LEVEL SECURITY;
ALTER TABLE submission_attachment ENABLE ROW LEVEL SECURITY;
CREATE POLICY submission_all ON submission FOR ALL TO {ALL} USING (true) WITH CHECK (true);
CREATE POLICY submission_area ON submission FOR ALL TO {AREA}
  USING (village_code ^@ ANY ((SELECT citygrid_areas())::text[]))
  WITH CHECK (village_code ^@ ANY ((SELECT citygrid_areas())::text[]));
-- rows and attachments follow their submission: the subquery is itself under submission's policies
CREATE POLICY submission_row_all ON submission_row FOR ALL TO {ALL} USING (true) WITH CHECK (true);
CREATE POLICY submission_row_area ON submission_row FOR ALL TO {AREA}
  USING (submission_id IN (SELECT id FROM submission)) WITH CHECK (submission_id IN (SELECT id FROM submission));
CREATE POLICY submission_attachment_all ON submission_attachment FOR ALL TO {ALL} USING (true) WITH CHECK (true);
CREATE POLICY submission_attachment_area ON submission_attachment FOR ALL TO {AREA}
  USING (submission_id IN (SELECT id FROM submission)) WITH CHECK (submission_id IN (SELECT id FROM submission));
GRANT SELECT, INSERT, UPDATE ON submission TO {ALL}, {AREA};
GRANT SELECT, INSERT, UPDATE, DELETE ON submission_row TO {ALL}, {AREA};
GRANT SELECT, INSERT ON submission_attachment TO {ALL}, {AREA};
"""


def upgrade() -> None:
    op.execute(TABLES)
    op.execute(POLICIES)


def downgrade() -> None:
    op.execute("DROP TABLE submission_attachment, submission_row, submission")
