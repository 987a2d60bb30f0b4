"""Raw clicks as the redirect hands them over, and the in-process queue the writer drains."""

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class RawClick:
    """A redirect as it was received: nothing parsed, nothing looked up yet."""

    link_id: int
    workspace_id: int
    ts: float  # seconds since the epoch, when the redirect was served
    peer: str  # the TCP peer; the client IP is resolved from it and the headers below
    user_agent: str
    referer: str
    accept_language: str
    forwarded_for: str
    real_ip: str
    forwarded: str
    trigger: str  # link | qr


class ClickQueue:
    """A bounded FIFO. `put` never blocks the redirect: when the queue is full it reports
    False and the caller spools the click instead."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[RawClick] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, click: RawClick) -> bool:
        if len(self._items) >= self.maxsize:
            return False
        self._items.append(click)
        if len(self._items) == 1:
            self._ready.set()
        return True

    def take(self, limit: int) -> list[RawClick]:
        items = self._items
        batch = [items.popleft() for _ in range(min(limit, len(items)))]
        if not items:
            self._ready.clear()
        return batch

    async def wait(self, timeout: float) -> None:
        """Until something is queued or `timeout` seconds have passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
