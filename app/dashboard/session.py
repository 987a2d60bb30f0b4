"""The dashboard's sessions. A person signs in with email and password; that makes a
session: a random token in a cookie signed with the instance secret, and the token's hash
in `dashboard_sessions`, with the user and the workspace the user is looking at. Every
request looks up the session and the user's role in that workspace, so signing out ends
that session alone, a password reset ends all of the user's sessions, and a changed or
removed membership counts from the next request on. Neither the cookie nor the table
holds anything that opens the API."""

import secrets
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app import auth
from app.accounts import service as accounts
from app.api.deps import AppState, State, key_session
from app.core.clock import utcnow
from app.core.errors import AppError
from app.core.principal import Principal
from app.core.tables import DashboardSession, User
from app.core.tokens import hash_token
from app.ratelimit import count_failure

COOKIE = "tautan_session"
MAX_AGE_S = 7 * 24 * 3600
SALT = "tautan.dashboard.session"  # keeps these signatures apart from any other use of the secret


async def _serializer(state: AppState) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(await state.secret_key.get(), salt=SALT)


async def token_of(request: Request, state: AppState) -> str | None:
    """The session token in the cookie, or None when there is none, or it was tampered with
    or is older than MAX_AGE_S."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    try:
        token = (await _serializer(state)).loads(cookie, max_age=MAX_AGE_S)
    except BadSignature:  # also SignatureExpired
        return None
    return token if isinstance(token, str) else None


def _secure(state: AppState) -> bool:
    return urlsplit(state.settings.base_url).scheme == "https"


async def sign_in(
    db: AsyncSession, state: AppState, request: Request, response: Response, user_id: int,
    workspace_id: int,
) -> None:  # fmt: skip
    """A new session of the user, in `workspace_id` (written in `db`), and its cookie on
    `response`. The browser's session before it, if any, ends: its cookie is replaced."""
    await _end(db, state, request)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await db.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
    db.add(
        DashboardSession(
            token_hash=hash_token(token),
            user_id=user_id,
            workspace_id=workspace_id,
            expires_at=now + timedelta(seconds=MAX_AGE_S),
        )
    )
    response.set_cookie(
        COOKIE,
        (await _serializer(state)).dumps(token),
        max_age=MAX_AGE_S,
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=_secure(state),
    )


async def sign_out(db: AsyncSession, state: AppState, request: Request, response: Response) -> None:
    """End this browser's session: a copy of its cookie opens nothing from now on."""
    await _end(db, state, request)
    forget_cookie(state, response)


async def _end(db: AsyncSession, state: AppState, request: Request) -> None:
    token = await token_of(request, state)
    if token is not None:
        await db.execute(
            delete(DashboardSession).where(DashboardSession.token_hash == hash_token(token))
        )


def forget_cookie(state: AppState, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/dashboard", httponly=True, samesite="strict", secure=_secure(state)
    )


class SignedOut(Exception):
    """No valid session: the browser is sent to the sign-in page."""


async def principal_of(request: Request, state: AppState) -> Principal:
    """The signed-in user, with the role of the workspace the session is in. A cookie that
    is refused counts as a failed authentication of its client, as a wrong API key does
    (no cookie does not). The user's workspaces are kept on `request.state.workspaces`,
    for the switcher."""
    await state.rate_limiter.guard_authentication(request)
    if not request.cookies.get(COOKIE):
        raise SignedOut
    token = await token_of(request, state)
    if token is None:  # tampered with, or too old
        await count_failure()
        raise SignedOut
    token_hash = hash_token(token)
    async with key_session(state) as db:
        row = (
            await db.execute(
                select(DashboardSession, User)
                .join(User, User.id == DashboardSession.user_id)
                .where(DashboardSession.token_hash == token_hash)
                .where(DashboardSession.expires_at > utcnow())
            )
        ).first()
        if row is None:  # signed out, lapsed, or ended by a reset
            await count_failure()
            raise SignedOut
        live, user = row
        workspaces = await accounts.workspaces_of(db, user.id)
    roles = {workspace.id: role for workspace, role in workspaces}
    if live.workspace_id not in roles:  # removed from it (which also ends the session)
        raise SignedOut
    request.state.workspaces = workspaces
    return Principal.of_user(user.id, user.email, live.workspace_id, roles[live.workspace_id])


async def switch_workspace(
    db: AsyncSession, state: AppState, request: Request, workspace_id: int
) -> None:
    """Look at another of the user's workspaces (403 when not a member of it)."""
    await principal_of(request, state)  # signed in: the session and its user's workspaces
    if workspace_id not in {workspace.id for workspace, _ in request.state.workspaces}:
        raise AppError(403, "forbidden", "you are not a member of that workspace")
    token = await token_of(request, state)
    assert token is not None
    await db.execute(
        update(DashboardSession)
        .where(DashboardSession.token_hash == hash_token(token))
        .values(workspace_id=workspace_id)
    )


def signed_in(*needed: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the signed-in user, whose role holds every scope in `needed`."""

    async def dependency(request: Request, state: State) -> Principal:
        return auth.check_scopes(await principal_of(request, state), *needed)

    return dependency


async def same_origin(request: Request, state: State) -> None:
    """Forms are posted from the dashboard itself, never from another site (the cookie is
    SameSite=Strict too; this also covers the sign-in form, which has no cookie yet).

    Browsers send `Origin` with every POST; where one is missing (an old browser, a proxy
    or an extension that strips it), the `Referer` says where the form was, and the pages
    send it to themselves (Referrer-Policy: same-origin). A POST with neither could come
    from anywhere, so it is refused too."""
    # Behind a proxy the Host header may be the proxy's upstream: the public origin is
    # TAUTAN_BASE_URL's. An empty Host would match the empty netloc of `Origin: null`.
    ours = {request.headers.get("host"), urlsplit(state.settings.base_url).netloc}
    ours.discard("")
    sender = request.headers.get("origin", request.headers.get("referer"))
    if sender is None:
        raise AppError(
            403,
            "cross_origin",
            "this form can only be sent from the dashboard, and the browser sent neither "
            "Origin nor Referer to show it was: allow the Referer for this site (a privacy "
            "extension or setting may remove it)",
        )
    if urlsplit(sender).netloc not in ours:
        raise AppError(403, "cross_origin", "this form can only be sent from the dashboard")
