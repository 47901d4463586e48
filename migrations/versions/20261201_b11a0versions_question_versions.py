"""question versions: an attempt keeps the version it was shown; content files own their questions

Revision ID: b11a0versions
Revises: b11c0meetings
Create Date: 2026-12-01 23:50:00

Every existing question gets version 1 (its current content) and every existing attempt is taken to
have been shown and graded by it: what an attempt was shown before versions existed is not known.
"""
from alembic import op
import sqlalchemy as sa


revision = 'b11a0versions'
down_revision = 'b11c0meetings'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('question_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('stem', sa.Text(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('answer', sa.JSON(), nullable=False),
    sa.Column('score', sa.Numeric(precision=8, scale=1), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('rendered', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_question_version_created_by_id_user')),
    sa.ForeignKeyConstraint(['question_id'], ['question.id'], name=op.f('fk_question_version_question_id_question'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_question_version')),
    sa.UniqueConstraint('question_id', 'number', name=op.f('uq_question_version_question_id_number'))
    )
    with op.batch_alter_table('question', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('source', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('source_ref', sa.String(length=64), nullable=True))
    with op.batch_alter_table('attempt_question', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('graded_version_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_attempt_question_version_id'), ['version_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_attempt_question_version_id_question_version'),
                                    'question_version', ['version_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_attempt_question_graded_version_id_question_version'),
                                    'question_version', ['graded_version_id'], ['id'])

    op.execute("INSERT INTO question_version (question_id, number, type, stem, options, answer, score, "
               "explanation, rendered, created_at) SELECT id, 1, type, stem, options, answer, score, "
               "explanation, rendered, updated_at FROM question")
    op.execute("UPDATE question SET version = 1")
    op.execute("UPDATE attempt_question SET version_id = (SELECT v.id FROM question_version v "
               "WHERE v.question_id = attempt_question.question_id AND v.number = 1)")
    op.execute("UPDATE attempt_question SET graded_version_id = version_id WHERE score IS NOT NULL")


def downgrade():
    with op.batch_alter_table('attempt_question', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_attempt_question_graded_version_id_question_version'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_attempt_question_version_id_question_version'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_attempt_question_version_id'))
        batch_op.drop_column('graded_version_id')
        batch_op.drop_column('version_id')
    with op.batch_alter_table('question', schema=None) as batch_op:
        batch_op.drop_column('source_ref')
        batch_op.drop_column('source')
        batch_op.drop_column('version')
    op.drop_table('question_version')
