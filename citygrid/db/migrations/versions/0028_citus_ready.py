"""Citus-ready: every large table carries its county and keys on it (issue 14, part 7)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03 13:30:00

A province shards by county with Citus (deploy/citus/): a distributed table's distribution column must be in
every primary key and unique constraint, and a foreign key between distributed tables must include it on both
sides. The distribution column of each large table (`citygrid.db.citus.DISTRIBUTED`):

- `issued_code`, `code_counter`, `city_object`, `city_object_history`, `addr_node`: their existing
  `division_code` (the county: the first 6 digits of their codes, now checked);
- `lineage`, `link`, `change_log`, `house`, `person`, `organization`: a new `county`, backfilled, set by the
  writers; for `link` a BEFORE INSERT trigger `WHEN (NEW.county IS NULL)` fills it from the code for other
  writers (the condition is evaluated without calling the function: a writer that sets it pays nothing per row).

Keys put the county last, so every lookup by code, uid or id keeps its index. Uniqueness is unchanged: the
county is a function of the code (checked), and ids and uids come from sequences and random uuids. Two rules do
change and are said so: a link's record is unique per (system, record_id) *and county* (Citus cannot check a
key that spans shards), and `lineage` keeps a foreign key to the child only (the parent of a split or merge may
lie in another county, hence on another shard); `lineage.parent_county` says where the parent is.

Joins between large tables also match the county (the change feed's trigger, the link policy), so Citus can
run them on one shard; `tests/test_citus_schema.py` checks these rules.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0028'
down_revision: str | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL, AREA = "citygrid_all", "citygrid_area"
PLACE = "coalesce(o.village_code, o.township_code, o.division_code)"
OBJECT_AREA = "coalesce(o.village_code, o.township_code, o.division_code) ^@ ANY ((SELECT citygrid_areas())::text[])"

DROP_FKS = """
ALTER TABLE city_object_history DROP CONSTRAINT city_object_history_uid_fkey;
ALTER TABLE lineage DROP CONSTRAINT lineage_child_uid_fkey, DROP CONSTRAINT lineage_parent_uid_fkey;
ALTER TABLE link DROP CONSTRAINT link_code_fkey;
ALTER TABLE city_object DROP CONSTRAINT city_object_code_fkey;
ALTER TABLE addr_node DROP CONSTRAINT addr_node_parent_id_fkey;
ALTER TABLE house DROP CONSTRAINT house_room_id_fkey;
ALTER TABLE person DROP CONSTRAINT person_room_id_fkey;
ALTER TABLE organization DROP CONSTRAINT organization_door_id_fkey;
"""

COLUMNS = """
ALTER TABLE lineage ADD COLUMN county varchar(6), ADD COLUMN parent_county varchar(6);
UPDATE lineage l SET county = c.division_code, parent_county = p.division_code
  FROM city_object c, city_object p WHERE c.uid = l.child_uid AND p.uid = l.parent_uid;
ALTER TABLE link ADD COLUMN county varchar(6);
UPDATE link SET county = left(code, 6);
ALTER TABLE change_log ADD COLUMN county varchar(6);
UPDATE change_log SET county = left(coalesce(place, key), 6);
ALTER TABLE house ADD COLUMN county varchar(6);
UPDATE house h SET county = a.division_code FROM addr_node a WHERE a.id = h.room_id;
ALTER TABLE person ADD COLUMN county varchar(6);
UPDATE person p SET county = a.division_code FROM addr_node a WHERE a.id = p.room_id;
ALTER TABLE organization ADD COLUMN county varchar(6);
UPDATE organization o SET county = a.division_code FROM addr_node a WHERE a.id = o.door_id;
-- a person without a room or an organization without a door plate (both columns may be NULL) has no county of its
-- own: the database's one county when it holds one, else the migration stops and says which rows need one
UPDATE person SET county = (SELECT CASE WHEN count(DISTINCT division_code) = 1 THEN min(division_code) END
                            FROM addr_node) WHERE county IS NULL;
UPDATE organization SET county = (SELECT CASE WHEN count(DISTINCT division_code) = 1 THEN min(division_code) END
                                  FROM addr_node) WHERE county IS NULL;
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM person WHERE county IS NULL) OR EXISTS (SELECT 1 FROM organization WHERE county IS NULL)
  THEN RAISE EXCEPTION 'persons or organizations without a room or door plate in a database of several counties: '
                       'give each its room or door plate (or delete it), then migrate again';
  END IF;
END $$;
ALTER TABLE lineage ALTER COLUMN county SET NOT NULL, ALTER COLUMN parent_county SET NOT NULL;
ALTER TABLE link ALTER COLUMN county SET NOT NULL;
ALTER TABLE change_log ALTER COLUMN county SET NOT NULL;
ALTER TABLE house ALTER COLUMN county SET NOT NULL;
ALTER TABLE person ALTER COLUMN county SET NOT NULL;
ALTER TABLE organization ALTER COLUMN county SET NOT NULL;
"""

KEYS = """
ALTER TABLE issued_code DROP CONSTRAINT issued_code_pkey, ADD PRIMARY KEY (code, division_code),
  ADD CONSTRAINT issued_code_county CHECK (left(code, 6) = division_code);
