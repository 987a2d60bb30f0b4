"""Rate limits for API writes, per API key: in this process by default, shared by every
process through Redis when TAUTAN_REDIS_URL is set."""

import math
import time

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from app.errors import AppError


class RateLimiter:
    def __init__(self, limit: str, redis_url: str | None) -> None:
        self.limit = parse(limit)
        uri = "async+" + redis_url if redis_url else "async+memory://"
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri))

    async def hit(self, *identity: str) -> None:
        """Count one request of `identity`; 429 with Retry-After once over the limit."""
        if await self.limiter.hit(self.limit, *identity):
            return
        stats = await self.limiter.get_window_stats(self.limit, *identity)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise AppError(
            429, "rate_limited", f"over {self.limit} writes for this API key; retry later",
            headers={"Retry-After": str(retry_after)},
        )  # fmt: skip

    def close(self) -> None:
        """Drop the Redis connections (limits offers no close of its own)."""
        bridge = getattr(self.limiter.storage, "bridge", None)
        if bridge is not None:
            bridge.storage.connection_pool.disconnect()
