"""meetings: one a branch, kind and day; one-time keys; attendance credit state; one learning clock per member

Revision ID: b11c0meetings
Revises: b11e0ledgerkey
Create Date: 2026-12-01 23:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b11c0meetings'
down_revision = 'b11e0ledgerkey'
branch_labels = None
depends_on = None


def upgrade():
    # Meetings recorded twice before this rule cannot be merged silently (each may have paid its
    # attendees): say which they are, and let the committee office decide.
    duplicates = op.get_bind().execute(sa.text(
        "SELECT branch_id, kind, held_on, COUNT(*) FROM meeting GROUP BY branch_id, kind, held_on "
        "HAVING COUNT(*) > 1")).all()
    if duplicates:
        listed = "; ".join(f"branch {b} {k} {d} ({n}x)" for b, k, d, n in duplicates[:20])
        raise RuntimeError("meetings recorded more than once for the same branch, kind and day must be "
                           f"merged before this upgrade: {listed}")
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_meeting_branch_id_kind_held_on'),
                                          ['branch_id', 'kind', 'held_on'])
        batch_op.create_unique_constraint(batch_op.f('uq_meeting_recorded_by_id_key'), ['recorded_by_id', 'key'])

    with op.batch_alter_table('meeting_attendance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credit', sa.String(length=8), server_default='paid', nullable=False))
        batch_op.create_check_constraint(batch_op.f('ck_meeting_attendance_credit'),
                                         "credit IN ('paid', 'capped', 'pending')")

    op.create_table('learning_clock',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('credited_until', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_learning_clock_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_learning_clock'))
    )


def downgrade():
    op.drop_table('learning_clock')
    with op.batch_alter_table('meeting_attendance', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_meeting_attendance_credit'), type_='check')
        batch_op.drop_column('credit')

    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_meeting_recorded_by_id_key'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_meeting_branch_id_kind_held_on'), type_='unique')
        batch_op.drop_column('key')
