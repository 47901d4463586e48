"""staff previews and bank grants: attempt.is_preview, bank_grant

Revision ID: b11b0marking
Revises: 0a8f37797340
Create Date: 2026-12-01 23:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b11b0marking'
down_revision = '0a8f37797340'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('bank_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bank_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['bank_id'], ['question_bank.id'], name=op.f('fk_bank_grant_bank_id_question_bank'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['granted_by_id'], ['user.id'], name=op.f('fk_bank_grant_granted_by_id_user')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_bank_grant_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_grant')),
    sa.UniqueConstraint('bank_id', 'user_id', name=op.f('uq_bank_grant_bank_id_user_id'))
    )
    with op.batch_alter_table('bank_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bank_grant_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('attempt', schema=None) as batch_op:
        # Attempts made before previews existed were all counted: false for every existing row.
        batch_op.add_column(sa.Column('is_preview', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.drop_column('is_preview')

    with op.batch_alter_table('bank_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bank_grant_user_id'))

    op.drop_table('bank_grant')
