"""webhook secrets encrypted at rest: `webhook.secret_enc` (AES-256-GCM under the keyring) and `secret_kid`

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 07:00:00

A webhook's secret signs its deliveries: whoever reads it can forge batches to the receiver, so it is kept like
the person fields of 0015 (citygrid/security/crypto.py: sealed under the active key, `secret_kid` names that
key for rotation and key retirement). The migration cannot encrypt (the keys live with the application), so it
adds the columns and a NOT VALID check that refuses new plaintext at once; webhooks made before it are sealed
by the application at its next start (`crypto.seal_leftovers`), which then validates the check.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE webhook
          ADD COLUMN secret_enc bytea,
          ADD COLUMN secret_kid text,
          ALTER COLUMN secret DROP NOT NULL,
          ADD CONSTRAINT webhook_secret_kid CHECK (secret_enc IS NULL OR secret_kid IS NOT NULL);
        ALTER TABLE webhook ADD CONSTRAINT webhook_no_plaintext CHECK (secret IS NULL) NOT VALID;
        CREATE INDEX webhook_secret_kid_idx ON webhook (secret_kid);
        """
    )


def downgrade() -> None:
    # Downgrading cannot decrypt: it refuses while sealed secrets exist rather than lose them.
    op.execute(
        """
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM webhook WHERE secret_enc IS NOT NULL) THEN
            RAISE EXCEPTION 'webhooks hold encrypted secrets; remove those webhooks before downgrading';
          END IF;
        END $$;
        DROP INDEX IF EXISTS webhook_secret_kid_idx;
        ALTER TABLE webhook DROP CONSTRAINT IF EXISTS webhook_no_plaintext,
          DROP CONSTRAINT IF EXISTS webhook_secret_kid, DROP COLUMN IF EXISTS secret_enc,
          DROP COLUMN IF EXISTS secret_kid;
        ALTER TABLE webhook ALTER COLUMN secret SET NOT NULL;
        """
    )
