"""click stream entries: when each was written

Revision ID: 7a3c5e9b2d41
Revises: 2f7c9e4a6b18
Create Date: 2026-12-08 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a3c5e9b2d41"
down_revision: str | None = "2f7c9e4a6b18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 0 for the rows written before: they are swept by their entry's time, as they were.
    op.add_column(
        "click_stream_entries",
        sa.Column("written_ms", sa.BigInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("click_stream_entries") as batch:
        batch.drop_column("written_ms")
