"""reports: read-only report links for a campaign or a set of links

Revision ID: 2f7c9e4a6b18
Revises: 4b7d2e9c1a65
Create Date: 2026-12-07 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2f7c9e4a6b18"
down_revision: str | None = "4b7d2e9c1a65"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("utm_campaign", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_reports_workspace_id", "reports", ["workspace_id"])
    op.create_table(
        "report_links",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id", "link_id"),
    )
    op.create_index("ix_report_links_link_id", "report_links", ["link_id"])


def downgrade() -> None:
    op.drop_index("ix_report_links_link_id", table_name="report_links")
    op.drop_table("report_links")
    op.drop_index("ix_reports_workspace_id", table_name="reports")
    op.drop_table("reports")
