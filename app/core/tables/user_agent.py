"""The raw User-Agents clicks came with."""

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tables.base import Base


class UserAgent(Base):
    """Each distinct raw User-Agent (with its client hints) clicks came with, kept once so
    that `tautan reenrich` can work their device fields out again after an update."""

    __tablename__ = "user_agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(32), unique=True)  # of user_agent + hints
    user_agent: Mapped[str] = mapped_column(String(512))
    client_hints: Mapped[str] = mapped_column(String(512))
