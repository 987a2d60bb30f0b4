"""Which visitors a link has seen on each UTC day."""

from datetime import date

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tables.base import Base


class VisitorDay(Base):
    """Each visitor seen on a link in a UTC day: a click whose row the writer inserts here
    is the visitor's first of the day (`new_visitor`). Writers in parallel agree on which
    through the primary key alone (insert or ignore), with no lock of their own. Rows go
    with the day's salt, after which their visitor ids mean nothing."""

    __tablename__ = "visitor_days"

    link_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # ids are never reused
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(32), primary_key=True)
