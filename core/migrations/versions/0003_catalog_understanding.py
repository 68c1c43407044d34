"""catalog understanding: learned aliases, HNSW index on item embeddings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 08:20:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'catalog_aliases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('phrase', sa.String(length=200), nullable=False, comment='normalised words a person used for the item'),
        sa.Column('sku', sa.String(length=64), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True, comment='users.id of the person whose choice taught it'),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('uses', sa.Integer(), server_default='1', nullable=False, comment='times a person confirmed it'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_catalog_aliases_created_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_aliases')),
        sa.UniqueConstraint('phrase', 'sku', name=op.f('uq_catalog_aliases_phrase')),
    )
    op.execute(
        'CREATE INDEX IF NOT EXISTS ix_catalog_items_embedding ON catalog_items '
        'USING hnsw (embedding vector_cosine_ops)'
    )


def downgrade() -> None:
    op.execute('DROP INDEX IF EXISTS ix_catalog_items_embedding')
    op.drop_table('catalog_aliases')
