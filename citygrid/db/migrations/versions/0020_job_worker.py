"""the process that runs a job, so a job whose process died is found and marked interrupted

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 17:00:00

`job.worker` is `host:pid:start-ticks` of the process running the job (`citygrid/jobs.py`); a job left
`running` by a killed process is marked `interrupted` at the next start-up. States are text (running, done,
failed, cancelling, cancelled, interrupted); nothing to migrate for them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('job', sa.Column('worker', sa.Text(), nullable=True))
    # only running jobs are ever looked up by state at start-up
    op.create_index('job_unfinished', 'job', ['state'], postgresql_where=sa.text("state IN ('running', 'cancelling')"))


def downgrade() -> None:
    op.drop_index('job_unfinished', table_name='job')
    op.drop_column('job', 'worker')
