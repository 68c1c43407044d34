"""reliability: dead letters, send attempts recorded before the provider call, unknown-sender reply limits

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 11:15:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dead_letters',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False, comment='why the message could not be stored or processed'),
        sa.Column('raw_body', sa.LargeBinary(), nullable=False, comment='the request body exactly as received'),
        sa.Column('message', postgresql.JSONB(astext_type=sa.Text()), nullable=True,
                  comment='the parsed message, when parsing got that far'),
        sa.Column('provider_message_id', sa.String(length=200), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('replay_result', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters')),
    )
    op.create_index('ix_dead_letters_pending', 'dead_letters', ['id'], unique=False,
                    postgresql_where=sa.text('replayed_at IS NULL'))
    op.add_column('outbound_messages', sa.Column(
        'attempted_at', sa.DateTime(timezone=True), nullable=True,
        comment='set just before the provider call; an attempt without provider_message_id is unconfirmed'))
    op.add_column('outbound_messages', sa.Column(
        'attempts', sa.Integer(), server_default='0', nullable=False, comment='provider calls made for this key'))
    op.create_table(
        'unknown_sender_replies',
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('chat_id', sa.String(length=100), nullable=False),
        sa.Column('replied_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('suppressed', sa.Integer(), server_default='0', nullable=False,
                  comment='bursts not answered since replied_at'),
        sa.PrimaryKeyConstraint('provider', 'chat_id', name=op.f('pk_unknown_sender_replies')),
    )


def downgrade() -> None:
    op.drop_table('unknown_sender_replies')
    op.drop_column('outbound_messages', 'attempts')
    op.drop_column('outbound_messages', 'attempted_at')
    op.drop_index('ix_dead_letters_pending', table_name='dead_letters')
    op.drop_table('dead_letters')
