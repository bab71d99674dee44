"""audit log: who, roles, fields, from where, outcome; a hash chain computed in the database; no TRUNCATE

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 09:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The canonical serialisation of a row, hashed with the previous row's hash: a JSON array (jsonb's text form
# is deterministic) of every column but the hashes, the time as integer microseconds since the epoch so the
# session's time zone cannot change it. One SQL function, used by the insert trigger and by `audit verify`.
ROW_HASH = """
CREATE FUNCTION audit_row_hash(a audit_log) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT sha256(a.prev_hash || convert_to(jsonb_build_array(
    a.seq, a.id, (extract(epoch FROM a.at) * 1000000)::bigint, a.principal, a.principal_id, a.roles, a.action,
    a.target, a.fields, a.detail, a.client_addr, a.user_agent, a.outcome, a.error_code)::text, 'UTF8'))
$$;
"""


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE audit_log
          ADD COLUMN seq bigint,
          ADD COLUMN principal_id uuid,
          ADD COLUMN roles text[] NOT NULL DEFAULT '{{}}',
          ADD COLUMN fields text[] NOT NULL DEFAULT '{{}}',
          ADD COLUMN client_addr text,
          ADD COLUMN user_agent text,
          ADD COLUMN outcome text NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'refused', 'failed')),
          ADD COLUMN error_code text,
          ADD COLUMN prev_hash bytea,
          ADD COLUMN hash bytea;
        -- The head of the chain: one row, locked by every insert until its transaction ends, so two writers
        -- can never chain onto the same predecessor; seq is gapless because a rolled-back insert also rolls
        -- back the head.
        CREATE TABLE audit_head (
          one boolean PRIMARY KEY DEFAULT true CHECK (one),
          seq bigint NOT NULL,
          hash bytea NOT NULL
        );
        {ROW_HASH}
        -- Rows written before the chain existed join it in id order (the append-only trigger is off for this).
        ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
        UPDATE audit_log a SET seq = n.seq FROM (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM audit_log) n
          WHERE a.id = n.id;
        DO $$
        DECLARE r audit_log; prev bytea := decode(repeat('00', 32), 'hex');
        BEGIN
          FOR r IN SELECT * FROM audit_log ORDER BY seq LOOP
            r.prev_hash := prev;
            prev := audit_row_hash(r);
            UPDATE audit_log SET prev_hash = r.prev_hash, hash = prev WHERE id = r.id;
          END LOOP;
          INSERT INTO audit_head (seq, hash) VALUES ((SELECT coalesce(max(seq), 0) FROM audit_log), prev);
        END $$;
        ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;
        ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL,
          ALTER COLUMN hash SET NOT NULL;
        CREATE UNIQUE INDEX audit_log_seq_idx ON audit_log (seq);
        CREATE INDEX audit_log_at_idx ON audit_log (at);
        CREATE INDEX audit_log_target_idx ON audit_log (target);

        -- Owned by the migrating role and SECURITY DEFINER: the application role never touches audit_head.
        -- The trigger overwrites seq, at, prev_hash and hash whatever the INSERT said.
        CREATE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
          SET search_path = pg_catalog, public AS $$
        DECLARE h audit_head;
        BEGIN
          SELECT * INTO STRICT h FROM audit_head FOR UPDATE;
          NEW.seq := h.seq + 1;
          NEW.prev_hash := h.hash;
          NEW.at := clock_timestamp();
          NEW.hash := audit_row_hash(NEW);
          UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash;
          RETURN NEW;
        END $$;
        CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
          FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
        REVOKE ALL ON audit_log, audit_head FROM PUBLIC;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS audit_log_chain ON audit_log;
        DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
        DROP FUNCTION IF EXISTS audit_chain();
        DROP FUNCTION IF EXISTS audit_row_hash(audit_log);
        DROP TABLE IF EXISTS audit_head;
        DROP INDEX IF EXISTS audit_log_seq_idx, audit_log_at_idx, audit_log_target_idx;
        ALTER TABLE audit_log DROP COLUMN seq, DROP COLUMN principal_id, DROP COLUMN roles, DROP COLUMN fields,
          DROP COLUMN client_addr, DROP COLUMN user_agent, DROP COLUMN outcome, DROP COLUMN error_code,
          DROP COLUMN prev_hash, DROP COLUMN hash;
        """
    )
