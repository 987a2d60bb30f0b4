"""The dashboard's sessions. Signing in makes a session: a random token in a cookie signed
with the instance secret, and the token's hash in `dashboard_sessions`, tied to the API key
used. Every request looks both up, and the key too, so signing out ends that session alone,
and revoking the key ends all of its sessions, at once. Neither the cookie nor the table
holds anything that opens the API."""

import secrets
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app import auth
from app.api.deps import AppState, State, key_session
from app.core.clock import utcnow
from app.core.errors import AppError
from app.core.principal import Principal
from app.core.tables import ApiKey, DashboardSession
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
    db: AsyncSession, state: AppState, response: Response, principal: Principal
) -> None:
    """A new session of `principal`'s key (written in `db`), and its cookie on `response`."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await db.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
    db.add(
        DashboardSession(
            token_hash=auth.hash_token(token),
            key_id=principal.key_id,
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
    token = await token_of(request, state)
    if token is not None:
        await db.execute(
            delete(DashboardSession).where(DashboardSession.token_hash == auth.hash_token(token))
        )
    forget_cookie(state, response)


def forget_cookie(state: AppState, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/dashboard", httponly=True, samesite="strict", secure=_secure(state)
    )


class SignedOut(Exception):
    """No valid session: the browser is sent to the sign-in page."""


async def principal_of(request: Request, state: AppState) -> Principal:
    """The key of the browser's session. A cookie that is refused counts as a failed
    authentication of its client, as a wrong API key does (no cookie at all does not)."""
    await state.rate_limiter.guard_authentication(request)
    if not request.cookies.get(COOKIE):
        raise SignedOut
    token = await token_of(request, state)
    if token is None:  # tampered with, or too old
        await count_failure()
        raise SignedOut
    live_key = (
        select(ApiKey.token_hash)
        .join(DashboardSession, DashboardSession.key_id == ApiKey.id)
        .where(DashboardSession.token_hash == auth.hash_token(token))
        .where(DashboardSession.expires_at > utcnow())
    )
    async with key_session(state) as db:
        key_hash = await db.scalar(live_key)
        if key_hash is None:  # signed out, or lapsed
            await count_failure()
            raise SignedOut
        try:
            return await auth.authenticate_hash(db, key_hash)
        except AppError:  # revoked or expired since sign-in
            raise SignedOut from None


def signed_in(*needed: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the signed-in key, holding every scope in `needed` (as for the API)."""

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
