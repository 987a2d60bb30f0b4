"""Embedded ClickHouse (chdb) for `chdb:///DIR`. A chdb folder can be open in one process
only (a second one fails with `Code: 36 … EmbeddedServer`), and a process can hold one
folder at a time. So one process owns DIR: the first that needs it and takes the lock
`DIR/owner.lock`. It runs the statements of every other process of the machine, which
send them through the Unix socket `DIR/owner.sock`. When the owner exits or is killed, the
lock is free; the next process that needs the store takes it over. An insert cut short by
that is sent again: its token keeps it from being stored twice."""

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import struct
import time
from pathlib import Path
from typing import Any

from app.clickhouse.client import (
    ClickHouse,
    ClickHouseError,
    insert_settings,
    parameter_text,
    quoted,
)

log = logging.getLogger(__name__)
ATTEMPTS = 40  # about 10 s in all: an owner killed mid-statement is replaced meanwhile
PAUSE_S = 0.25
# Longer than any statement of Tautan's takes (a batch's insert, a CSV page, a migration):
# an owner alive that never answers is said, not waited for without end.
ANSWER_TIMEOUT_S = 300.0
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
LENGTH = struct.Struct("!I")
OK, FAILED = b"+", b"-"
INSERTS = "inserts"  # the folder's subfolder of binary bodies on their way in
STALE_INSERT_S = 60.0


class _Owner:
    """This process's hold on a folder: the chdb session, and the socket the other
    processes reach it by."""

    def __init__(self, folder: Path, lock: int) -> None:
        from chdb import session  # only where chdb:/// is configured

        self.folder, self.lock, self.users = folder, lock, 0
        self.session = session.Session(str(folder / "data"))
        self.server: asyncio.Server | None = None

    def run(self, sql: str, params: dict[str, str], fmt: str | None, body: bytes | None) -> bytes:
        text = sql if body is None else sql + "\n" + body.decode()
        try:
            result = self.session.query(text, fmt or "Null", params=params or None)
        except Exception as exc:  # chdb's ChdbError, or a RuntimeError of its binding
            raise ClickHouseError(str(exc)) from None
        return result.bytes() if fmt else b""

    async def serve(self, socket_path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):  # left by an owner that was killed
            os.unlink(socket_path)
        self.server = await asyncio.start_unix_server(self._answer, path=str(socket_path))
        os.chmod(socket_path, 0o600)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            request = json.loads(await _read_frame(reader))
            body = await _read_frame(reader) if request["body"] else None
            try:
                answer = await asyncio.to_thread(
                    self.run, request["sql"], request["params"], request["fmt"], body
                )
                writer.write(OK + LENGTH.pack(len(answer)) + answer)
            except ClickHouseError as exc:
                message = str(exc).encode()
                writer.write(FAILED + LENGTH.pack(len(message)) + message)
            await writer.drain()
        writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        await asyncio.to_thread(self.session.close)
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        os.close(self.lock)


_owners: dict[Path, _Owner] = {}  # at most one: chdb holds one folder per process


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (length,) = LENGTH.unpack(await reader.readexactly(LENGTH.size))
    return await reader.readexactly(length)


def _remove_stale_inserts(folder: Path) -> None:
    """Remove the files of inserts that a process killed mid-insert left (those of the
    last minute may be another process's, on their way)."""
    stale = time.time() - STALE_INSERT_S
    for path in folder.glob("*"):
        with contextlib.suppress(OSError):  # removed meanwhile
            if path.stat().st_mtime < stale:
                path.unlink()


def owner_of(folder: Path) -> int | None:
    """The process that owns `folder` (holds its lock), if any: Linux's /proc/locks says."""
    inode = os.stat(folder / "owner.lock").st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()  # 1: FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE START END
        if fields[1] == "FLOCK" and int(fields[5].rsplit(":", 1)[1]) == inode:
            return int(fields[4])
    return None


