"""a data version for who may call: `layer_version` row 'principals'

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 17:00:00

Every write that can change what a credential stands for (a principal disabled, its clearance or roles changed,
an API key revoked or expiring) bumps the row 'principals' of `layer_version`, once per statement. The web
process caches a credential's principal with the version it was loaded at and checks the version in the same
statement that puts the caller's scope on the transaction (`citygrid/security/scope.py`), so a logged-in request
costs one round trip like an anonymous one, and a change is seen on the next request in every worker.
Bookkeeping columns (failed logins, lock times, `last_used_at`) do not bump it: they are written on logins and
every minute of a key's use, and never change rights.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION bump_principals_version() RETURNS trigger LANGUAGE plpgsql
          SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
          INSERT INTO layer_version (layer, version) VALUES ('principals', 1)
          ON CONFLICT (layer) DO UPDATE SET version = layer_version.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        CREATE TRIGGER principal_version AFTER INSERT OR DELETE OR TRUNCATE
          OR UPDATE OF kind, username, display_name, clearance, personal, demo, disabled_at ON principal
          FOR EACH STATEMENT EXECUTE FUNCTION bump_principals_version();
        CREATE TRIGGER principal_role_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON principal_role
          FOR EACH STATEMENT EXECUTE FUNCTION bump_principals_version();
        CREATE TRIGGER api_key_version AFTER DELETE OR TRUNCATE
          OR UPDATE OF principal_id, secret_hash, hash_kid, revoked_at, expires_at ON api_key
          FOR EACH STATEMENT EXECUTE FUNCTION bump_principals_version();
        INSERT INTO layer_version (layer, version) VALUES ('principals', 1) ON CONFLICT (layer) DO NOTHING;
        -- read in the statement that sets the caller's role (scope.py): privileges are checked before that
        -- statement takes the role, as the login role, which holds none; so the read runs as the owner
        CREATE FUNCTION citygrid_principals_version() RETURNS bigint LANGUAGE sql STABLE
          SECURITY DEFINER SET search_path = pg_catalog, public AS $$
          SELECT coalesce((SELECT version FROM layer_version WHERE layer = 'principals'), 0)
        $$;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS principal_version ON principal;
        DROP TRIGGER IF EXISTS principal_role_version ON principal_role;
        DROP TRIGGER IF EXISTS api_key_version ON api_key;
        DROP FUNCTION IF EXISTS bump_principals_version();
        DROP FUNCTION IF EXISTS citygrid_principals_version();
        DELETE FROM layer_version WHERE layer = 'principals';
        """
    )