ALTER TABLE city_object DROP CONSTRAINT city_object_pkey, ADD PRIMARY KEY (uid, division_code),
  DROP CONSTRAINT city_object_code_key, ADD CONSTRAINT city_object_code_key UNIQUE (code, division_code),
  DROP CONSTRAINT city_object_component_code_key,
  ADD CONSTRAINT city_object_component_code_key UNIQUE (component_code, division_code),
  ADD CONSTRAINT city_object_county CHECK (left(code, 6) = division_code);
ALTER TABLE city_object_history DROP CONSTRAINT city_object_history_pkey,
  ADD PRIMARY KEY (uid, version, division_code);
ALTER TABLE lineage DROP CONSTRAINT lineage_pkey, ADD PRIMARY KEY (parent_uid, child_uid, county);
ALTER TABLE link DROP CONSTRAINT link_pkey, ADD PRIMARY KEY (id, county),
  ADD CONSTRAINT link_county CHECK (left(code, 6) = county);
DROP INDEX link_record_idx;
CREATE UNIQUE INDEX link_record_idx ON link (system, record_id, county) WHERE unlinked_at IS NULL;
ALTER TABLE change_log DROP CONSTRAINT change_log_pkey, ADD PRIMARY KEY (seq, county);
ALTER TABLE addr_node DROP CONSTRAINT addr_node_pkey, ADD PRIMARY KEY (id, division_code),
  DROP CONSTRAINT addr_node_code_key, ADD CONSTRAINT addr_node_code_key UNIQUE (code, division_code),
  ADD CONSTRAINT addr_node_county CHECK (left(code, 6) = division_code);
ALTER TABLE house DROP CONSTRAINT house_pkey, ADD PRIMARY KEY (id, county),
  DROP CONSTRAINT house_room_id_key, ADD CONSTRAINT house_room_id_key UNIQUE (room_id, county);
ALTER TABLE person DROP CONSTRAINT person_pkey, ADD PRIMARY KEY (id, county);
ALTER TABLE organization DROP CONSTRAINT organization_pkey, ADD PRIMARY KEY (id, county);

ALTER TABLE city_object ADD CONSTRAINT city_object_code_fkey FOREIGN KEY (code, division_code)
  REFERENCES issued_code (code, division_code);
ALTER TABLE city_object_history ADD CONSTRAINT city_object_history_uid_fkey FOREIGN KEY (uid, division_code)
  REFERENCES city_object (uid, division_code);
ALTER TABLE lineage ADD CONSTRAINT lineage_child_uid_fkey FOREIGN KEY (child_uid, county)
  REFERENCES city_object (uid, division_code);
ALTER TABLE link ADD CONSTRAINT link_code_fkey FOREIGN KEY (code, county)
  REFERENCES city_object (code, division_code) ON DELETE CASCADE;
ALTER TABLE addr_node ADD CONSTRAINT addr_node_parent_id_fkey FOREIGN KEY (parent_id, division_code)
  REFERENCES addr_node (id, division_code);
ALTER TABLE house ADD CONSTRAINT house_room_id_fkey FOREIGN KEY (room_id, county)
  REFERENCES addr_node (id, division_code);
ALTER TABLE person ADD CONSTRAINT person_room_id_fkey FOREIGN KEY (room_id, county)
  REFERENCES addr_node (id, division_code);
ALTER TABLE organization ADD CONSTRAINT organization_door_id_fkey FOREIGN KEY (door_id, county)
  REFERENCES addr_node (id, division_code);
CREATE INDEX lineage_parent_idx ON lineage (parent_uid);
"""

# A safety net for writers of links that leave the county out (ad-hoc SQL, old clients): it is the code's. The
# other new columns have no such net: finding a room's or an object's county is a lookup in another shard's
# table, which is just what a Citus-ready writer must not need; citygrid's writers set them.
FILL = """
CREATE FUNCTION county_from_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.county := left(NEW.code, 6);
  RETURN NEW;
END $$;
CREATE TRIGGER link_county BEFORE INSERT ON link FOR EACH ROW WHEN (NEW.county IS NULL)
  EXECUTE FUNCTION county_from_code();
"""


def _feed(county: bool) -> str:
    """0018's change-feed trigger functions; with `county`, the entry's county is written and the join with
    city_object matches it (a co-located join under Citus)."""
    col = ", county" if county else ""
    obj_join = "o.uid = n.uid AND o.division_code = n.division_code" if county else "o.uid = n.uid"
    link_where = "o.code = NEW.code AND o.division_code = NEW.county" if county else "o.code = NEW.code"
    return f"""
