"""targeting: link rules, variants and passwords; a click's route; UTM templates

Revision ID: 8e5b1d7c3f20
Revises: 6d2a9f4b8e31
Create Date: 2026-12-06 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8e5b1d7c3f20"
down_revision: str | None = "6d2a9f4b8e31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("rules", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("variants", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))
    op.add_column("clicks", sa.Column("route", sa.String(length=64), nullable=True))
    # `route` is a dimension of the daily rollup: the clicks counted so far all went to their
    # link's own url (no route). Their rows are those of `trigger`, which every click has
    # one value of, summed.
    op.execute(
        "INSERT INTO rollup_days "
        "(link_id, dimension, day, is_bot, value, workspace_id, clicks, visitors) "
        "SELECT link_id, 'route', day, is_bot, '', workspace_id, SUM(clicks), SUM(visitors) "
        "FROM rollup_days WHERE dimension = 'trigger' "
        "GROUP BY link_id, day, is_bot, workspace_id"
    )
    op.create_table(
        "utm_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("utm_source", sa.String(length=255), nullable=True),
        sa.Column("utm_medium", sa.String(length=255), nullable=True),
        sa.Column("utm_campaign", sa.String(length=255), nullable=True),
        sa.Column("utm_term", sa.String(length=255), nullable=True),
        sa.Column("utm_content", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_utm_templates_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utm_templates")),
        sa.UniqueConstraint(
            "workspace_id", "name", name=op.f("uq_utm_templates_workspace_id_name")
        ),
    )


def downgrade() -> None:
    op.drop_table("utm_templates")
    op.execute("DELETE FROM rollup_days WHERE dimension = 'route'")
    op.drop_column("clicks", "route")
    with op.batch_alter_table("links") as batch:
        batch.drop_column("password_hash")
        batch.drop_column("variants")
        batch.drop_column("rules")
