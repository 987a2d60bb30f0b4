"""Every table, imported in one place so `Base.metadata` is complete (Alembic, tests)."""

from app.auth import ApiKey, Workspace
from app.clicks.models import Click, VisitorSalt
from app.clicks.rollups import RollupDay, RollupHour
from app.dashboard.session import DashboardSession
from app.links.models import Link, LinkTag
from app.secret_key import InstanceSecret

__all__ = [
    "ApiKey",
    "InstanceSecret",
    "Click",
    "DashboardSession",
    "Link",
    "LinkTag",
    "RollupDay",
    "RollupHour",
    "VisitorSalt",
    "Workspace",
]
