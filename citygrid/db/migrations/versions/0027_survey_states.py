"""survey intake: the states of issue 11 (handed in, coded), stable row keys, neighbours across a village boundary

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 10:00:00

Numbered 0027 because 0026 belongs to another branch; whichever lands second gets the other as `down_revision`
when merging (nothing here depends on 0026).

- `submission.status`: received → validated | invalid → **submitted** (the cadre hands it in; only then do
  reviewers decide rows) → **coded** (every row decided, the approved ones registered with their codes) or
  **rejected** (every row rejected). `reviewed` is gone. Existing rows: `reviewed` becomes `coded` when it has an
  approved row, else `rejected`; `validated`, and `invalid` with a decided row, become `submitted` (before this
  migration an upload was in the reviewers' list at once, so they stay there); `submitted_at` is set to their
  processing time.
- `submission_row.row` is the row's stable key (its line in the first file, or the next free number for a row a
  later file adds): a resubmission may carry only the corrected rows, matched by the key column of the file
  the cadre downloaded, or else by name and place. `file_row` is the line in the latest file that gave the row,
  `revision` the send it came with.
- `citygrid_survey_neighbours(class, points, names, metres)` (SQL, SECURITY DEFINER): the registered objects of
  the class near each point that the calling transaction's row-level security hides (a cadre sees its own
  village's objects of non-public classes only), with nothing but their code, class, distance and name
  similarity, so dedupe sees across the village boundary without showing the cadre the object;
  `citygrid_survey_open_neighbours(…, own submission, open states)` the same for valid rows of other villages'
  open submissions (submission id, row key, distance, similarity), and `citygrid_name_similarity` the one
  similarity both use.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0027'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL, AREA = "citygrid_all", "citygrid_area"
STATES = "'received', 'validated', 'invalid', 'submitted', 'rejected', 'coded'"

# Name similarity as 2 × shared characters / total characters (rapidfuzz's ratio when the shared characters come
# in the same order, as they do in names that differ by a word); NULL when either name is missing. Visibility is
# the area role's read policies on city_object (0017) and submission (0019): a scope of '*' (citygrid_all) sees
# everything, so nothing is hidden from it, and no scope at all gets nothing.
NEIGHBOURS = f"""
CREATE FUNCTION citygrid_name_similarity(a text, b text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog AS $$
  SELECT CASE WHEN coalesce(a, '') = '' OR coalesce(b, '') = '' THEN NULL ELSE round((2.0 * (
    SELECT coalesce(sum(least(x.n, y.n)), 0) FROM
      (SELECT c, count(*) AS n FROM regexp_split_to_table(a, '') c GROUP BY c) x JOIN
      (SELECT c, count(*) AS n FROM regexp_split_to_table(b, '') c GROUP BY c) y USING (c))
    / (length(a) + length(b)))::numeric, 2)::double precision END
$$;
CREATE FUNCTION citygrid_survey_neighbours(cls text, points text[], names text[], metres double precision)
RETURNS TABLE (i integer, code text, class_code text, distance_m double precision, name_similarity double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT u.i::integer, o.code::text, o.class_code::text,
         round(ST_Distance(o.geom::geography, g.p::geography)::numeric, 1)::double precision,
         citygrid_name_similarity(u.nm, o.name)
  FROM unnest(points, names) WITH ORDINALITY AS u(h, nm, i)
  CROSS JOIN LATERAL (SELECT ST_GeomFromWKB(decode(u.h, 'hex'), 4490) AS p) g
  JOIN city_object o ON o.class_code = cls AND o.status = 'active'
   AND o.geom && ST_Expand(g.p, metres / 50000.0) AND ST_DWithin(o.geom::geography, g.p::geography, metres)
  WHERE citygrid_areas() IS NOT NULL AND NOT ('*' = ANY (citygrid_areas()))
    AND NOT (coalesce(o.village_code, o.township_code, o.division_code) ^@ ANY (citygrid_areas())
             OR NOT (o.class_code = ANY (coalesce(citygrid_hidden_classes(), '{{}}'::text[]))))
$$;
REVOKE ALL ON FUNCTION citygrid_survey_neighbours(text, text[], text[], double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION citygrid_survey_neighbours(text, text[], text[], double precision) TO {ALL}, {AREA};
CREATE FUNCTION citygrid_survey_open_neighbours(cls text, points text[], names text[], metres double precision,
                                                own uuid, open text[])
RETURNS TABLE (i integer, submission_id uuid, row_key integer, distance_m double precision,
               name_similarity double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT u.i::integer, t.submission_id, t.row,
         round(ST_Distance(t.geom::geography, g.p::geography)::numeric, 1)::double precision,
         citygrid_name_similarity(u.nm, t.name)
  FROM unnest(points, names) WITH ORDINALITY AS u(h, nm, i)
  CROSS JOIN LATERAL (SELECT ST_GeomFromWKB(decode(u.h, 'hex'), 4490) AS p) g
  JOIN submission_row t ON t.status = 'valid'
   AND t.geom && ST_Expand(g.p, metres / 50000.0) AND ST_DWithin(t.geom::geography, g.p::geography, metres)
  JOIN submission s ON s.id = t.submission_id AND s.class_code = cls AND s.id <> own AND s.status = ANY (open)
  WHERE citygrid_areas() IS NOT NULL AND NOT ('*' = ANY (citygrid_areas()))
    AND NOT (s.village_code ^@ ANY (citygrid_areas()))
$$;
REVOKE ALL ON FUNCTION citygrid_survey_open_neighbours(text, text[], text[], double precision, uuid, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION citygrid_survey_open_neighbours(text, text[], text[], double precision, uuid, text[])
  TO {ALL}, {AREA};
"""


def upgrade() -> None:
    op.execute(f"""
ALTER TABLE submission DROP CONSTRAINT submission_status_check;
ALTER TABLE submission ADD COLUMN submitted_at timestamptz;
UPDATE submission s SET status = CASE WHEN EXISTS (SELECT 1 FROM submission_row r WHERE r.submission_id = s.id
  AND r.status = 'approved') THEN 'coded' ELSE 'rejected' END WHERE s.status = 'reviewed';
UPDATE submission s SET status = 'submitted', submitted_at = coalesce(s.processed_at, s.created_at)
  WHERE s.status = 'validated' OR (s.status = 'invalid' AND EXISTS (SELECT 1 FROM submission_row r
  WHERE r.submission_id = s.id AND r.status IN ('approved', 'rejected')));
UPDATE submission SET submitted_at = coalesce(processed_at, created_at) WHERE status IN ('coded', 'rejected');
ALTER TABLE submission ADD CONSTRAINT submission_status_check CHECK (status IN ({STATES}));
ALTER TABLE submission_row ADD COLUMN file_row integer, ADD COLUMN revision integer NOT NULL DEFAULT 1;
UPDATE submission_row SET file_row = row;
""")
    op.execute(NEIGHBOURS)


def downgrade() -> None:
    op.execute("""
DROP FUNCTION citygrid_survey_open_neighbours(text, text[], text[], double precision, uuid, text[]);
DROP FUNCTION citygrid_survey_neighbours(text, text[], text[], double precision);
DROP FUNCTION citygrid_name_similarity(text, text);
ALTER TABLE submission_row DROP COLUMN file_row, DROP COLUMN revision;
ALTER TABLE submission DROP CONSTRAINT submission_status_check;
UPDATE submission SET status = 'reviewed' WHERE status IN ('coded', 'rejected');
UPDATE submission SET status = CASE WHEN n_invalid > 0 THEN 'invalid' ELSE 'validated' END WHERE status = 'submitted';
ALTER TABLE submission DROP COLUMN submitted_at;
ALTER TABLE submission ADD CONSTRAINT submission_status_check
  CHECK (status IN ('received', 'validated', 'invalid', 'reviewed'));
""")
