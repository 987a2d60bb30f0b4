"""links served clicks

Revision ID: 4b9e2c7d1a05
Revises: da4dbbbfcd9c
Create Date: 2026-11-26 15:13:47.651718
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4b9e2c7d1a05"
down_revision: str | None = "da4dbbbfcd9c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("served_clicks", sa.Integer(), server_default="0", nullable=False)
        )
    # Clicks already counted count toward the cap.
    op.execute("UPDATE links SET served_clicks = clicks WHERE max_clicks IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_column("served_clicks")