CREATE OR REPLACE FUNCTION change_log_objects() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
BEGIN
  INSERT INTO change_log (entity, key, op, class_code, place, detail{col})
  SELECT 'object', n.code, n.op, o.class_code, {PLACE}, jsonb_build_object('version', n.version)
         {", n.division_code" if county else ""}
  FROM new_rows n JOIN city_object o ON {obj_join} ORDER BY n.code, n.version;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION change_log_links() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.unlinked_at IS NOT NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO change_log (entity, key, op, class_code, place, detail{col})
  SELECT 'link', NEW.code, CASE WHEN NEW.unlinked_at IS NULL THEN 'link' ELSE 'unlink' END, o.class_code, {PLACE},
         jsonb_build_object('link', NEW.id, 'system', NEW.system, 'record_id', NEW.record_id, 'level', NEW.level)
         {", NEW.county" if county else ""}
  FROM city_object o WHERE {link_where};
  RETURN NULL;
END $$;
"""


def _link_policy(county: bool) -> str:
    match = "o.code = link.code AND o.division_code = link.county" if county else "o.code = link.code"
    return f"""
DROP POLICY link_area ON link;
CREATE POLICY link_area ON link FOR ALL TO {AREA}
  USING (EXISTS (SELECT 1 FROM city_object o WHERE {match}))
  WITH CHECK (EXISTS (SELECT 1 FROM city_object o WHERE {match} AND {OBJECT_AREA}));
"""


def upgrade() -> None:
    op.execute(DROP_FKS)
    op.execute(COLUMNS)
    op.execute(KEYS)
    op.execute(FILL)
    op.execute(_feed(True))
    op.execute(_link_policy(True))


def downgrade() -> None:
    op.execute(_link_policy(False))
    op.execute(_feed(False))
    op.execute("""
DROP TRIGGER link_county ON link;
DROP FUNCTION county_from_code();
DROP INDEX lineage_parent_idx;
""" + DROP_FKS.replace(", DROP CONSTRAINT lineage_parent_uid_fkey", "") + """
ALTER TABLE issued_code DROP CONSTRAINT issued_code_pkey, ADD PRIMARY KEY (code),
  DROP CONSTRAINT issued_code_county;
ALTER TABLE city_object DROP CONSTRAINT city_object_pkey, ADD PRIMARY KEY (uid),
  DROP CONSTRAINT city_object_code_key, ADD CONSTRAINT city_object_code_key UNIQUE (code),
  DROP CONSTRAINT city_object_component_code_key,
  ADD CONSTRAINT city_object_component_code_key UNIQUE (component_code),
  DROP CONSTRAINT city_object_county;
ALTER TABLE city_object_history DROP CONSTRAINT city_object_history_pkey, ADD PRIMARY KEY (uid, version);
ALTER TABLE lineage DROP CONSTRAINT lineage_pkey, ADD PRIMARY KEY (parent_uid, child_uid),
  DROP COLUMN county, DROP COLUMN parent_county;
DROP INDEX link_record_idx;
CREATE UNIQUE INDEX link_record_idx ON link (system, record_id) WHERE unlinked_at IS NULL;
ALTER TABLE link DROP CONSTRAINT link_pkey, ADD PRIMARY KEY (id), DROP COLUMN county;
ALTER TABLE change_log DROP CONSTRAINT change_log_pkey, ADD PRIMARY KEY (seq), DROP COLUMN county;
ALTER TABLE addr_node DROP CONSTRAINT addr_node_pkey, ADD PRIMARY KEY (id),
  DROP CONSTRAINT addr_node_code_key, ADD CONSTRAINT addr_node_code_key UNIQUE (code),
  DROP CONSTRAINT addr_node_county;
ALTER TABLE house DROP CONSTRAINT house_pkey, DROP CONSTRAINT house_room_id_key;
ALTER TABLE house ADD PRIMARY KEY (id), DROP COLUMN county, ADD CONSTRAINT house_room_id_key UNIQUE (room_id);
ALTER TABLE person DROP CONSTRAINT person_pkey, ADD PRIMARY KEY (id), DROP COLUMN county;
ALTER TABLE organization DROP CONSTRAINT organization_pkey, ADD PRIMARY KEY (id), DROP COLUMN county;
ALTER TABLE city_object ADD CONSTRAINT city_object_code_fkey FOREIGN KEY (code) REFERENCES issued_code (code);
ALTER TABLE city_object_history ADD CONSTRAINT city_object_history_uid_fkey FOREIGN KEY (uid)
  REFERENCES city_object (uid);
ALTER TABLE lineage ADD CONSTRAINT lineage_child_uid_fkey FOREIGN KEY (child_uid) REFERENCES city_object (uid),
  ADD CONSTRAINT lineage_parent_uid_fkey FOREIGN KEY (parent_uid) REFERENCES city_object (uid);
ALTER TABLE link ADD CONSTRAINT link_code_fkey FOREIGN KEY (code) REFERENCES city_object (code) ON DELETE CASCADE;
ALTER TABLE addr_node ADD CONSTRAINT addr_node_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES addr_node (id);
ALTER TABLE house ADD CONSTRAINT house_room_id_fkey FOREIGN KEY (room_id) REFERENCES addr_node (id);
ALTER TABLE person ADD CONSTRAINT person_room_id_fkey FOREIGN KEY (room_id) REFERENCES addr_node (id);
ALTER TABLE organization ADD CONSTRAINT organization_door_id_fkey FOREIGN KEY (door_id) REFERENCES addr_node (id);
""")
