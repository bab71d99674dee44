"""Beidou grid location code (北斗网格位置码, GB/T 39409-2020) per object, level 10, beside H3

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 07:00:00

`citygrid_bgc(lon, lat, level)` encodes a point exactly as `citygrid/grid/beidou.py` does (integers in 1/2048″
after float8 → numeric, which is what the Python side imitates), NULL outside ±88° latitude (the polar caps have
their own scheme). `city_object.bgc` is a stored generated column over the object's point on surface (the point
its H3 cell is taken at), so every write path — single, bulk, moves, SQL repairs — keeps it without code of its
own; aggregation to level N is `left(bgc, n)`.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION citygrid_bgc(lon double precision, lat double precision, level integer DEFAULT 10)
RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ws CONSTANT bigint[] := ARRAY[44236800, 3686400, 1843200, 122880, 8192, 4096, 512, 64, 8, 1];
  hs CONSTANT bigint[] := ARRAY[29491200, 3686400, 1228800, 122880, 8192, 4096, 512, 64, 8, 1];
  hex CONSTANT text := '0123456789ABCDEF';
  u bigint; v bigint; x bigint; y bigint; i bigint; j bigint; zone bigint; code text;
BEGIN
  IF level < 1 OR level > 10 OR lon < -180 OR lon >= 180 OR lat <= -88 OR lat >= 88 THEN
    RETURN NULL;
  END IF;
  u := least(floor(abs(lon)::numeric * 7372800), 180 * 7372800 - 1);  -- 180°W itself: the far edge of zone 01
  v := floor(abs(lat)::numeric * 7372800);
  zone := CASE WHEN lon >= 0 THEN u / ws[1] + 31 ELSE 30 - u / ws[1] END;
  code := CASE WHEN lat >= 0 THEN 'N' ELSE 'S' END || lpad(zone::text, 2, '0') || chr(65 + (v / hs[1])::integer);
  x := u % ws[1];
  y := v % hs[1];
  FOR lv IN 2..level LOOP
    i := x / ws[lv];
    j := y / hs[lv];
    x := x - i * ws[lv];
    y := y - j * hs[lv];
    IF lv = 3 OR lv = 6 THEN
      code := code || (j * 2 + i)::text;
    ELSE
      code := code || substr(hex, i::integer + 1, 1) || substr(hex, j::integer + 1, 1);
    END IF;
  END LOOP;
  RETURN code;
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute("ALTER TABLE city_object ADD COLUMN bgc text GENERATED ALWAYS AS "
               "(citygrid_bgc(ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), 10)) STORED")


def downgrade() -> None:
    op.execute("ALTER TABLE city_object DROP COLUMN bgc")
    op.execute("DROP FUNCTION citygrid_bgc(double precision, double precision, integer)")
