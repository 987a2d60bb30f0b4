"""A person who signs in to the dashboard: an email, and a password kept as an argon2id
hash (none until the person sets one through a one-time link).

`bound_workspace_id`: the password was set through a link a workspace's owner was shown
(no mail): that owner could have chosen it, so the account may join no other workspace
but by an admin's hand, who then has it set again."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.tables.base import Base, UTCDateTime


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lowercased
    password_hash: Mapped[str | None] = mapped_column(String(200))
    bound_workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
