"""The dashboard's session: the hash of the API key a marketer signed in with, in a
cookie signed with the instance secret, and the dependencies that check it. The key is
looked up again on every request, so revoking it signs the browser out at once; the cookie
holds no token, so a copy of it is no API key."""

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from app import auth
from app.auth import Principal
from app.errors import AppError

COOKIE = "tautan_session"
MAX_AGE_S = 7 * 24 * 3600
SALT = "tautan.dashboard.session"  # keeps these signatures apart from any other use of the secret


async def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(await request.app.state.secret_key.get(), salt=SALT)


async def key_hash_of(request: Request) -> str | None:
    """The signed-in key's hash, or None when there is no cookie or it was tampered with or
    is older than MAX_AGE_S."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    try:
        key_hash = (await _serializer(request)).loads(cookie, max_age=MAX_AGE_S)
    except BadSignature:  # also SignatureExpired
        return None
    return key_hash if isinstance(key_hash, str) else None


def _secure(request: Request) -> bool:
    return urlsplit(request.app.state.settings.base_url).scheme == "https"


async def sign_in(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        (await _serializer(request)).dumps(auth.hash_token(token)),
        max_age=MAX_AGE_S,
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def sign_out(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/dashboard", httponly=True, samesite="strict", secure=_secure(request)
    )


class SignedOut(Exception):
    """No valid session: the browser is sent to the sign-in page."""


async def principal_of(request: Request) -> Principal:
    key_hash = await key_hash_of(request)
    if key_hash is None:
        raise SignedOut
    try:
        return await auth.authenticate_hash(request.app.state.sessionmaker, key_hash)
    except AppError:  # revoked or expired since sign-in
        raise SignedOut from None


def signed_in(*needed: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency: the signed-in key, holding every scope in `needed` (as for the API)."""

    async def dependency(request: Request) -> Principal:
        return auth.check_scopes(await principal_of(request), *needed)

    return dependency


async def same_origin(request: Request) -> None:
    """Forms are posted from the dashboard itself, never from another site (the cookie is
    SameSite=Strict too; this also covers the sign-in form, which has no cookie yet)."""
    origin = request.headers.get("origin")
    # Behind a proxy the Host header may be the proxy's upstream: the public origin is
    # TAUTAN_BASE_URL's.
    ours = {request.headers.get("host"), urlsplit(request.app.state.settings.base_url).netloc}
    if origin is not None and urlsplit(origin).netloc not in ours:
        raise AppError(403, "cross_origin", "this form can only be sent from the dashboard")
