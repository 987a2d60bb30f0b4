"""links ids never reused (SQLite)

Revision ID: 0b7e5d2c4a61
Revises: 6d3f8a1c2b90
Create Date: 2026-11-26 17:40:00

SQLite gives a new row the highest id plus one, so the id of the newest link, once that
link is purged, went to the next link made. AUTOINCREMENT never hands an id out twice.
PostgreSQL's sequence never did.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0b7e5d2c4a61"
down_revision: str | None = "6d3f8a1c2b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_links(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "links", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild_links(autoincrement=True)


def downgrade() -> None:
    _rebuild_links(autoincrement=False)
