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
    # The name of the link's rule or variant that chose the destination; "": its own url.
    route: str = ""


_as_row = attrgetter(*(f.name for f in fields(RawClick)))  # far cheaper than astuple


def encode(click: RawClick) -> bytes:
    """The click as one line of the log: a JSON array of its fields, in order."""
    return orjson.dumps(_as_row(click)) + b"\n"


# Each field's type, in order (`ts` may be written as an integer), with or without the last
# fields (a line logged before client_hints, or route, was added). A line that is JSON but not a click
# of these types (a disk's stray bytes that happen to parse) must be refused here: past this
# point it would fail every batch it is in, for ever.
_TEXTS = (str,) * 8
_CLICK_TYPES = frozenset(
    (int, int, ts, *_TEXTS[:texts]) for ts in (int, float) for texts in (6, 7, 8)
)
_LATEST_TS = 32_503_680_000  # the year 3000: a time past it is no click's


def decode(line: bytes) -> RawClick:
    """The click of a log line; ValueError when the line is not one. Read by position: a
    line logged before a field was added lacks that (last) field."""
    values = orjson.loads(line)
    if (
        type(values) is not list
        or tuple(map(type, values)) not in _CLICK_TYPES
        or not 0 <= values[2] < _LATEST_TS
    ):
        raise ValueError(f"not a click: {line[:80]!r}")
    return RawClick(*values)
