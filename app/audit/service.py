"""The audit log: every write to a workspace's links, domains, keys, members and UTM
templates, recorded by the service that makes it, in the same transaction (a write that
is rolled back leaves no entry), and read back by owners."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.principal import Principal
from app.core.tables import AuditEvent

MAX_TEXT = 300  # an actor or a target is cut to the column's length


def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
    *,
    workspace_id: int,
) -> None:
    """Note `action` (e.g. `link.update`) on `target` (a slug, host, email, key or
    template name) by `principal`, in the workspace of the thing acted on (an admin acts
    in every one). `details` holds the fields given, never a secret."""
    session.add(
        AuditEvent(
            ts=utcnow(),
            workspace_id=workspace_id,
            actor=principal.actor[:MAX_TEXT],
            action=action,
            target=target[:MAX_TEXT],
            details=details or None,
        )
    )


async def events(
    session: AsyncSession,
    principal: Principal,
    *,
    workspace_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """The newest entries first, of the caller's workspace (an admin's: every one, or
    `workspace_id`'s); `action` matches a whole action or its kind (`link`)."""
    query = select(AuditEvent).where(*principal.sees(AuditEvent))
    if workspace_id is not None:
        query = query.where(AuditEvent.workspace_id == workspace_id)
    if since is not None:
        query = query.where(AuditEvent.ts >= since)
    if until is not None:
        query = query.where(AuditEvent.ts <= until)
    if action:
        query = query.where(
            (AuditEvent.action == action)
            | AuditEvent.action.startswith(f"{action}.", autoescape=True)
        )
    if actor:
        query = query.where(AuditEvent.actor == actor)
    query = query.order_by(AuditEvent.ts.desc(), AuditEvent.id.desc()).limit(limit)
    return list(await session.scalars(query))


def moment_of(text: str | None, end: str) -> datetime | None:
    """A `from` or `to` filter as a UTC moment: an ISO date is its day's first moment (for
    `to`, its last), a datetime without an offset is UTC. ValueError for anything else."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = datetime.combine(date.fromisoformat(text), time.min, UTC)
            return day + timedelta(days=1, microseconds=-1) if end == "to" else day
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{end}: not an ISO date or datetime: {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
