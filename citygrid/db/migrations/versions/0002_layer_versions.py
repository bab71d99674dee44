"""layer versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 02:51:24.567338
"""
from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One version counter per layer, bumped once per statement by triggers with transition tables, so a
    # bulk COPY of 50k objects costs one UPDATE, and tile ETags change exactly when their layer does.
    op.execute(
        """
        CREATE TABLE layer_version (layer text PRIMARY KEY, version bigint NOT NULL DEFAULT 0,
                                    changed_at timestamptz NOT NULL DEFAULT now());
        CREATE FUNCTION bump_object_layers() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO layer_version (layer, version)
            SELECT 'class-' || class_code, 1 FROM (
              SELECT class_code FROM new_rows
            ) t GROUP BY class_code
          ON CONFLICT (layer) DO UPDATE SET version = layer_version.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        CREATE FUNCTION bump_object_layers_old() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO layer_version (layer, version)
            SELECT 'class-' || class_code, 1 FROM old_rows GROUP BY class_code
          ON CONFLICT (layer) DO UPDATE SET version = layer_version.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        CREATE TRIGGER city_object_layer_ins AFTER INSERT ON city_object
          REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_object_layers();
        CREATE TRIGGER city_object_layer_upd AFTER UPDATE ON city_object
          REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_object_layers();
        CREATE TRIGGER city_object_layer_del AFTER DELETE ON city_object
          REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_object_layers_old();
        CREATE FUNCTION bump_division_layer() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO layer_version (layer, version) VALUES ('divisions', 1)
          ON CONFLICT (layer) DO UPDATE SET version = layer_version.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        CREATE TRIGGER division_layer AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON division
          FOR EACH STATEMENT EXECUTE FUNCTION bump_division_layer();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS division_layer ON division;
        DROP TRIGGER IF EXISTS city_object_layer_ins ON city_object;
        DROP TRIGGER IF EXISTS city_object_layer_upd ON city_object;
        DROP TRIGGER IF EXISTS city_object_layer_del ON city_object;
        DROP FUNCTION IF EXISTS bump_object_layers();
        DROP FUNCTION IF EXISTS bump_object_layers_old();
        DROP FUNCTION IF EXISTS bump_division_layer();
        DROP TABLE IF EXISTS layer_version;
        """
    )
