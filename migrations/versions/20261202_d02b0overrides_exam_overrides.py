"""exam overrides per member and per branch (extra minutes, later close, extra attempts); replaces extra_time

Revision ID: d02b0overrides
Revises: c12b0totp
Create Date: 2026-12-02 03:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd02b0overrides'
down_revision = 'c12b0totp'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('exam_override',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('extra_minutes', sa.Integer(), nullable=True),
    sa.Column('closes_at', sa.DateTime(), nullable=True),
    sa.Column('extra_attempts', sa.Integer(), nullable=True),
    sa.Column('set_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('(user_id IS NULL) <> (branch_id IS NULL)', name=op.f('ck_exam_override_member_or_branch')),
    sa.CheckConstraint('extra_minutes IS NULL OR extra_minutes BETWEEN 0 AND 10080',
                       name=op.f('ck_exam_override_extra_minutes_range')),
    sa.CheckConstraint('extra_attempts IS NULL OR extra_attempts BETWEEN 0 AND 100',
                       name=op.f('ck_exam_override_extra_attempts_range')),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_exam_override_branch_id_branch'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_exam_override_exam_id_exam'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['set_by_id'], ['user.id'], name=op.f('fk_exam_override_set_by_id_user'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_exam_override_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_override')),
    sa.UniqueConstraint('exam_id', 'branch_id', name=op.f('uq_exam_override_exam_id_branch_id')),
    sa.UniqueConstraint('exam_id', 'user_id', name=op.f('uq_exam_override_exam_id_user_id'))
    )
    with op.batch_alter_table('exam_override', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exam_override_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exam_override_user_id'), ['user_id'], unique=False)
    # The old per-member extra time becomes a member override (whole minutes, rounded up).
    op.execute("INSERT INTO exam_override (exam_id, user_id, extra_minutes, updated_at) "
               "SELECT exam_id, user_id, CASE WHEN (seconds + 59) / 60 > 10080 THEN 10080 ELSE (seconds + 59) / 60 END, "
               "CURRENT_TIMESTAMP FROM extra_time")
    op.drop_table('extra_time')


def downgrade():
    op.create_table('extra_time',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.CheckConstraint('seconds > 0', name=op.f('ck_extra_time_seconds_positive')),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_extra_time_exam_id_exam'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_extra_time_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extra_time')),
    sa.UniqueConstraint('exam_id', 'user_id', name=op.f('uq_extra_time_exam_id_user_id'))
    )
    op.execute("INSERT INTO extra_time (exam_id, user_id, seconds) SELECT exam_id, user_id, extra_minutes * 60 "
               "FROM exam_override WHERE user_id IS NOT NULL AND extra_minutes > 0")
    with op.batch_alter_table('exam_override', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exam_override_user_id'))
        batch_op.drop_index(batch_op.f('ix_exam_override_branch_id'))
    op.drop_table('exam_override')
