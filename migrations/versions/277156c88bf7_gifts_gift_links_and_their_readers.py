"""gifts: gift links and the browsers that opened them

Revision ID: 277156c88bf7
Revises: b7e4d2a91c05
Create Date: 2026-12-03 06:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

import paywall.types


# revision identifiers, used by Alembic.
revision = '277156c88bf7'
down_revision = 'b7e4d2a91c05'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('gifts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('giver_id', sa.String(length=32), nullable=False),
    sa.Column('article', sa.String(length=200), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('created_at', paywall.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', paywall.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', paywall.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['giver_id'], ['accounts.id'], name=op.f('fk_gifts_giver_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gifts'))
    )
    with op.batch_alter_table('gifts', schema=None) as batch_op:
        batch_op.create_index('ix_gifts_giver_month', ['giver_id', 'month'], unique=False)

    op.create_table('gift_readers',
    sa.Column('gift_id', sa.String(length=32), nullable=False),
    sa.Column('visitor', sa.String(length=64), nullable=False),
    sa.Column('opened_at', paywall.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['gift_id'], ['gifts.id'], name=op.f('fk_gift_readers_gift_id_gifts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('gift_id', 'visitor', name=op.f('pk_gift_readers'))
    )


def downgrade():
    op.drop_table('gift_readers')
    with op.batch_alter_table('gifts', schema=None) as batch_op:
        batch_op.drop_index('ix_gifts_giver_month')

    op.drop_table('gifts')
