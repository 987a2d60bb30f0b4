"""click log offsets, visitors by link and day

Revision ID: 9a4c2e7b5d13
Revises: 7c1f3e9a2d58
Create Date: 2026-12-05 14:20:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "9a4c2e7b5d13"
down_revision: str | None = "7c1f3e9a2d58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "click_log_offsets",
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("segment", name=op.f("pk_click_log_offsets")),
    )
    op.create_table(
        "visitor_days",
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("visitor_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("link_id", "day", "visitor_id", name=op.f("pk_visitor_days")),
    )
    # The visitors already seen today and yesterday (the days a new click can fall on), so
    # that none counts twice across the upgrade.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if op.get_bind().dialect.name == "sqlite":  # timestamps are UTC text there
        day, since = "date(ts)", (today - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    else:
        day, since = "(ts AT TIME ZONE 'UTC')::date", today - timedelta(days=1)
    op.get_bind().execute(
        sa.text(
            f"INSERT INTO visitor_days (link_id, day, visitor_id) "
            f"SELECT DISTINCT link_id, {day}, visitor_id FROM clicks WHERE ts >= :since"
        ),
        {"since": since},
    )
    # Writers no longer look visitors up in clicks: the index only cost them on each insert.
    op.drop_index("ix_clicks_visitor_id", table_name="clicks")


def downgrade() -> None:
    op.create_index("ix_clicks_visitor_id", "clicks", ["visitor_id"], unique=False)
    op.drop_table("visitor_days")
    op.drop_table("click_log_offsets")
