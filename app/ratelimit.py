"""Rate limits for API writes, per API key and per client address: in this process by
default, shared by every process through Redis when TAUTAN_REDIS_URL is set."""

import math
import time
from ipaddress import IPv6Network

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request

from app.clicks.enrich.network import ClientResolver
from app.config import Settings
from app.errors import AppError


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.per_key = parse(settings.write_rate_limit)
        self.per_address = parse(settings.write_rate_limit_per_ip)
        self.resolver = ClientResolver(settings.trusted_proxies)
        redis_url = settings.redis_url
        uri = "async+" + redis_url if redis_url else "async+memory://"
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri))

    async def hit_key(self, key_id: int) -> None:
        await self._hit(self.per_key, "this API key", "key", str(key_id))

    async def hit_client(self, request: Request) -> None:
        """Count a write of the request's client (behind trusted proxies, as for clicks)."""
        # A header on several lines is one list: the hop a proxy adds may be a line of its own.
        header = lambda name: ", ".join(request.headers.getlist(name))  # noqa: E731
        address = self.resolver.resolve(
            request.client.host if request.client else "",
            header("x-forwarded-for"),
            header("x-real-ip"),
            header("forwarded"),
        )
        if address is None:  # not an IP peer (a Unix socket): nothing to tell clients apart
            return
        # One host holds a whole /64 (IPv4-mapped addresses arrive as IPv4: parse_ip unmaps).
        if address.version == 6:
            address = IPv6Network((address, 64), strict=False).network_address
        await self._hit(self.per_address, "this client address", "ip", str(address))

    async def _hit(self, limit: RateLimitItem, whose: str, *identity: str) -> None:
        """Count one write of `identity`; 429 with Retry-After once over the limit."""
        if await self.limiter.hit(limit, *identity):
            return
        stats = await self.limiter.get_window_stats(limit, *identity)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise AppError(
            429, "rate_limited", f"over {limit} writes for {whose}; retry later",
            headers={"Retry-After": str(retry_after)},
        )  # fmt: skip

    def close(self) -> None:
        """Drop the Redis connections (limits offers no close of its own)."""
        bridge = getattr(self.limiter.storage, "bridge", None)
        if bridge is not None:
            bridge.storage.connection_pool.disconnect()
