"""city_object.bgc: a plain column kept by a row trigger the bulk path skips by giving it; two indexes less

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 13:40:00

The stored generated column of 0025 ran `citygrid_bgc()` (PL/pgSQL, numeric arithmetic) and two
`ST_PointOnSurface` for every inserted row, which no writer can skip: a large share of bulk registration's time.
Now the column is plain and `city_object_bgc()` fills it in a BEFORE trigger
- on INSERT only when no code is given (`WHEN (NEW.bgc IS NULL)`): the single path and SQL repairs give none
  and get the same value as before; the bulk path gives the code computed over the whole batch by
  `citygrid.grid.beidou.encode_many` (the same integer arithmetic, tests/test_beidou.py and tests/test_bulk.py
  compare them);
- on every UPDATE that changes geom or bgc, always from the geometry, so a move keeps it right and no update
  can set a code that is not the geometry's. Geometries are compared as EWKB (bytea): `geometry = geometry` is
  ambiguous once pg_dump's restore runs with an empty search_path, and a backup with it did not restore.
Existing values stay as they are (DROP EXPRESSION keeps them).

`ix_city_object_class_code` is dropped: `city_object_class_division_idx` (class_code, division_code, code) leads
with the same column, so every lookup by class alone (and the FK check of a class's deletion) uses that one;
the second index only cost every insert and update of class_code an index entry. `city_object_h3_idx` (h3) is
dropped too: no query has a predicate on h3 that a btree on it serves (aggregates and tile thinning take bit
masks of it, `parent_sql`, and read it from `city_object_agg_idx` (class_code, h3) or the heap; `h3 IS NOT NULL`
holds for nearly every row), so it was written on every insert and never read.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0029'
down_revision: str | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP INDEX ix_city_object_class_code")
    op.execute("DROP INDEX city_object_h3_idx")
    op.execute("ALTER TABLE city_object ALTER COLUMN bgc DROP EXPRESSION")
    op.execute("""
CREATE FUNCTION city_object_bgc() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE p geometry := ST_PointOnSurface(NEW.geom);
BEGIN
  NEW.bgc := citygrid_bgc(ST_X(p), ST_Y(p), 10);
  RETURN NEW;
END $$""")
    op.execute("CREATE TRIGGER city_object_bgc_ins BEFORE INSERT ON city_object FOR EACH ROW "
               "WHEN (NEW.bgc IS NULL) EXECUTE FUNCTION city_object_bgc()")
    op.execute("CREATE TRIGGER city_object_bgc_upd BEFORE UPDATE OF geom, bgc ON city_object FOR EACH ROW "
               "WHEN (ST_AsEWKB(NEW.geom) IS DISTINCT FROM ST_AsEWKB(OLD.geom) OR NEW.bgc IS DISTINCT FROM OLD.bgc) "
               "EXECUTE FUNCTION city_object_bgc()")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_city_object_class_code ON city_object (class_code)")
    op.execute("CREATE INDEX city_object_h3_idx ON city_object (h3)")
    op.execute("DROP TRIGGER city_object_bgc_upd ON city_object")
    op.execute("DROP TRIGGER city_object_bgc_ins ON city_object")
    op.execute("DROP FUNCTION city_object_bgc()")
    op.execute("ALTER TABLE city_object DROP COLUMN bgc")
    op.execute("ALTER TABLE city_object ADD COLUMN bgc text GENERATED ALWAYS AS "
               "(citygrid_bgc(ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), 10)) STORED")