class Embedded(ClickHouse):
    def __init__(self, folder: str) -> None:
        self.folder = Path(folder).resolve()
        self.socket_path = self.folder / "owner.sock"
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise ValueError(f"the chdb folder's path is too long for a socket: {self.folder}")
        self._owner: _Owner | None = None

    async def _run(self, sql: str, params: dict[str, Any], fmt: str | None) -> bytes:
        return await self._send(sql, params, fmt, None)

    async def insert(self, table: str, body: bytes, token: str, fmt: str) -> None:
        settings = ", ".join(
            f"{name} = {value!r}" for name, value in insert_settings(token).items()
        )
        if fmt == "JSONEachRow":  # text: it goes after the statement
            await self._send(
                f"INSERT INTO {table} SETTINGS {settings} FORMAT {fmt}", {}, None, body
            )
            return
        # chdb takes a statement as text, so a binary body is read from a file of the folder
        # (by column name); this process writes it, whichever process owns the folder. Two
        # writers may insert one left batch at once: a file each.
        path = self.folder / INSERTS / f"{token}-{secrets.token_hex(4)}.{fmt}"
        path.parent.mkdir(mode=0o700, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, body)
        try:
            await self._send(
                f"INSERT INTO {table} SETTINGS {settings} "
                f"SELECT * FROM file({quoted(str(path))}, {quoted(fmt)})",
                {}, None, None,
            )  # fmt: skip
        finally:
            path.unlink(missing_ok=True)

    async def _send(
        self, sql: str, params: dict[str, Any], fmt: str | None, body: bytes | None
    ) -> bytes:
        texts = {name: parameter_text(value) for name, value in params.items()}
        for _ in range(ATTEMPTS):
            owner = self._owner or await self._take_over()
            if owner is not None:
                return await asyncio.to_thread(owner.run, sql, texts, fmt, body)
            try:
                return await self._ask({"sql": sql, "params": texts, "fmt": fmt}, body)
            except (OSError, asyncio.IncompleteReadError):  # no owner, or it just died
                await asyncio.sleep(PAUSE_S)
        raise ClickHouseError(f"no process answers for the chdb folder {self.folder}")

    async def _take_over(self) -> _Owner | None:
        """This process's owner of the folder, if it holds it or can take it now."""
        owner = _owners.get(self.folder)
        if owner is None:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock = os.open(self.folder / "owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock)
                return None  # another process owns it
            try:
                owner = await asyncio.to_thread(_Owner, self.folder, lock)
                await owner.serve(self.socket_path)
            except BaseException:
                os.close(lock)  # also lets go of the lock
                raise
            log.info("this process owns the embedded ClickHouse in %s", self.folder)
            _remove_stale_inserts(self.folder / INSERTS)
            _owners[self.folder] = owner
        owner.users += 1
        self._owner = owner
        return owner

    async def _ask(self, request: dict[str, Any], body: bytes | None) -> bytes:
        """The owner's answer, on a connection of its own (a Unix socket costs microseconds
        to open, and requests of one process need not wait for each other)."""
        reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
        try:
            header = json.dumps({**request, "body": body is not None}).encode()
            writer.write(LENGTH.pack(len(header)) + header)
            if body is not None:
                writer.write(LENGTH.pack(len(body)) + body)
            await writer.drain()
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                status = await reader.readexactly(1)
                answer = await _read_frame(reader)
        except TimeoutError:
            raise ClickHouseError(
                f"the process that owns the chdb folder {self.folder} did not answer "
                f"within {ANSWER_TIMEOUT_S:.0f} s"
            ) from None
        finally:
            writer.close()
        if status != OK:
            raise ClickHouseError(answer.decode(errors="replace"))
        return answer

    async def close(self) -> None:
        if self._owner is not None:
            owner, self._owner = self._owner, None
            owner.users -= 1
            if owner.users == 0:
                del _owners[self.folder]
                await owner.close()
