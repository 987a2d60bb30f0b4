"""Every table, imported in one place so `Base.metadata` is complete (Alembic, tests)."""

from app.auth import ApiKey, Workspace
from app.links.models import Link, LinkTag

__all__ = ["ApiKey", "Link", "LinkTag", "Workspace"]
