"""The daily salts of visitor ids."""

from datetime import date

from sqlalchemy import Date, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tables.base import Base


class VisitorSalt(Base):
    """The salt of one UTC day's visitor ids. Deleted two days later, after which that
    day's visitor ids can no longer be linked to an IP and User-Agent."""

    __tablename__ = "visitor_salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
