"""rollups, new visitors, link counters

Revision ID: 88f56c2ba9d9
Revises: 5ed2e94e1382
Create Date: 2026-11-26 13:06:58.921609
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "88f56c2ba9d9"
down_revision: str | None = "5ed2e94e1382"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rollup_days",
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name=op.f("fk_rollup_days_link_id_links"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "link_id", "dimension", "day", "is_bot", "value", name=op.f("pk_rollup_days")
        ),
    )
    with op.batch_alter_table("rollup_days", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollup_days_workspace_id_dimension_day",
            ["workspace_id", "dimension", "day"],
            unique=False,
        )

    op.create_table(
        "rollup_hours",
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
            name=op.f("fk_rollup_hours_link_id_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", "hour", "is_bot", name=op.f("pk_rollup_hours")),
    )
    with op.batch_alter_table("rollup_hours", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollup_hours_workspace_id_hour", ["workspace_id", "hour"], unique=False
        )

    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("new_visitor", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index("ix_clicks_visitor_id", ["visitor_id"], unique=False)

    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unique_visitors", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("bot_clicks", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_column("bot_clicks")
        batch_op.drop_column("unique_visitors")

    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index("ix_clicks_visitor_id")
        batch_op.drop_column("new_visitor")

    with op.batch_alter_table("rollup_hours", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_hours_workspace_id_hour")

    op.drop_table("rollup_hours")
    with op.batch_alter_table("rollup_days", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_days_workspace_id_dimension_day")

    op.drop_table("rollup_days")
