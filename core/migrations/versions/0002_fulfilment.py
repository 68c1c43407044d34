"""fulfilment: state check, manual retries, line snapshot, destination state, timestamps

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 09:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('fulfilments', sa.Column('retries', sa.Integer(), server_default='0', nullable=False, comment='rounds started by a Retry press; part of the job id'))
    op.add_column('fulfilments', sa.Column('round_attempts', sa.Integer(), server_default='0', nullable=False, comment='attempts since the round started (a Retry press resets it); attempts counts them all'))
    op.add_column('fulfilments', sa.Column('lines', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False, comment='the request lines this order carries, as approved'))
    op.add_column('fulfilments', sa.Column('external_state', sa.String(length=30), nullable=True, comment="the order's state at the destination (ERP: confirmed, processing...)"))
    op.add_column('fulfilments', sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=True, comment='start of the latest attempt'))
    op.add_column('fulfilments', sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        'ck_fulfilments_state', 'fulfilments', "state IN ('pending', 'placing', 'placed', 'failed', 'cancelled')"
    )
    op.create_index(
        'ix_fulfilments_open', 'fulfilments', ['state', 'updated_at'], unique=False,
        postgresql_where=sa.text("state IN ('pending', 'placing')"),
    )
    op.create_index('ix_fulfilments_request', 'fulfilments', ['request_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_fulfilments_request', table_name='fulfilments')
    op.drop_index('ix_fulfilments_open', table_name='fulfilments')
    op.drop_constraint('ck_fulfilments_state', 'fulfilments', type_='check')
    op.drop_column('fulfilments', 'failed_at')
    op.drop_column('fulfilments', 'attempted_at')
    op.drop_column('fulfilments', 'external_state')
    op.drop_column('fulfilments', 'lines')
    op.drop_column('fulfilments', 'round_attempts')
    op.drop_column('fulfilments', 'retries')
