"""user agents kept once, referenced by clicks

Revision ID: 7c1f3e9a2d58
Revises: 3e8d1f6a9c47
Create Date: 2026-12-05 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c1f3e9a2d58"
down_revision: str | None = "3e8d1f6a9c47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("user_agent", sa.String(length=512), nullable=False),
        sa.Column("client_hints", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_agents")),
        sa.UniqueConstraint("digest", name=op.f("uq_user_agents_digest")),
    )
    # A plain ADD COLUMN on both databases (no table rebuild on SQLite); on PostgreSQL it
    # reaches every monthly partition. No index: the writer would pay for it on every click,
    # and `tautan reenrich` reads clicks a day at a time.
    op.add_column("clicks", sa.Column("user_agent_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_column("user_agent_id")
    op.drop_table("user_agents")
