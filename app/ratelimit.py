"""Rate limits per API key and per client address: API writes, and failed authentication
on every route that checks a key or a dashboard session. In this process by default,
shared by every process through Redis when TAUTAN_REDIS_URL is set."""

import math
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from functools import partial
from ipaddress import IPv6Network
from typing import NoReturn

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request

from app.config import Settings
from app.core.client_ip import ClientResolver
from app.core.errors import AppError
from app.core.principal import Principal

# What to do when the request being served presents a key or a dashboard session that is
# refused: guard_authentication() sets it before the check, to count the failure against
# the client's address. A context variable, because each request runs in a context of its
# own, and the code that finds a key refused is not given the request.
ON_FAILURE: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "tautan_auth_on_failure", default=None
)


async def count_failure() -> None:
    """Count a refused key or session of the request being served against its client
    (nothing when no rate limiter guards the request, as in the command line)."""
    count = ON_FAILURE.get()
    if count is not None:
        await count()


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.per_key = parse(settings.write_rate_limit)
        self.per_address = parse(settings.write_rate_limit_per_ip)
        self.failures_per_address = parse(settings.auth_failure_rate_limit)
        self.passwords_per_address = parse(settings.password_rate_limit)
        self.sign_in_failures_per_account = parse(settings.sign_in_rate_limit)
        self.report_reads_per_address = parse(settings.report_rate_limit)
        self.resolver = ClientResolver(settings.trusted_proxies)
        redis_url = settings.redis_url
        uri = "async+" + redis_url if redis_url else "async+memory://"
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri))

    async def hit_caller(self, principal: Principal) -> None:
        """Count a write of a key or a signed-in user (the command line is not limited)."""
        if principal.rate_limited_as is not None:
            whose = "this API key" if principal.key_id is not None else "this account"
            await self._hit(self.per_key, whose, "caller", principal.rate_limited_as)

    async def hit_client(self, request: Request) -> None:
        """Count a write of the request's client. API writes and the dashboard's sign-in
        call this before their key is checked, so it guards that check as well."""
        await self.guard_authentication(request)
        address = self.client_address(request)
        if address is not None:
            await self._hit(self.per_address, "this client address", "ip", address)

    async def guard_authentication(self, request: Request) -> None:
        """Before a key or a session is checked: 429 when the request's client has failed
        authentication too often, even if this key is right (else guessing would go on as
        long as a guess is sometimes right); otherwise a failed check counts against it."""
        if getattr(request.state, "auth_guarded", False):  # once per request is enough
            return
        request.state.auth_guarded = True
        address = self.client_address(request)
        if address is None:
            return
        ON_FAILURE.set(partial(self._count_failure, address))
        if not await self.limiter.test(self.failures_per_address, "auth", address):
            await self._refuse(
                self.failures_per_address,
                f"over {self.failures_per_address} failed authentications from this client "
                "address; check the API key (or sign in again), then retry after Retry-After "
                "seconds",
                "auth",
                address,
            )

    async def sign_in_wait(self, email: str) -> int | None:
        """None while the account may be tried; else the seconds until it may again (after
        too many failed sign-ins to it, from anywhere)."""
        limit = self.sign_in_failures_per_account
        if await self.limiter.test(limit, "sign-in", email):
            return None
        return await self._retry_after(limit, "sign-in", email)

    async def count_sign_in_failure(self, email: str) -> None:
        await self.limiter.hit(self.sign_in_failures_per_account, "sign-in", email)

    async def count_reset_mail(self, email: str) -> bool:
        """Count a mailed password reset of an account: False (not to be sent) past the
        sign-in limit, so that nobody can fill a person's inbox with them."""
        return await self.limiter.hit(self.sign_in_failures_per_account, "reset", email)

    async def hit_password(self, request: Request, link_id: int) -> int | None:
        """Count a password attempt of the request's client on a link: None while under the
        limit, else the seconds until another may be made."""
        address = self.client_address(request) or ""
        limit = self.passwords_per_address
        if await self.limiter.hit(limit, "password", str(link_id), address):
            return None
        return await self._retry_after(limit, "password", str(link_id), address)

    async def hit_report_read(self, request: Request) -> None:
        """Count a read of a client report by the request's client; 429 past the limit."""
        address = self.client_address(request)
        if address is None:
            return
        limit = self.report_reads_per_address
        if not await self.limiter.hit(limit, "report", address):
            message = f"over {limit} report reads for this client address; retry later"
            await self._refuse(limit, message, "report", address)

    async def _count_failure(self, address: str) -> None:
        await self.limiter.hit(self.failures_per_address, "auth", address)

    def client_address(self, request: Request) -> str | None:
        """The request's client as the limits count it: behind trusted proxies, as for
        clicks; an IPv6 client per /64; None for a peer that is not an IP address (a Unix
        socket), where nothing tells clients apart."""
        # A header on several lines is one list: the hop a proxy adds may be a line of its own.
        header = lambda name: ", ".join(request.headers.getlist(name))  # noqa: E731
        address = self.resolver.resolve(
            request.client.host if request.client else "",
            header("x-forwarded-for"),
            header("x-real-ip"),
            header("forwarded"),
        )
        if address is None:
            return None
        # One host holds a whole /64 (IPv4-mapped addresses arrive as IPv4: parse_ip unmaps).
        if address.version == 6:
            address = IPv6Network((address, 64), strict=False).network_address
        return str(address)

    async def _hit(self, limit: RateLimitItem, whose: str, *identity: str) -> None:
        """Count one write of `identity`; 429 with Retry-After once over the limit."""
        if not await self.limiter.hit(limit, *identity):
            await self._refuse(limit, f"over {limit} writes for {whose}; retry later", *identity)

    async def _refuse(self, limit: RateLimitItem, message: str, *identity: str) -> NoReturn:
        """429, with Retry-After."""
        retry_after = await self._retry_after(limit, *identity)
        raise AppError(429, "rate_limited", message, headers={"Retry-After": str(retry_after)})

    async def _retry_after(self, limit: RateLimitItem, *identity: str) -> int:
        """Seconds until the oldest hit in the window leaves it."""
        stats = await self.limiter.get_window_stats(limit, *identity)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def close(self) -> None:
        """Drop the Redis connections (limits offers no close of its own)."""
        bridge = getattr(self.limiter.storage, "bridge", None)
        if bridge is not None:
            bridge.storage.connection_pool.disconnect()
