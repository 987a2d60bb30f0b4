"""How far each segment of the click log is written."""

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tables.base import Base


class LogOffset(Base):
    """How far the click log's segment `segment` is written (bytes), committed in the same
    transaction as its clicks: where a writer resumes, so that none is written twice."""

    __tablename__ = "click_log_offsets"

    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
