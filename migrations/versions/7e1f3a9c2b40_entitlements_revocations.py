"""entitlements: revocations (the feed frontends follow)

Revision ID: 7e1f3a9c2b40
Revises: ab7b415f53ce
Create Date: 2026-12-03 06:50:00

"""
from alembic import op
import sqlalchemy as sa

import paywall.types


revision = '7e1f3a9c2b40'
down_revision = 'ab7b415f53ce'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('entitlement_revocations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=True),
    sa.Column('not_before', sa.Float(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('created_at', paywall.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', paywall.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entitlement_revocations')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('entitlement_revocations', schema=None) as batch_op:
        batch_op.create_index('ix_entitlement_revocations_expires', ['expires_at'], unique=False)
        batch_op.create_index(
            'ix_entitlement_revocations_account', ['account_id', 'session_id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('entitlement_revocations', schema=None) as batch_op:
        batch_op.drop_index('ix_entitlement_revocations_account')
        batch_op.drop_index('ix_entitlement_revocations_expires')
    op.drop_table('entitlement_revocations')
