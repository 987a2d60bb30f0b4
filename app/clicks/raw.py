"""Raw clicks as the redirect hands them over, and their form in the click log."""

from dataclasses import dataclass, fields
from operator import attrgetter

import orjson

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


_as_row = attrgetter(*(f.name for f in fields(RawClick)))  # far cheaper than astuple


def encode(click: RawClick) -> bytes:
    """The click as one line of the log: a JSON array of its fields, in order."""
    return orjson.dumps(_as_row(click)) + b"\n"


def decode(line: bytes) -> RawClick:
    """The click of a log line; ValueError or TypeError when the line is not one. Read by
    position: a line logged before a field was added lacks that (last) field."""
    return RawClick(*orjson.loads(line))
