"""Every table, one module each, imported here so that `Base.metadata` is complete
(Alembic, tests) and relationships between them resolve: import them from this package."""

from app.core.tables.api_key import ApiKey
from app.core.tables.audit_event import AuditEvent
from app.core.tables.base import Base
from app.core.tables.click import Click
from app.core.tables.clickhouse_batch import ClickHouseBatch
from app.core.tables.dashboard_session import DashboardSession
from app.core.tables.domain import Domain
from app.core.tables.instance_secret import InstanceSecret
from app.core.tables.link import UTM_FIELDS, Link
from app.core.tables.link_tag import LinkTag
from app.core.tables.log_offset import LogOffset
from app.core.tables.membership import Membership
from app.core.tables.password_token import PasswordToken
from app.core.tables.report import Report, ReportLink
from app.core.tables.rollup_day import RollupDay
from app.core.tables.rollup_hour import RollupHour
from app.core.tables.stream_entry import StreamEntry
from app.core.tables.user import User
from app.core.tables.user_agent import UserAgent
from app.core.tables.utm_template import UtmTemplate
from app.core.tables.visitor_day import VisitorDay
from app.core.tables.visitor_salt import VisitorSalt
from app.core.tables.workspace import Workspace

__all__ = [
    "UTM_FIELDS", "ApiKey", "AuditEvent", "Base", "Click", "ClickHouseBatch", "DashboardSession",
    "Domain", "InstanceSecret", "Link", "LinkTag", "LogOffset", "Membership", "PasswordToken",
    "Report", "ReportLink", "RollupDay", "RollupHour", "StreamEntry", "User", "UserAgent", "UtmTemplate", "VisitorDay",
    "VisitorSalt", "Workspace",
]  # fmt: skip
