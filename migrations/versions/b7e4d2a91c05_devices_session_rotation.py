"""devices: session rotation (the replaced value's digest, when, and when the new one was used)

Revision ID: b7e4d2a91c05
Revises: 5a1c0e9b7d21
Create Date: 2026-12-03 06:40:00

"""
from alembic import op
import sqlalchemy as sa

import paywall.types


# revision identifiers, used by Alembic.
revision = 'b7e4d2a91c05'
down_revision = '5a1c0e9b7d21'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('device_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_digest', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('rotated_at', paywall.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('token_used_at', paywall.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_device_sessions_previous_digest'), ['previous_digest'], unique=False)


def downgrade():
    with op.batch_alter_table('device_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_sessions_previous_digest'))
        batch_op.drop_column('token_used_at')
        batch_op.drop_column('rotated_at')
        batch_op.drop_column('previous_digest')
