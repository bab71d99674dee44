"""writers of a class take one lock first, so trigger-kept counts cannot deadlock

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 07:00:00

Every statement that writes `city_object` updates, in its AFTER STATEMENT triggers, rows shared by all writers of
a class: `agg_h3` and `agg_grid` cells (0010) and the class's `layer_version` row (0002), and holds them until
commit. A transaction has several such statements (insert, then grid assignment; a move subtracts from one cell
and adds to another), so two writers of the same class took those rows in different orders and PostgreSQL aborted
one with a deadlock: 27 of 240 transactions of four concurrent writers (tests/test_reliability_counts.py), each a
503 to its caller. Now the first trigger of every such statement takes a transaction-level advisory lock per class
written (in class order): whoever holds a class's counts holds its lock, so a writer waiting for the lock holds
none of them, and the counts cannot form a cycle. This adds no serialization that was not there already: the
class's `layer_version` row was held to commit by every writer of the class anyway; the lock is only taken earlier.
The trigger's name sorts before `city_object_counts_*` and `city_object_layer_*`, which PostgreSQL fires in name
order.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# advisory lock keys (int, int): this namespace and the class code's hash
NAMESPACE = 24


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION lock_object_classes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            PERFORM pg_advisory_xact_lock({NAMESPACE}, hashtext(c)) FROM (
              SELECT DISTINCT class_code AS c FROM new_rows ORDER BY 1) t;
          ELSIF TG_OP = 'UPDATE' THEN
            PERFORM pg_advisory_xact_lock({NAMESPACE}, hashtext(c)) FROM (
              SELECT class_code AS c FROM old_rows UNION SELECT class_code FROM new_rows ORDER BY 1) t;
          ELSE
            PERFORM pg_advisory_xact_lock({NAMESPACE}, hashtext(c)) FROM (
              SELECT DISTINCT class_code AS c FROM old_rows ORDER BY 1) t;
          END IF;
          RETURN NULL;
        END $$;
        CREATE TRIGGER city_object_class_lock_ins AFTER INSERT ON city_object
          REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lock_object_classes();
        CREATE TRIGGER city_object_class_lock_upd AFTER UPDATE ON city_object
          REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
          EXECUTE FUNCTION lock_object_classes();
        CREATE TRIGGER city_object_class_lock_del AFTER DELETE ON city_object
          REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION lock_object_classes();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS city_object_class_lock_ins ON city_object;
        DROP TRIGGER IF EXISTS city_object_class_lock_upd ON city_object;
        DROP TRIGGER IF EXISTS city_object_class_lock_del ON city_object;
        DROP FUNCTION IF EXISTS lock_object_classes();
        """
    )
