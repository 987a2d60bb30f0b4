"""Batches of clicks on their way to ClickHouse (app/clicks/store/clickhouse.py)."""

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tables.base import Base, UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY.
BatchId = BigInteger().with_variant(Integer, "sqlite")


class ClickHouseBatch(Base):
    """A batch's click rows as ClickHouse inserts them (an Arrow stream; JSON rows from
    earlier versions), kept in the writer's transaction with the log positions they came
    from, and deleted once ClickHouse holds them. `token` names the insert: ClickHouse
    stores a batch sent twice once."""

    __tablename__ = "clickhouse_batches"

    id: Mapped[int] = mapped_column(BatchId, primary_key=True)  # the clicks' ids start from it
    token: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[bytes] = mapped_column(LargeBinary)
