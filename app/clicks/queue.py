"""Raw clicks as the redirect hands them over, and the in-process queue the writer drains."""

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass

# The client hints a click keeps (Chromium sends them once the redirect asks: see
# TAUTAN_CLIENT_HINTS), each cut to MAX_HINT_LENGTH characters.
HINT_HEADERS = (
    "sec-ch-ua-model",
    "sec-ch-ua-platform",
    "sec-ch-ua-platform-version",
    "sec-ch-ua-mobile",
)
MAX_HINT_LENGTH = 100


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
    # The device's client hints (HINT_HEADERS), one `name: value` line each.
    client_hints: str = ""


class ClickQueue:
    """A bounded FIFO. `put` never blocks the redirect: when the queue is full it returns
    False and the caller spools the click instead."""

    def __init__(self, *, batch: int, maxsize: int) -> None:
        self.batch = batch
        self.maxsize = maxsize
        self._items: deque[RawClick] = deque()
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, click: RawClick) -> bool:
        if len(self._items) >= self.maxsize:
            return False
        self._items.append(click)
        if len(self._items) >= self.batch:
            self._wake.set()
        return True

    def take(self, limit: int) -> list[RawClick]:
        items = self._items
        return [items.popleft() for _ in range(min(limit, len(items)))]

    async def wait(self, timeout: float) -> None:
        """Until a full batch is queued, `wake()` is called, or `timeout` seconds pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()
