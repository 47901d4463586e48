"""search: one index row per course and lesson (folded text; 1-2 character grams, GIN on PostgreSQL)

Revision ID: d02h0search
Revises: d02e0practice
Create Date: 2026-12-02 03:40:00

Fills the rows of the existing courses and lessons from their stored (sanitised) HTML; from then on
pbschool.search.services keeps them after every change.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pbschool.search.text import doc_values


revision = 'd02h0search'
down_revision = 'd02e0practice'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    pg = bind.dialect.name == 'postgresql'
    op.create_table('search_doc',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lesson_id', sa.Integer(), nullable=True),
    sa.Column('course_id', sa.Integer(), nullable=True),
    sa.Column('title_folded', sa.Text(), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('folded', sa.Text(), nullable=False),
    sa.Column('grams', postgresql.ARRAY(sa.Text()) if pg else sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_search_doc_course_id_course'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lesson_id'], ['lesson.id'], name=op.f('fk_search_doc_lesson_id_lesson'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_doc')),
    sa.UniqueConstraint('course_id', name=op.f('uq_search_doc_course_id')),
    sa.UniqueConstraint('lesson_id', name=op.f('uq_search_doc_lesson_id')),
    postgresql_with={'toast_tuple_target': 128}
    )
    with op.batch_alter_table('search_doc', schema=None) as batch_op:
        batch_op.create_index('ix_search_doc_grams', ['grams'], unique=False, postgresql_using='gin')
    docs = sa.table('search_doc', sa.column('lesson_id'), sa.column('course_id'), sa.column('title_folded'),
                    sa.column('body_text'), sa.column('folded'), sa.column('grams'))

    def values(**kwargs):
        if not pg:
            kwargs['grams'] = ''  # SQLite matches with LIKE on the folded text
        return kwargs

    for course_id, title, summary, body_html in bind.execute(
            sa.text("SELECT id, title, summary, body_html FROM course")).all():
        bind.execute(docs.insert().values(**values(course_id=course_id, **doc_values(title, body_html, summary))))
    for lesson_id, title, body_html in bind.execute(sa.text("SELECT id, title, body_html FROM lesson")).all():
        bind.execute(docs.insert().values(**values(lesson_id=lesson_id, **doc_values(title, body_html))))


def downgrade():
    with op.batch_alter_table('search_doc', schema=None) as batch_op:
        batch_op.drop_index('ix_search_doc_grams')
    op.drop_table('search_doc')
