"""person ID numbers and phones encrypted at rest, with a keyed hash for lookup

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-03 10:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ID numbers and phones are stored only as AES-256-GCM blobs that carry their key id
    # (citygrid/security/crypto.py); id_number_hash is an HMAC of the normalised ID number under the row's key, for
    # exact lookup; pii_kid repeats the key id so rotation and key retirement find rows with SQL. The migration
    # cannot encrypt (the keys live with the application, not necessarily where migrations run), so it adds the
    # columns and a NOT VALID check: new plaintext is refused at once, old rows are encrypted by the application
    # at its next start (crypto.seal_leftovers), which then validates the check.
    op.execute(
        """
        ALTER TABLE person
          ADD COLUMN id_number_enc bytea,
          ADD COLUMN phone_enc bytea,
          ADD COLUMN id_number_hash bytea,
          ADD COLUMN pii_kid text,
          ADD CONSTRAINT person_pii_kid CHECK ((id_number_enc IS NULL AND phone_enc IS NULL) OR pii_kid IS NOT NULL);
        ALTER TABLE person ADD CONSTRAINT person_no_plaintext CHECK (id_number IS NULL AND phone IS NULL) NOT VALID;
        CREATE INDEX person_id_number_hash_idx ON person (id_number_hash);
        CREATE INDEX person_pii_kid_idx ON person (pii_kid);
        """
    )


def downgrade() -> None:
    # Downgrading cannot decrypt either: it refuses while encrypted values exist rather than lose them.
    op.execute(
        """
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM person WHERE id_number_enc IS NOT NULL OR phone_enc IS NOT NULL) THEN
            RAISE EXCEPTION 'person rows hold encrypted ID numbers or phones; decrypt them before downgrading';
          END IF;
        END $$;
        ALTER TABLE person DROP CONSTRAINT IF EXISTS person_no_plaintext, DROP CONSTRAINT IF EXISTS person_pii_kid,
          DROP COLUMN IF EXISTS id_number_enc, DROP COLUMN IF EXISTS phone_enc, DROP COLUMN IF EXISTS id_number_hash,
          DROP COLUMN IF EXISTS pii_kid;
        """
    )
