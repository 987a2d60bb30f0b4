"""The thin layer between Tautan and ClickHouse: SQL text with typed parameters
(`{name:Type}`, bound by ClickHouse itself, never pasted into the text) in, rows out.
Both engines answer in JSONCompact, decoded here once; inserts are bodies of a named
format (an Arrow stream, or JSON rows) with a deduplication token, so that sending a body
twice stores it once.

`connect(url)` gives `Server` for `http(s)://user:password@host:8123/database`
(clickhouse-connect) or `Embedded` for `chdb:///DIR` (chdb, app/clickhouse/embedded.py)."""

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

Rows = list[list[Any]]
TOKEN = re.compile(r"[0-9a-f]{32}")


class ClickHouseError(Exception):
    """ClickHouse refused a statement, or could not be reached."""


class ClickHouse(ABC):
    async def query(self, sql: str, **params: Any) -> Rows:
        """The rows of a SELECT; DateTime values as aware datetimes (UTC), Date as date."""
        return decode(await self._run(sql, params, "JSONCompact"))

    async def execute(self, sql: str, **params: Any) -> None:
        """A statement with no rows to give (DDL, ALTER)."""
        await self._run(sql, params, None)

    @abstractmethod
    async def insert(self, table: str, body: bytes, token: str, fmt: str) -> None:
        """Insert `body`, in the format `fmt` (ArrowStream or JSONEachRow), into `table`.
        ClickHouse drops a body whose `token` (32 hex digits) it stored already, in `table`
        and in its views."""

    @abstractmethod
    async def _run(self, sql: str, params: dict[str, Any], fmt: str | None) -> bytes: ...

    @abstractmethod
    async def close(self) -> None: ...


def insert_settings(token: str) -> dict[str, int | str]:
    """What an insert sets: the token names the body, and the materialized views check it
    too (by default a view misses a body whose first try reached the clicks only)."""
    if not TOKEN.fullmatch(token):
        raise ValueError(f"an insert token is 32 hex digits, not {token!r}")
    return {
        "insert_deduplicate": 1,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        "insert_deduplication_token": token,
    }


class Server(ClickHouse):
    """A ClickHouse server, through clickhouse-connect's HTTP client (its calls block, so
    they run in threads)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = None

    async def _connected(self) -> Any:
        if self._client is None:
            import clickhouse_connect  # only where a server is configured

            self._client = await asyncio.to_thread(
                clickhouse_connect.get_client, dsn=self.url, autogenerate_session_id=False
            )
        return self._client

    async def _call(self, work: Callable[[Any], Any]) -> Any:
        try:
            return await asyncio.to_thread(work, await self._connected())
        except Exception as exc:  # the driver's errors and the network's
            raise ClickHouseError(str(exc)) from exc

    async def _run(self, sql: str, params: dict[str, Any], fmt: str | None) -> bytes:
        if fmt is None:
            await self._call(lambda client: client.command(sql, parameters=params or None))
            return b""
        # Counts as JSON numbers, as chdb gives them (servers before 24.x quote them).
        settings = {"output_format_json_quote_64bit_integers": 0}
        result: bytes = await self._call(
            lambda client: client.raw_query(
                sql, parameters=params or None, settings=settings, fmt=fmt
            )
        )
        return result

    async def insert(self, table: str, body: bytes, token: str, fmt: str) -> None:
        settings = insert_settings(token)
        await self._call(
            lambda client: client.raw_insert(table, insert_block=body, settings=settings, fmt=fmt)
        )

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None


def connect(url: str) -> ClickHouse:
    scheme = urlsplit(url).scheme
    if scheme == "chdb":
        from app.clickhouse.embedded import Embedded

        return Embedded(chdb_folder(url))
    if scheme in ("http", "https"):
        return Server(url)
    raise ValueError(f"TAUTAN_CLICKHOUSE_URL is chdb:///DIR or http(s)://…, not {scheme}://")


def chdb_folder(url: str) -> str:
    """The folder of `chdb:///DIR` (an absolute path) or `chdb://./DIR` (relative)."""
    parts = urlsplit(url)
    folder = parts.netloc + parts.path
    if not folder or folder == "/":
        raise ValueError("chdb:///DIR names the folder of the embedded database")
    return folder


def parameter_text(value: Any) -> str:
    """A value as ClickHouse reads a query parameter (its escaped text format)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):  # fractions only where there are (DateTime has none)
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return text.removesuffix(".000000")
    if isinstance(value, date | int | float):
        return str(value)
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, list | tuple):
        return (
            "["
            + ",".join(quoted(v) if isinstance(v, str) else parameter_text(v) for v in value)
            + "]"
        )
    raise TypeError(f"no ClickHouse parameter for {type(value).__name__}")


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def quoted(text: str) -> str:
    """`text` as a string literal of ClickHouse's SQL."""
    return "'" + _escaped(text).replace("'", "\\'") + "'"


def decode(payload: bytes) -> Rows:
    """JSONCompact's rows, with its DateTime and Date text made Python values."""
    answer = orjson.loads(payload)
    rows: Rows = answer["data"]
    for at, column in enumerate(answer["meta"]):
        convert = _converter(column["type"])
        if convert is not None:
            for row in rows:
                if row[at] is not None:
                    row[at] = convert(row[at])
    return rows


def _utc(text: str) -> datetime:
    try:  # ClickHouse's usual text, without a zone: ~5× faster than parsing, then replacing
        # the zone (a link's 90 days are 2,160 hours)
        return datetime.fromisoformat(text + "+00:00")
    except ValueError:  # a server that writes the zone (date_time_output_format='iso')
        moment = datetime.fromisoformat(text)
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _converter(kind: str) -> Callable[[str], Any] | None:
    kind = kind.removeprefix("Nullable(").removeprefix("LowCardinality(")
    if kind.startswith("DateTime"):
        return _utc
    if kind.startswith("Date"):
        return date.fromisoformat
    return None
