"""links by code (一码互联), a change feed whose cursor never skips (transaction ids on change_log, triggers), webhooks

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 09:00:00

`citygrid/sharing/changes.py` explains the cursor (why each entry records its transaction's id and readers only
take entries of transactions older than every running one). Entries are written by triggers only: on
`city_object_history` (every registry write already writes a history row) and on `link`; the application role
loses INSERT on `change_log`, so no code path can add, skip or forge an entry.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL, AREA = "citygrid_all", "citygrid_area"
WORKING = f"{ALL}, {AREA}"
PLACE = "coalesce(o.village_code, o.township_code, o.division_code)"

SCHEMA = f"""
-- rows written before the feed had transaction ids sort first, in their old order
ALTER TABLE change_log ADD COLUMN xid xid8 NOT NULL DEFAULT '0', ADD COLUMN class_code text, ADD COLUMN place text,
  ADD COLUMN detail jsonb;
ALTER TABLE change_log ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
UPDATE change_log c SET class_code = o.class_code, place = {PLACE} FROM city_object o
  WHERE c.entity = 'object' AND o.code = c.key;
CREATE INDEX change_log_cursor_idx ON change_log (xid, seq);

CREATE TABLE link (
  id bigserial PRIMARY KEY,
  code varchar(32) NOT NULL REFERENCES city_object (code) ON DELETE CASCADE,
  system text NOT NULL,
  record_id text NOT NULL,
  title text,
  url text,
  payload jsonb NOT NULL DEFAULT '{{}}',
  level text NOT NULL DEFAULT 'L1',
  valid_from timestamptz,
  valid_to timestamptz,
  department text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  unlinked_by text,
  unlinked_at timestamptz,
  CONSTRAINT link_level CHECK (level IN ('L1', 'L2', 'L3', 'L4')),
  CONSTRAINT link_valid CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from)
);
-- one live link per foreign record: GET /links?system=&record= answers with one code
CREATE UNIQUE INDEX link_record_idx ON link (system, record_id) WHERE unlinked_at IS NULL;
CREATE INDEX link_code_idx ON link (code);

-- webhooks: a principal's follower of the feed that citygrid runs (citygrid/sharing/webhooks.py)
CREATE TABLE webhook (
  id bigserial PRIMARY KEY,
  principal_id uuid NOT NULL REFERENCES principal (id) ON DELETE CASCADE,
  url text NOT NULL,
  secret text NOT NULL,
  filters jsonb NOT NULL DEFAULT '{{}}',
  cursor text NOT NULL,
  active boolean NOT NULL DEFAULT true,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error text,
  delivered bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_due_idx ON webhook (next_attempt_at) WHERE active;
-- batches given up on after the last retry: kept for the owner to fetch
CREATE TABLE webhook_dead (
  id bigserial PRIMARY KEY,
  webhook_id bigint NOT NULL REFERENCES webhook (id) ON DELETE CASCADE,
  since text NOT NULL,
  cursor text NOT NULL,
  entries jsonb NOT NULL,
  attempts integer NOT NULL,
  last_error text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_dead_hook_idx ON webhook_dead (webhook_id, id);
"""

# Owned by the migrating role and SECURITY DEFINER: the application role may not insert into change_log at all.
TRIGGERS = f"""
CREATE FUNCTION change_log_objects() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
BEGIN
  INSERT INTO change_log (entity, key, op, class_code, place, detail)
  SELECT 'object', n.code, n.op, o.class_code, {PLACE}, jsonb_build_object('version', n.version)
  FROM new_rows n JOIN city_object o ON o.uid = n.uid ORDER BY n.code, n.version;
  RETURN NULL;
END $$;
CREATE TRIGGER city_object_history_feed AFTER INSERT ON city_object_history REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION change_log_objects();

CREATE FUNCTION change_log_links() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.unlinked_at IS NOT NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO change_log (entity, key, op, class_code, place, detail)
  SELECT 'link', NEW.code, CASE WHEN NEW.unlinked_at IS NULL THEN 'link' ELSE 'unlink' END, o.class_code, {PLACE},
         jsonb_build_object('link', NEW.id, 'system', NEW.system, 'record_id', NEW.record_id, 'level', NEW.level)
  FROM city_object o WHERE o.code = NEW.code;
  RETURN NULL;
END $$;
CREATE TRIGGER link_feed AFTER INSERT OR UPDATE ON link FOR EACH ROW EXECUTE FUNCTION change_log_links();
"""

OBJECT_AREA = "coalesce(o.village_code, o.township_code, o.division_code) ^@ ANY ((SELECT citygrid_areas())::text[])"
HIDDEN = "(SELECT citygrid_hidden_classes())::text[]"

POLICIES = f"""
ALTER TABLE link ENABLE ROW LEVEL SECURITY;
CREATE POLICY link_all ON link FOR ALL TO {ALL} USING (true) WITH CHECK (true);
-- an area sees the links of the objects it sees (city_object's own policies apply inside), writes only at home
CREATE POLICY link_area ON link FOR ALL TO {AREA}
  USING (EXISTS (SELECT 1 FROM city_object o WHERE o.code = link.code))
  WITH CHECK (EXISTS (SELECT 1 FROM city_object o WHERE o.code = link.code AND {OBJECT_AREA}));

ALTER TABLE change_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY change_log_all ON change_log FOR SELECT TO {ALL} USING (true);
CREATE POLICY change_log_area_read ON change_log FOR SELECT TO {AREA}
  USING (place ^@ ANY ((SELECT citygrid_areas())::text[]) OR NOT (class_code = ANY ({HIDDEN})));
"""

GRANTS = f"""
REVOKE INSERT ON change_log FROM {WORKING};
GRANT SELECT, INSERT, UPDATE ON link TO {WORKING};
GRANT USAGE ON SEQUENCE link_id_seq TO {WORKING};
GRANT SELECT, INSERT, UPDATE ON webhook TO {WORKING};
GRANT SELECT, INSERT ON webhook_dead TO {WORKING};
GRANT USAGE ON SEQUENCE webhook_id_seq, webhook_dead_id_seq TO {WORKING};
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(TRIGGERS)
    op.execute(POLICIES)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute(f"""
        DROP TABLE IF EXISTS webhook_dead, webhook;
        REVOKE ALL ON link FROM {WORKING};
        GRANT INSERT ON change_log TO {WORKING};
        DROP POLICY IF EXISTS change_log_all ON change_log;
        DROP POLICY IF EXISTS change_log_area_read ON change_log;
        ALTER TABLE change_log DISABLE ROW LEVEL SECURITY;
        DROP TRIGGER IF EXISTS city_object_history_feed ON city_object_history;
        DROP TABLE IF EXISTS link;
        DROP FUNCTION IF EXISTS change_log_objects(), change_log_links();
        DROP INDEX IF EXISTS change_log_cursor_idx;
        ALTER TABLE change_log DROP COLUMN xid, DROP COLUMN class_code, DROP COLUMN place, DROP COLUMN detail;
    """)
