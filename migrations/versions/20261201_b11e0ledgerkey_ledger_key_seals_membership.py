"""ledger key id per entry, the one-time rekey anchor, seals of published months, membership history

Entries written before this revision keep key_id NULL (plain SHA-256): `pbschool ledger verify`
refuses them until `pbschool ledger rekey` has anchored them once under the ledger key. Membership
gets one open row per existing user from created_at (closed at their deactivation, if the audit log
has it): the branch history starts here.

Revision ID: b11e0ledgerkey
Revises: b11b0marking
Create Date: 2026-12-01 23:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b11e0ledgerkey'
down_revision = 'b11b0marking'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('membership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_membership_branch_id_branch')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_membership_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership'))
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_membership_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))

    with op.batch_alter_table('ledger_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legacy_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('legacy_seal', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('legacy_key_id', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('rekeyed_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('monthly_publication', schema=None) as batch_op:
        batch_op.add_column(sa.Column('head_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('seal', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('seal_key_id', sa.String(length=16), nullable=True))

    # One stay per existing user, from their creation; a deactivated user's ends at their last
    # deactivation in the audit log (or at once, when it has none).
    op.execute("""
        INSERT INTO membership (user_id, branch_id, started_at, ended_at)
        SELECT u.id, u.branch_id, u.created_at,
               CASE WHEN u.is_active THEN NULL ELSE COALESCE(
                   (SELECT max(a.created_at) FROM audit_log a WHERE a.action = 'user.deactivate'
                      AND a.object_type = 'user' AND a.object_id = CAST(u.id AS VARCHAR(64))),
                   u.created_at) END
        FROM "user" u
    """)


def downgrade():
    with op.batch_alter_table('monthly_publication', schema=None) as batch_op:
        batch_op.drop_column('seal_key_id')
        batch_op.drop_column('seal')
        batch_op.drop_column('head_hash')

    with op.batch_alter_table('ledger_head', schema=None) as batch_op:
        batch_op.drop_column('rekeyed_at')
        batch_op.drop_column('legacy_key_id')
        batch_op.drop_column('legacy_seal')
        batch_op.drop_column('legacy_seq')

    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_column('key_id')

    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_membership_user_id'))
        batch_op.drop_index(batch_op.f('ix_membership_branch_id'))

    op.drop_table('membership')
