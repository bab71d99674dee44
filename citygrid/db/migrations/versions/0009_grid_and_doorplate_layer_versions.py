"""grid and door-plate layer versions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 05:50:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Grid systems and door plates are OGC collections too (grids-<system>, doorplates); their cached pages
    # are exact only if every write bumps the layer's version, as city_object and division writes do (0002).
    op.execute(
        """
        CREATE FUNCTION bump_grid_layers_new() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO layer_version (layer, version)
            SELECT 'grids-' || system, 1 FROM new_rows GROUP BY system
          ON CONFLICT (layer) DO UPDATE SET version = layer_version.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        CREATE FUNCTION bump_grid_layers_old() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO layer_version (layer, version)
            SELECT 'grids-' || system, 1 FROM old_rows GROUP BY system
          ON CONFLICT (layer) DO UPDATE SET version = layer_version.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        CREATE TRIGGER grid_layer_ins AFTER INSERT ON grid
          REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_grid_layers_new();
        CREATE FUNCTION bump_grid_layers_upd() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO layer_version (layer, version)
            SELECT 'grids-' || system, 1 FROM (SELECT system FROM new_rows UNION SELECT system FROM old_rows) s
          ON CONFLICT (layer) DO UPDATE SET version = layer_version.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        CREATE TRIGGER grid_layer_upd AFTER UPDATE ON grid REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
          FOR EACH STATEMENT EXECUTE FUNCTION bump_grid_layers_upd();
        CREATE TRIGGER grid_layer_del AFTER DELETE ON grid
          REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_grid_layers_old();
        CREATE FUNCTION bump_doorplate_layer() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO layer_version (layer, version) VALUES ('doorplates', 1)
          ON CONFLICT (layer) DO UPDATE SET version = layer_version.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        CREATE TRIGGER addr_node_layer AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON addr_node
          FOR EACH STATEMENT EXECUTE FUNCTION bump_doorplate_layer();
        CREATE FUNCTION bump_all_grid_layers() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE layer_version SET version = version + 1, changed_at = now() WHERE layer LIKE 'grids-%';
          RETURN NULL;
        END $$;
        CREATE TRIGGER grid_layer_truncate AFTER TRUNCATE ON grid
          FOR EACH STATEMENT EXECUTE FUNCTION bump_all_grid_layers();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS grid_layer_ins ON grid;
        DROP TRIGGER IF EXISTS grid_layer_upd ON grid;
        DROP TRIGGER IF EXISTS grid_layer_del ON grid;
        DROP TRIGGER IF EXISTS grid_layer_truncate ON grid;
        DROP TRIGGER IF EXISTS addr_node_layer ON addr_node;
        DROP FUNCTION IF EXISTS bump_grid_layers_new(), bump_grid_layers_old(), bump_grid_layers_upd(), bump_doorplate_layer(),
          bump_all_grid_layers();
        """
    )
