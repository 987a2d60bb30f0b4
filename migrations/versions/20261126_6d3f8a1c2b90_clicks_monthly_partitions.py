"""clicks monthly partitions

On PostgreSQL `clicks` becomes a table partitioned by month of `ts`, so retention can
drop a past month whole instead of deleting its rows one by one. The primary key of a
partitioned table must hold the partition key: it becomes (id, ts); ids still come from
the same sequence. Rows outside every monthly partition go to `clicks_default`. SQLite
has no partitions: there this migration does nothing.

Revision ID: 6d3f8a1c2b90
Revises: 4b9e2c7d1a05
Create Date: 2026-11-26 15:30:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "6d3f8a1c2b90"
down_revision: str | None = "4b9e2c7d1a05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 3  # partitions made beyond the current month; the app makes later ones
COLUMNS = (
    "id", "link_id", "workspace_id", "ts", "visitor_id", "new_visitor", "is_bot", "bot_name",
    "device_type", "os", "os_version", "browser", "browser_version", "device_brand",
    "device_model", "in_app", "referrer_url", "referrer_domain", "referrer_source", "country",
    "region", "city", "latitude", "longitude", "timezone", "language", "ip", "trigger",
)  # fmt: skip
INDEXES = {
    "ix_clicks_link_id_ts": ["link_id", "ts"],
    "ix_clicks_workspace_id_ts": ["workspace_id", "ts"],
    "ix_clicks_visitor_id": ["visitor_id"],
}


def _columns() -> list[sa.Column]:
    return [
        sa.Column(
            "id",
            sa.BigInteger(),
            server_default=sa.text("nextval('clicks_id_seq'::regclass)"),
            nullable=False,
        ),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visitor_id", sa.String(length=32), nullable=False),
        sa.Column("new_visitor", sa.Boolean(), server_default=sa.false(), nullable=False),
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
    ]


def _next_month(month: datetime) -> datetime:
    return month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)


def _copy_rows(source: str, target: str) -> None:
    columns = ", ".join(f'"{name}"' for name in COLUMNS)
    op.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {source}")


def _add_keys_and_indexes(table: str, primary_key: list[str]) -> None:
    # After the copy: one index build and one foreign key check beat a check per row.
    op.create_primary_key("pk_clicks", table, primary_key)
    op.create_foreign_key(
        "fk_clicks_link_id_links", table, "links", ["link_id"], ["id"], ondelete="CASCADE"
    )
    op.create_foreign_key(
        "fk_clicks_workspace_id_workspaces", table, "workspaces", ["workspace_id"], ["id"]
    )
    for name, columns in INDEXES.items():
        op.create_index(name, table, columns)


def _drop_keys_and_indexes(table: str) -> None:
    # Index and primary key names are unique per schema: the new table takes them over.
    for name in INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_constraint("pk_clicks", table, type_="primary")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE clicks RENAME TO clicks_unpartitioned")
    op.execute("ALTER SEQUENCE clicks_id_seq OWNED BY NONE")  # outlives the old table
    _drop_keys_and_indexes("clicks_unpartitioned")
    op.create_table("clicks", *_columns(), postgresql_partition_by="RANGE (ts)")
    op.execute("ALTER SEQUENCE clicks_id_seq OWNED BY clicks.id")

    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    months = {this_month}
    for _ in range(MONTHS_AHEAD):
        months.add(_next_month(max(months)))
    with_rows = op.get_bind().execute(
        sa.text("SELECT DISTINCT date_trunc('month', ts, 'UTC') FROM clicks_unpartitioned")
    )
    months |= {month.astimezone(UTC) for (month,) in with_rows}
    for month in sorted(months):
        op.execute(
            f"CREATE TABLE clicks_{month:%Y_%m} PARTITION OF clicks FOR VALUES "
            f"FROM ('{month.isoformat()}') TO ('{_next_month(month).isoformat()}')"
        )
    op.execute("CREATE TABLE clicks_default PARTITION OF clicks DEFAULT")

    _copy_rows("clicks_unpartitioned", "clicks")
    op.drop_table("clicks_unpartitioned")
    _add_keys_and_indexes("clicks", ["id", "ts"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE clicks RENAME TO clicks_partitioned")
    op.execute("ALTER SEQUENCE clicks_id_seq OWNED BY NONE")
    _drop_keys_and_indexes("clicks_partitioned")
    op.create_table("clicks", *_columns())
    op.execute("ALTER SEQUENCE clicks_id_seq OWNED BY clicks.id")
    _copy_rows("clicks_partitioned", "clicks")
    op.drop_table("clicks_partitioned")  # and its partitions with it
    _add_keys_and_indexes("clicks", ["id"])
