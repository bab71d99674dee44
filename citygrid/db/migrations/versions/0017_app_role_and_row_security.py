"""the application role (not the owner), its grants, and row-level security by division scope

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 10:00:00

`citygrid/db/roles.py` explains the roles and is the picture this migration draws; `tests/test_security_rls.py`
compares the two. Roles belong to the cluster, not the database: they are created when missing and kept on
downgrade (other databases of the cluster may use them).
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOGIN, ALL, AREA = "citygrid_app", "citygrid_all", "citygrid_area"
WORKING = f"{ALL}, {AREA}"

# What a superuser runs once when the migrating role may not create roles (a managed database, say).
BY_HAND = (f"CREATE ROLE {ALL} NOLOGIN; CREATE ROLE {AREA} NOLOGIN; "
           f"CREATE ROLE {LOGIN} LOGIN NOINHERIT PASSWORD <password>; GRANT {ALL}, {AREA} TO {LOGIN};")

ROLES = f"""
DO $$
DECLARE r text; missing boolean := false;
BEGIN
  FOREACH r IN ARRAY ARRAY['{ALL}', '{AREA}', '{LOGIN}'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', r, CASE WHEN r = '{LOGIN}' THEN 'LOGIN NOINHERIT' ELSE 'NOLOGIN' END);
      EXCEPTION
        WHEN duplicate_object THEN NULL;  -- another database of the cluster migrated at the same moment
        WHEN insufficient_privilege THEN missing := true;
      END;
    END IF;
  END LOOP;
  IF NOT missing AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{LOGIN}' AND (rolinherit OR rolsuper
      OR rolbypassrls OR rolcreaterole OR rolcreatedb)) THEN
    BEGIN
      EXECUTE 'ALTER ROLE {LOGIN} NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB';
    EXCEPTION WHEN insufficient_privilege THEN missing := true;
    END;
  END IF;
  FOREACH r IN ARRAY ARRAY['{ALL}', '{AREA}'] LOOP
    EXIT WHEN missing;
    IF NOT pg_has_role('{LOGIN}', r, 'MEMBER') THEN
      BEGIN
        EXECUTE format('GRANT %I TO {LOGIN}', r);
      EXCEPTION WHEN insufficient_privilege THEN missing := true;
      END;
    END IF;
  END LOOP;
  IF missing THEN
    RAISE EXCEPTION 'citygrid: the database user % may not create roles, and the application roles are missing',
      current_user
      USING HINT = 'As a superuser, run once: {BY_HAND} Then run `citygrid migrate` again.';
  END IF;
END $$;
"""

# The scope of the current transaction, from the settings `citygrid.engine.scoped` sets. Unset (NULL, or ''
# once a transaction that set it has ended) means no area at all.
HELPERS = """
CREATE FUNCTION citygrid_areas() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT string_to_array(nullif(current_setting('citygrid.divisions', true), ''), ',')
$$;
CREATE FUNCTION citygrid_personal() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(current_setting('citygrid.personal', true), '') = 'on'
$$;
-- classes whose objects an area-scoped caller sees only in its area; NULL (nothing visible) without a scope
CREATE FUNCTION citygrid_hidden_classes() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN coalesce(current_setting('citygrid.divisions', true), '') <> ''
              THEN ARRAY(SELECT code::text FROM object_class WHERE NOT public) END
$$;
-- whether an address node (a room, a door) lies in the caller's area
CREATE FUNCTION citygrid_node_in_area(node bigint) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT EXISTS (SELECT 1 FROM addr_node a WHERE a.id = node
                 AND coalesce(a.village_code, a.township_code, a.division_code) ^@ ANY (citygrid_areas()))
$$;
"""

OBJECT_AREA = ("coalesce(village_code, township_code, division_code) ^@ ANY ((SELECT citygrid_areas())::text[])")
OBJECT_VISIBLE = f"({OBJECT_AREA} OR NOT (class_code = ANY ((SELECT citygrid_hidden_classes())::text[])))"
PERSONAL = "(SELECT citygrid_personal())"

POLICIES = f"""
ALTER TABLE city_object ENABLE ROW LEVEL SECURITY;
ALTER TABLE addr_node ENABLE ROW LEVEL SECURITY;
ALTER TABLE house ENABLE ROW LEVEL SECURITY;
ALTER TABLE person ENABLE ROW LEVEL SECURITY;
ALTER TABLE organization ENABLE ROW LEVEL SECURITY;

CREATE POLICY city_object_all ON city_object FOR ALL TO {ALL} USING (true) WITH CHECK (true);
CREATE POLICY city_object_area_read ON city_object FOR SELECT TO {AREA} USING {OBJECT_VISIBLE};
CREATE POLICY city_object_area_insert ON city_object FOR INSERT TO {AREA} WITH CHECK ({OBJECT_AREA});
-- what it may read it may lock and try to update (the application answers 403 outside the area); the new row
-- must lie in the area, so an update the application forgot to refuse fails here
CREATE POLICY city_object_area_update ON city_object FOR UPDATE TO {AREA} USING {OBJECT_VISIBLE}
  WITH CHECK ({OBJECT_AREA});

CREATE POLICY addr_node_read ON addr_node FOR SELECT TO {ALL}, {AREA} USING (true);

