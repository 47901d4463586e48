"""answers that arrived after the deadline, and the in-app sweep's mark

Revision ID: d02c0examday
Revises: d02b0overrides
Create Date: 2026-12-02 03:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd02c0examday'
down_revision = 'd02b0overrides'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('late_answer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('given_at', sa.DateTime(), nullable=True),
    sa.Column('arrived_at', sa.DateTime(), nullable=False),
    sa.Column('arrivals', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempt.id'], name=op.f('fk_late_answer_attempt_id_attempt'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['question_id'], ['question.id'], name=op.f('fk_late_answer_question_id_question')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_late_answer')),
    sa.UniqueConstraint('attempt_id', 'question_id', name=op.f('uq_late_answer_attempt_id_question_id'))
    )
    op.create_table('sweep_mark',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('swept_at', sa.DateTime(), nullable=False),
    sa.Column('graded', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_sweep_mark'))
    )


def downgrade():
    op.drop_table('sweep_mark')
    op.drop_table('late_answer')
