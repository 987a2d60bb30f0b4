"""Every table, imported in one place so `Base.metadata` is complete (Alembic, tests)."""

from app.auth import ApiKey, Workspace
from app.clicks.models import Click, VisitorSalt
from app.clicks.rollups import RollupDay, RollupHour
from app.links.models import Link, LinkTag

__all__ = [
    "ApiKey",
    "Click",
    "Link",
    "LinkTag",
    "RollupDay",
    "RollupHour",
    "VisitorSalt",
    "Workspace",
]
