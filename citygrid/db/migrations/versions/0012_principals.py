"""principals, their roles and API keys

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 14:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every call belongs to a principal: a person (user, logs in with a password, gets short-lived tokens) or a
    # department's system (service, uses long-lived API keys). Roles carry their scope: a division code prefix
    # (a village for cadres, a township for reviewers, a county for departments) and, for departments, the
    # department whose catalog classes they own. Secrets are stored only as hashes (argon2id for passwords,
    # keyed HMAC for API keys, which are random and long, so a fast hash is enough and keeps requests cheap).
    op.execute(
        """
        CREATE TABLE principal (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          kind text NOT NULL CHECK (kind IN ('user', 'service')),
          username text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{2,64}$'),
          display_name text,
          password_hash text,
          clearance text NOT NULL DEFAULT 'L2' CHECK (clearance IN ('L1', 'L2', 'L3', 'L4')),
          personal boolean NOT NULL DEFAULT false,
          demo boolean NOT NULL DEFAULT false,
          disabled_at timestamptz,
          failed_logins integer NOT NULL DEFAULT 0,
          locked_until timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          created_by text
        );
        CREATE TABLE principal_role (
          id bigserial PRIMARY KEY,
          principal_id uuid NOT NULL REFERENCES principal (id) ON DELETE CASCADE,
          role text NOT NULL CHECK (role IN ('cadre', 'reviewer', 'department', 'admin')),
          division text CHECK (division ~ '^[0-9]{2,12}$'),
          department text REFERENCES department (id),
          classes text[],
          CHECK (role <> 'department' OR department IS NOT NULL OR classes IS NOT NULL),
          CHECK (role NOT IN ('cadre', 'reviewer') OR division IS NOT NULL)
        );
        CREATE INDEX principal_role_principal_idx ON principal_role (principal_id);
        CREATE TABLE api_key (
          id text PRIMARY KEY,
          principal_id uuid NOT NULL REFERENCES principal (id) ON DELETE CASCADE,
          name text NOT NULL,
          secret_hash bytea NOT NULL,
          hash_kid text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz,
          last_used_at timestamptz,
          revoked_at timestamptz
        );
        CREATE INDEX api_key_principal_idx ON api_key (principal_id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS api_key; DROP TABLE IF EXISTS principal_role; DROP TABLE IF EXISTS principal;")
