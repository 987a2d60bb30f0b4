"""branded domains; a slug is unique per domain

Revision ID: 5c8e3a1f7d24
Revises: 4b7d2f8e1c6a
Create Date: 2026-12-05 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c8e3a1f7d24"
down_revision: str | None = "4b7d2f8e1c6a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("root_url", sa.Text(), nullable=True),
        sa.Column("not_found_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_domains_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domains")),
        sa.UniqueConstraint("host", name=op.f("uq_domains_host")),
    )
    op.create_index(op.f("ix_domains_workspace_id"), "domains", ["workspace_id"])
    # SQLite rebuilds the table for the constraints: ids must stay never reused.
    with op.batch_alter_table("links", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(
            sa.Column("domain", sa.String(length=253), server_default="", nullable=False)
        )
        batch.drop_constraint("uq_links_slug", type_="unique")
        batch.create_unique_constraint(batch.f("uq_links_domain_slug"), ["domain", "slug"])


def downgrade() -> None:
    with op.batch_alter_table("links", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("uq_links_domain_slug", type_="unique")
        batch.create_unique_constraint(batch.f("uq_links_slug"), ["slug"])
        batch.drop_column("domain")
    op.drop_index(op.f("ix_domains_workspace_id"), table_name="domains")
    op.drop_table("domains")
