"""clicks and visitor salts

Revision ID: 5ed2e94e1382
Revises: 1ae0b684a2a0
Create Date: 2026-11-26 13:02:24.268332
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5ed2e94e1382"
down_revision: str | None = "1ae0b684a2a0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visitor_salts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_visitor_salts")),
    )
    op.create_table(
        "clicks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visitor_id", sa.String(length=32), nullable=False),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("bot_name", sa.String(length=100), nullable=True),
        sa.Column("device_type", sa.String(length=16), nullable=False),
        sa.Column("os", sa.String(length=64), nullable=True),
        sa.Column("os_version", sa.String(length=32), nullable=True),
        sa.Column("browser", sa.String(length=64), nullable=True),
        sa.Column("browser_version", sa.String(length=32), nullable=True),
        sa.Column("device_brand", sa.String(length=64), nullable=True),
        sa.Column("device_model", sa.String(length=100), nullable=True),
        sa.Column("in_app", sa.String(length=32), nullable=True),
        sa.Column("referrer_url", sa.String(length=2048), nullable=True),
        sa.Column("referrer_domain", sa.String(length=255), nullable=True),
        sa.Column("referrer_source", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("trigger", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name=op.f("fk_clicks_link_id_links"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_clicks_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clicks")),
    )
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.create_index("ix_clicks_link_id_ts", ["link_id", "ts"], unique=False)
        batch_op.create_index("ix_clicks_workspace_id_ts", ["workspace_id", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index("ix_clicks_workspace_id_ts")
        batch_op.drop_index("ix_clicks_link_id_ts")

    op.drop_table("clicks")
    op.drop_table("visitor_salts")
