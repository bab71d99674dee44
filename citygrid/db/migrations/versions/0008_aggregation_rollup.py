"""aggregation rollup

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 04:52:00.390272
"""
from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Counts of active objects per (class, H3 res-9 cell, unit grid, governance grid), kept exact by
    # statement triggers with transition tables: one GROUP BY per write statement, however many rows.
    # Counting 1M objects to H3 res ≤ 9 or to grids then reads tens of thousands of rows, not a million.
    op.execute(
        """
        CREATE TABLE agg_rollup (
          class_code varchar(6) NOT NULL,
          h3_9 bigint NOT NULL,
          unit_grid varchar(24) NOT NULL DEFAULT '',
          gov_grid varchar(24) NOT NULL DEFAULT '',
          n bigint NOT NULL,
          PRIMARY KEY (class_code, h3_9, unit_grid, gov_grid)
        );
        -- transition tables are visible only inside the trigger function itself, so each has its SQL
        CREATE FUNCTION agg_rollup_ins() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO agg_rollup AS a (class_code, h3_9, unit_grid, gov_grid, n) SELECT class_code, (h3 & ~(15::bigint << 52)) | (9::bigint << 52) | ((1::bigint << 18) - 1), coalesce(unit_grid, ''), coalesce(gov_grid, ''),  count(*) FROM new_rows WHERE status = 'active' AND h3 IS NOT NULL GROUP BY 1, 2, 3, 4 ON CONFLICT (class_code, h3_9, unit_grid, gov_grid) DO UPDATE SET n = a.n + EXCLUDED.n; RETURN NULL; END $$;
        CREATE FUNCTION agg_rollup_del() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO agg_rollup AS a (class_code, h3_9, unit_grid, gov_grid, n) SELECT class_code, (h3 & ~(15::bigint << 52)) | (9::bigint << 52) | ((1::bigint << 18) - 1), coalesce(unit_grid, ''), coalesce(gov_grid, ''), - count(*) FROM old_rows WHERE status = 'active' AND h3 IS NOT NULL GROUP BY 1, 2, 3, 4 ON CONFLICT (class_code, h3_9, unit_grid, gov_grid) DO UPDATE SET n = a.n + EXCLUDED.n; DELETE FROM agg_rollup WHERE n = 0; RETURN NULL; END $$;
        CREATE FUNCTION agg_rollup_upd() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO agg_rollup AS a (class_code, h3_9, unit_grid, gov_grid, n) SELECT class_code, (h3 & ~(15::bigint << 52)) | (9::bigint << 52) | ((1::bigint << 18) - 1), coalesce(unit_grid, ''), coalesce(gov_grid, ''), - count(*) FROM old_rows WHERE status = 'active' AND h3 IS NOT NULL GROUP BY 1, 2, 3, 4 ON CONFLICT (class_code, h3_9, unit_grid, gov_grid) DO UPDATE SET n = a.n + EXCLUDED.n; INSERT INTO agg_rollup AS a (class_code, h3_9, unit_grid, gov_grid, n) SELECT class_code, (h3 & ~(15::bigint << 52)) | (9::bigint << 52) | ((1::bigint << 18) - 1), coalesce(unit_grid, ''), coalesce(gov_grid, ''),  count(*) FROM new_rows WHERE status = 'active' AND h3 IS NOT NULL GROUP BY 1, 2, 3, 4 ON CONFLICT (class_code, h3_9, unit_grid, gov_grid) DO UPDATE SET n = a.n + EXCLUDED.n; DELETE FROM agg_rollup WHERE n = 0; RETURN NULL; END $$;
        CREATE TRIGGER city_object_rollup_ins AFTER INSERT ON city_object
          REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg_rollup_ins();
        CREATE TRIGGER city_object_rollup_del AFTER DELETE ON city_object
          REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agg_rollup_del();
        CREATE TRIGGER city_object_rollup_upd AFTER UPDATE ON city_object
          REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg_rollup_upd();
        INSERT INTO agg_rollup (class_code, h3_9, unit_grid, gov_grid, n)
          SELECT class_code, (h3 & ~(15::bigint << 52)) | (9::bigint << 52) | ((1::bigint << 18) - 1),
                 coalesce(unit_grid, ''), coalesce(gov_grid, ''), count(*)
          FROM city_object WHERE status = 'active' AND h3 IS NOT NULL GROUP BY 1, 2, 3, 4;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS city_object_rollup_ins ON city_object;
        DROP TRIGGER IF EXISTS city_object_rollup_del ON city_object;
        DROP TRIGGER IF EXISTS city_object_rollup_upd ON city_object;
        DROP FUNCTION IF EXISTS agg_rollup_ins(), agg_rollup_del(), agg_rollup_upd();
        DROP TABLE IF EXISTS agg_rollup;
        """
    )