CREATE POLICY organization_read ON organization FOR SELECT TO {ALL}, {AREA} USING (true);
CREATE POLICY organization_all_insert ON organization FOR INSERT TO {ALL} WITH CHECK (true);
CREATE POLICY organization_area_insert ON organization FOR INSERT TO {AREA}
  WITH CHECK (citygrid_node_in_area(door_id));

-- persons and houses: nothing without the personal flag (the public never has it); an area only in its rooms
CREATE POLICY person_all ON person FOR ALL TO {ALL} USING ({PERSONAL}) WITH CHECK ({PERSONAL});
CREATE POLICY person_area ON person FOR ALL TO {AREA} USING ({PERSONAL} AND citygrid_node_in_area(room_id))
  WITH CHECK ({PERSONAL} AND citygrid_node_in_area(room_id));
CREATE POLICY house_all ON house FOR SELECT TO {ALL} USING ({PERSONAL});
CREATE POLICY house_area ON house FOR SELECT TO {AREA} USING ({PERSONAL} AND citygrid_node_in_area(room_id));
"""

READ_ONLY = ("division, division_code, data_source, department, object_class, layer_version, agg_h3, agg_grid, "
             "house, addr_node, audit_head")

GRANTS = f"""
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {LOGIN}, {WORKING};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {LOGIN}, {WORKING};
GRANT USAGE ON SCHEMA public TO {WORKING};
GRANT SELECT ON {READ_ONLY} TO {WORKING};
GRANT SELECT, INSERT, UPDATE ON code_counter, city_object, principal, api_key, job TO {WORKING};
GRANT SELECT, INSERT ON issued_code, city_object_history, lineage, change_log, audit_log, principal_role, person,
  organization TO {WORKING};
GRANT SELECT, INSERT, DELETE ON grid_membership TO {WORKING};
GRANT SELECT, INSERT, UPDATE, DELETE ON grid TO {WORKING};
GRANT USAGE ON SEQUENCE audit_log_id_seq, change_log_seq_seq, principal_role_id_seq, person_id_seq,
  organization_id_seq TO {WORKING};
"""

# PostgreSQL evaluates a policy before any condition that is not LEAKPROOF, so under the area role's policies a bbox
# (`&&`) could not use its GiST index. These two compare the bounding boxes stored in their arguments and have no
# side effects; the only error they raise is a mixed-SRID one, and every geometry column here is constrained to
# SRID 4490. Marking them needs a superuser (the private cluster's owner is one); elsewhere area-scoped bbox
# queries still work, by scanning, and the migration says so. A PostGIS upgrade re-creates the functions: run
# `citygrid migrate` after one (this statement is repeated by citygrid/db/migrate.py).
LEAKPROOF = """
DO $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF;
    ALTER FUNCTION geography_overlaps(geography, geography) LEAKPROOF;
  ELSIF NOT (SELECT bool_and(proleakproof) FROM pg_proc WHERE proname IN ('geometry_overlaps', 'geography_overlaps'))
  THEN
    RAISE WARNING 'citygrid: % is not a superuser, so PostGIS''s && stays NOT LEAKPROOF: bbox queries of '
      'area-scoped principals will scan instead of using the spatial index', current_user
      USING HINT = 'As a superuser: ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF; '
                   'ALTER FUNCTION geography_overlaps(geography, geography) LEAKPROOF;';
  END IF;
END $$;
"""

# Trigger functions that write tables the application may only read run as their owner.
DEFINERS = ("bump_object_layers", "bump_object_layers_old", "bump_division_layer", "bump_grid_layers_new",
            "bump_grid_layers_old", "bump_grid_layers_upd", "bump_doorplate_layer", "bump_all_grid_layers",
            "agg_counts_ins", "agg_counts_del", "agg_counts_upd")


def upgrade() -> None:
    op.execute(ROLES)
    # the classes kept out of public layers (catalog `public: false`), synced at start (citygrid/db/sync.py)
    op.execute("ALTER TABLE object_class ADD COLUMN public boolean NOT NULL DEFAULT true; "
               "UPDATE object_class SET public = coalesce((attribute_schema->>'public')::boolean, true);")
    op.execute(HELPERS)
    op.execute(POLICIES)
    op.execute(GRANTS)
    op.execute(LEAKPROOF)
    for f in DEFINERS:
        op.execute(f"ALTER FUNCTION {f}() SECURITY DEFINER SET search_path = pg_catalog, public")


def downgrade() -> None:
    for f in DEFINERS:
        op.execute(f"ALTER FUNCTION {f}() SECURITY INVOKER RESET search_path")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {LOGIN}, {WORKING}; "
               f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {LOGIN}, {WORKING}; "
               f"REVOKE USAGE ON SCHEMA public FROM {WORKING};")
    for table in ("city_object", "addr_node", "house", "person", "organization"):
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        for (name,) in op.get_bind().exec_driver_sql(
                f"SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = '{table}'"):
            op.execute(f"DROP POLICY {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS citygrid_node_in_area(bigint), citygrid_hidden_classes(), "
               "citygrid_personal(), citygrid_areas()")
    op.execute("ALTER TABLE object_class DROP COLUMN public")
