"""devices: retired session values (older rotated-out values, for reuse detection)

Revision ID: e3f1a7c2b9d4
Revises: 3a0391ee9b47
Create Date: 2026-12-03 06:55:00

"""
import sqlalchemy as sa
from alembic import op

import paywall.types

# revision identifiers, used by Alembic.
revision = 'e3f1a7c2b9d4'
down_revision = '3a0391ee9b47'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'device_session_retired_values',
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('session_id', sa.String(length=32), nullable=False),
        sa.Column('retired_at', paywall.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('grace_until', paywall.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['session_id'], ['device_sessions.id'],
            name=op.f('fk_device_session_retired_values_session_id_device_sessions'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('digest', name=op.f('pk_device_session_retired_values')),
    )
    with op.batch_alter_table('device_session_retired_values', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_device_session_retired_values_session_id'), ['session_id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('device_session_retired_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_session_retired_values_session_id'))
    op.drop_table('device_session_retired_values')
