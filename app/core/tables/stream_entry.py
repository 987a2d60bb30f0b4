"""Entries of the click stream already written."""

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tables.base import Base


class StreamEntry(Base):
    """An entry of the Redis Stream click log (id `ms-seq`) whose clicks are written,
    committed in the same transaction as they are: an entry handed out again (its writer
    died before acknowledging it) is recognised, and none of its clicks written twice.
    Rows are kept an hour after they are written, and longer while their entry is still
    pending (app/clicks/stream.py)."""

    __tablename__ = "click_stream_entries"

    ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # When it was written (ms since the epoch): an entry may be written long after it was
    # added (its id's time), when writers were behind.
    written_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
