"""click stream entries written

Revision ID: 4b7d2f8e1c6a
Revises: 9a4c2e7b5d13
Create Date: 2026-12-05 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4b7d2f8e1c6a"
down_revision: str | None = "9a4c2e7b5d13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "click_stream_entries",
        sa.Column("ms", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("ms", "seq", name=op.f("pk_click_stream_entries")),
    )


def downgrade() -> None:
    op.drop_table("click_stream_entries")
