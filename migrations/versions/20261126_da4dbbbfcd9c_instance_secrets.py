"""instance secrets

Revision ID: da4dbbbfcd9c
Revises: 88f56c2ba9d9
Create Date: 2026-11-26 15:11:55.448957
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "da4dbbbfcd9c"
down_revision: str | None = "88f56c2ba9d9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_secrets")),
    )


def downgrade() -> None:
    op.drop_table("instance_secrets")
