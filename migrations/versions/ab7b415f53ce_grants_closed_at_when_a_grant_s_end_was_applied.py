"""grants: closed_at, when a grant's end was applied (devices capped, reader told)

Revision ID: ab7b415f53ce
Revises: 277156c88bf7
Create Date: 2026-12-03 06:55:00.000000

"""
from alembic import op
import sqlalchemy as sa

import paywall.types


# revision identifiers, used by Alembic.
revision = 'ab7b415f53ce'
down_revision = '277156c88bf7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('access_grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', paywall.types.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('access_grants', schema=None) as batch_op:
        batch_op.drop_column('closed_at')
