"""The spool of the versions before the click log: `*.jsonl` files in TAUTAN_SPOOL_DIR where
clicks waited while the database was down. A writer converts each into a sealed segment
of the click log at its start, once: its lines hold the TCP peer and the forwarding
headers, from which the intake makes what the log keeps (the address as the store may
keep it, and its keyed digest).

Exactly once: the segment is written under a `.new` name and made durable, then the old
file is removed, then the segment is renamed into the log. A conversion cut short is done
again from the old file; one cut after the old file went is finished by the rename."""

import contextlib
import fcntl
import logging
import os
from pathlib import Path

import orjson

from app.clicks.intake import ClientIntake
from app.clicks.log import NEW, SEALED
from app.clicks.raw import RawClick, encode

log = logging.getLogger(__name__)
OLD = ".jsonl"
CONVERTED = "-jsonl"  # the end of a converted segment's key: `<old file's name>-jsonl`
# An old line: link_id, workspace_id, ts, peer, user_agent, referer, accept_language,
# forwarded_for, real_ip, forwarded, trigger, and (from a later version on) client_hints.
_OLD_TYPES = frozenset((int, int, ts, *(str,) * texts) for ts in (int, float) for texts in (8, 9))


def old_spool_files(directory: str) -> list[Path]:
    return sorted(Path(directory).glob(f"*{OLD}"))


def convert_old_spool(directory: str, intake: ClientIntake) -> int:
    """Convert every old spool file no other process holds; the clicks converted."""
    folder = Path(directory)
    for new in folder.glob(f"*{CONVERTED}{NEW}"):
        if not (folder / f"{new.name.removesuffix(CONVERTED + NEW)}{OLD}").exists():
            # Written, and its old file removed: only the rename is left.
            with contextlib.suppress(FileNotFoundError):
                new.rename(new.with_suffix(SEALED))
    return sum(_convert(path, intake) for path in old_spool_files(directory))


def _convert(old: Path, intake: ClientIntake) -> int:
    try:
        file = old.open("rb")
    except FileNotFoundError:  # converted by another writer meanwhile
        return 0
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # an older process still appends to it, or another converts it
            return 0
        if not old.exists():  # converted by another writer between open and lock
            return 0
        clicks = [click for line in file if (click := _click_of(line, intake)) is not None]
        new = old.with_name(f"{old.stem}{CONVERTED}{NEW}")
        fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(encode(click) for click in clicks))
            os.fsync(fd)
        finally:
            os.close(fd)
        old.unlink()
        _sync(old.parent)  # the old file is gone for good before the segment shows
        new.rename(new.with_suffix(SEALED))
    log.info("converted %d clicks of the older spool file %s", len(clicks), old.name)
    return len(clicks)


def _click_of(line: bytes, intake: ClientIntake) -> RawClick | None:
    """The click of an old line; None for a line that is none (a cut or garbled one) or
    one from an ignored address."""
    try:
        values = orjson.loads(line)
    except ValueError:
        return None
    if type(values) is not list or tuple(map(type, values)) not in _OLD_TYPES:
        return None
    link_id, workspace_id, ts, peer, agent, referer, language, xff, real_ip, fwd, trigger = values[
        :11
    ]
    client = intake.client(peer, xff, real_ip, fwd)
    if client is None:  # TAUTAN_IGNORE_IPS
        return None
    hints = values[11] if len(values) > 11 else ""
    return RawClick(link_id, workspace_id, ts, *client, agent, referer, language, trigger, hints)


def _sync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
