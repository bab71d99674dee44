"""audit chain: the head written once per statement, so a bulk write's audit rows cost O(n), not O(n²)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 10:00:00

0016's row trigger updated the one `audit_head` row for every audit row. Within one transaction those updates
leave a chain of row versions that nothing can prune before the commit, and each next row's `SELECT … FOR UPDATE`
walks it: one statement writing the audit rows of 100k bulk-registered objects (one per object, as the single
path writes them) took quadratic time. Now the row trigger still locks the head (writers still line up, the
chain cannot fork) but chains each row onto the newest row the statement has written so far — a row with a
`seq` above the head's, found through `audit_log_seq_idx`, visible to the trigger because it comes from the same
statement — or onto the head for the statement's first row; a statement trigger then moves the head to the
statement's last row, once. A row deleted from the end by someone who could disable the triggers still leaves
the head ahead of the table (the next row chains from the head, the gap stays), so `audit verify` sees what it
saw before. The rows and hashes are exactly what 0016 computed.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
          SET search_path = pg_catalog, public AS $$
        DECLARE h audit_head; last_seq bigint; last_hash bytea;
        BEGIN
          SELECT * INTO STRICT h FROM audit_head FOR UPDATE;
          SELECT a.seq, a.hash INTO last_seq, last_hash FROM audit_log a WHERE a.seq > h.seq
            ORDER BY a.seq DESC LIMIT 1;
          IF last_seq IS NULL THEN
            last_seq := h.seq;
            last_hash := h.hash;
          END IF;
          NEW.seq := last_seq + 1;
          NEW.prev_hash := last_hash;
          NEW.at := clock_timestamp();
          NEW.hash := audit_row_hash(NEW);
          RETURN NEW;
        END $$;
        CREATE FUNCTION audit_head_move() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
          SET search_path = pg_catalog, public AS $$
        BEGIN
          UPDATE audit_head SET seq = n.seq, hash = n.hash
            FROM (SELECT seq, hash FROM new_rows ORDER BY seq DESC LIMIT 1) n;
          RETURN NULL;
        END $$;
        CREATE TRIGGER audit_log_head AFTER INSERT ON audit_log REFERENCING NEW TABLE AS new_rows
          FOR EACH STATEMENT EXECUTE FUNCTION audit_head_move();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS audit_log_head ON audit_log;
        DROP FUNCTION IF EXISTS audit_head_move();
        CREATE OR REPLACE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
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
        """
    )
