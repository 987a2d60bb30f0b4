"""Workspaces and API keys: tokens shown once and stored as a SHA-256 hash, scopes,
and the FastAPI dependency that turns a request's key into a `Principal`."""

import secrets
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import State, key_session
from app.audit import service as audit
from app.core.clock import utcnow
from app.core.errors import AppError, NotFound
from app.core.principal import DEFAULT_WORKSPACE, SCOPES, Principal
from app.core.tables import ApiKey, Workspace
from app.core.tokens import hash_token
from app.ratelimit import count_failure

TOKEN_PREFIX = "tk_"
# last_used_at is a hint for humans; writing it on every request would be a write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def parse_scopes(text: str) -> list[str]:
    scopes = [s.strip() for s in text.replace(",", " ").split() if s.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"unknown scopes {unknown or text!r}; choose from {', '.join(SCOPES)}")
    return scopes


async def get_or_create_workspace(session: AsyncSession, name: str) -> Workspace:
    workspace = await session.scalar(select(Workspace).where(Workspace.name == name))
    if workspace is None:
        workspace = Workspace(name=name)
        session.add(workspace)
        await session.flush()
    return workspace


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    scopes: list[str],
    workspace: str = DEFAULT_WORKSPACE,
    token: str | None = None,
    by: Principal | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its token; the token is not stored and cannot be shown again. Made
    `by` a person (or the command line), it is noted in the audit log, and holds no scope
    its maker does not (403: an owner makes no admin key)."""
    if by is not None and not by.may(*scopes):
        beyond = ", ".join(scope for scope in scopes if not by.may(scope))
        raise AppError(403, "forbidden", f"a key made here may not hold {beyond}")
    token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    owner = await get_or_create_workspace(session, workspace)
    key = ApiKey(
        workspace_id=owner.id,
        name=name,
        prefix=token[:10],
        token_hash=hash_token(token),
        scopes=" ".join(scopes),
    )
    session.add(key)
    await session.flush()
    if by is not None:
        details = {"name": name, "scopes": scopes}
        audit.record(session, by, "key.create", key_actor(key), details, workspace_id=owner.id)
    return key, token


async def ensure_admin_key(session: AsyncSession, token: str | None) -> str | None:
    """At start: make `TAUTAN_ADMIN_KEY` a working admin key, or, when the database has no
    key at all, create one. Returns a newly generated token (to print once), else None."""
    if token:
        if await session.scalar(select(ApiKey.id).where(ApiKey.token_hash == hash_token(token))):
            return None
        try:
            async with session.begin_nested():
                await create_key(
                    session, name="admin (TAUTAN_ADMIN_KEY)", scopes=["admin"], token=token
                )
        except IntegrityError:  # another worker inserted it first
            pass
        return None
    if await session.scalar(select(ApiKey.id).limit(1)) is not None:
        return None
    _, new_token = await create_key(session, name="admin", scopes=["admin"])
    return new_token


async def list_keys(session: AsyncSession, principal: Principal | None = None) -> list[ApiKey]:
    """Every key, oldest first; when a principal is given, those it may see (an owner:
    the workspace's keys but admin keys, which are the instance's, not the workspace's)."""
    query = select(ApiKey).where(*_keys_seen_by(principal)) if principal else select(ApiKey)
    return list(await session.scalars(query.order_by(ApiKey.id)))


def _keys_seen_by(principal: Principal) -> list[Any]:
    if principal.is_admin:
        return []
    return [*principal.sees(ApiKey), ApiKey.scopes.not_like("%admin%")]


async def list_keys_with_workspaces(session: AsyncSession) -> list[tuple[ApiKey, str]]:
    """Every key, oldest first, with the name of its workspace."""
    query = select(ApiKey, Workspace.name).join(Workspace, Workspace.id == ApiKey.workspace_id)
    return [(key, name) for key, name in await session.execute(query.order_by(ApiKey.id))]


async def revoke_key(session: AsyncSession, key_id: int, by: Principal | None = None) -> ApiKey:
    """Revoke a key `by` can see (no one given: the command line, any key); its calls stop."""
    by = by or Principal.operator()
    key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id, *_keys_seen_by(by)))
    if key is None:
        raise NotFound("API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(session, by, "key.revoke", key_actor(key), workspace_id=key.workspace_id)
    return key


# Declared as FastAPI security schemes so that OpenAPI (and /docs' Authorize) shows them;
# the 401 stays ours, in the error shape.
BEARER = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    header_key: Annotated[str | None, Depends(API_KEY_HEADER)],
    state: State,
) -> Principal:
    await state.rate_limiter.guard_authentication(request)
    token = (bearer.credentials.strip() if bearer else "") or header_key
    if not token:  # not counted as a failure: nothing was guessed
        raise AppError(
            401,
            "unauthorized",
            "an API key is required (Authorization: Bearer …)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    async with key_session(state) as session:
        return await authenticate_hash(session, hash_token(token))


async def authenticate_hash(session: AsyncSession, token_hash: str) -> Principal:
    """The principal of a live key, found by its token's hash (and its last use noted);
    401 when the key is unknown, revoked or expired, counted as a failed authentication."""
    key = await session.scalar(select(ApiKey).where(ApiKey.token_hash == token_hash))
    now = utcnow()
    if key is None or not _is_live(key, now):
        # Revoked and expired keys count too: the answer is the same as for a guess, so
        # that it tells nobody which keys exist.
        await count_failure()
        raise AppError(
            401,
            "unauthorized",
            "the API key is invalid, revoked or expired",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if _last_used_is_stale(key, now):
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return Principal(
        key.workspace_id, frozenset(key.scope_list), actor=key_actor(key), key_id=key.id
    )


def key_actor(key: ApiKey) -> str:
    """How the audit log names a key: its id and name (its token is never shown again)."""
    return f"key {key.id} ({key.name})"


def _is_live(key: ApiKey, now: datetime) -> bool:
    return not key.revoked_at and not (key.expires_at and key.expires_at <= now)


def _last_used_is_stale(key: ApiKey, now: datetime) -> bool:
    return key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION


def require_scopes(*needed: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller's key must hold every scope in `needed` (or `admin`)."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        return check_scopes(principal, *needed)

    return dependency


def check_scopes(principal: Principal, *needed: str) -> Principal:
    """`principal` when its key holds every scope in `needed` (or `admin`), else 403."""
    if principal.may(*needed):
        return principal
    caller = "this API key" if principal.key_id is not None else "your role in this workspace"
    missing = " ".join(scope for scope in needed if scope not in principal.scopes)
    raise AppError(403, "forbidden", f"{caller} lacks the scope {missing}")
