"""reader's side: plan descriptions, erased accounts, subscription card and end

Revision ID: c13a0d1e2f30
Revises: 9feb7b57d97e
Create Date: 2026-12-02 19:05:00

"""
from alembic import op
import sqlalchemy as sa

import paywall.types


# revision identifiers, used by Alembic.
revision = 'c13a0d1e2f30'
down_revision = '9feb7b57d97e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('deleted_at', paywall.types.UTCDateTime(timezone=True), nullable=True)
        )


    with op.batch_alter_table('billing_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('default_payment_method', sa.String(255), nullable=True))
        batch_op.add_column(
            sa.Column('ended_at', paywall.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table('billing_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('ended_at')
        batch_op.drop_column('default_payment_method')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('description')
