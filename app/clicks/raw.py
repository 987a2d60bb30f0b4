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
    """A redirect as the click log keeps it: headers cut short, the client's address
    resolved and cut as the store may keep it; nothing else parsed or looked up yet."""

    link_id: int
    workspace_id: int
    ts: float  # seconds since the epoch, when the redirect was served
    # The client's address as the log may keep it (app/clicks/intake.py), and a keyed digest
    # of the whole address, for the visitor id.
    ip: str
    visitor_key: str
    user_agent: str
    referer: str
    accept_language: str
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
