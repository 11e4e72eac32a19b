"""queue: background jobs recorded with the request (paywall.queue)

Revision ID: 5a1c0e9b7d21
Revises: a0ac9ccaef25
Create Date: 2026-12-02 20:00:00

"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa

import paywall.types


revision = '5a1c0e9b7d21'
down_revision = 'a0ac9ccaef25'
branch_labels = None
depends_on = None


def upgrade():
    jobs = op.create_table('queue_jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('task', sa.String(length=120), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('created_at', paywall.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_after', paywall.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', paywall.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('finished_at', paywall.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queue_jobs'))
    )
    with op.batch_alter_table('queue_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_queue_jobs_open', ['finished_at', 'run_after'], unique=False)

    # Emails the old request-thread sender still held become jobs, so the sweep sends them.
    bind = op.get_bind()
    held = bind.execute(
        sa.text("SELECT id FROM outbox_emails WHERE sent_at IS NULL")
    ).all()
    now = datetime.now(UTC)
    if held:
        op.bulk_insert(jobs, [
            {'task': 'outbox.send_email', 'args': [row.id], 'created_at': now,
             'run_after': now, 'sent_at': None, 'attempts': 0}
            for row in held
        ])


def downgrade():
    with op.batch_alter_table('queue_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_queue_jobs_open')
    op.drop_table('queue_jobs')
