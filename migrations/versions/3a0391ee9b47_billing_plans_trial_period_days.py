"""billing: plans.trial_period_days, the Price's free trial

Revision ID: 3a0391ee9b47
Revises: 7e1f3a9c2b40
Create Date: 2026-12-03 07:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3a0391ee9b47'
down_revision = '7e1f3a9c2b40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trial_period_days', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('trial_period_days')
