"""support tickets (T-<id>) linked to purchase requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 08:20:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'tickets',
        sa.Column('id', sa.Integer(), nullable=False, comment='shown as T-<id>'),
        sa.Column('requester_id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=True, comment='the purchase request it is about, if any'),
        sa.Column('kind', sa.String(length=30), nullable=False, comment='wrong_item, not_delivered, damaged, other'),
        sa.Column('text', sa.Text(), nullable=False, comment="the person's words"),
        sa.Column('status', sa.String(length=20), server_default='open', nullable=False),
        sa.Column('assignee_id', sa.Integer(), nullable=True, comment='the buyer notified'),
        sa.Column('chat_id', sa.String(length=100), nullable=False),
        sa.Column('provider', sa.String(length=20), server_default='meta', nullable=False),
        sa.Column('source_message_id', sa.String(length=200), nullable=True,
                  comment='provider message id that opened it: a re-run turn finds its ticket instead of a second'),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['requester_id'], ['users.id'], name=op.f('fk_tickets_requester_id_users')),
        sa.ForeignKeyConstraint(['request_id'], ['purchase_requests.id'], name=op.f('fk_tickets_request_id_purchase_requests')),
        sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_tickets_assignee_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets')),
        sa.UniqueConstraint('source_message_id', name=op.f('uq_tickets_source_message_id')),
    )
    op.create_index('ix_tickets_requester', 'tickets', ['requester_id'], unique=False)
    op.create_index('ix_tickets_request', 'tickets', ['request_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_tickets_request', table_name='tickets')
    op.drop_index('ix_tickets_requester', table_name='tickets')
    op.drop_table('tickets')
