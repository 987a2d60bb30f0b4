"""The stats' reads with ClickHouse as the click store: the queries of SqlReads
(app/stats/repository.py), on the tables and views of migrations/clickhouse/, which hold
what the SQL store's clicks and rollups hold. So app/stats/service.py shapes both into the
same answers. Which links a request counts is the SQL database's to say (links live there);
ClickHouse then reads their clicks by workspace, or by link id."""

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clickhouse.client import ClickHouse
from app.core.tables import Link
from app.stats.repository import (
    CLICK_DIMENSIONS,
    CSV_COLUMNS,
    EVERY_CLICK_DIMENSION,
    LINK_NAME,
    SLOT,
    Match,
    Scope,
    Totals,
    link_values,
)

CSV_PAGE = 10_000  # rows a CSV query reads at a time
Where = tuple[list[str], dict[str, Any]]  # conditions and their parameters


class ClickHouseReads:
    def __init__(self, session: AsyncSession, clickhouse: ClickHouse) -> None:
        self.session, self.clickhouse = session, clickhouse
        self._links: dict[Scope, Where] = {}
        self.per_link: dict[Scope, list[tuple[int, bool, int, int]]] = {}  # service._per_link
        # (is_bot, first hour, last hour) of the links' hourly rows, when their sums were
        # read from those rows: first_and_last needs no query of its own for the hours.
        self._edge_hours: dict[Scope, list[tuple[bool, datetime, datetime]]] = {}

    async def _of(self, scope: Scope) -> Where:
        """The conditions for the links in scope (looked up once a request)."""
        if scope not in self._links:
            if scope.q.link_filters:
                if scope.named_links is not None and len(scope.q.link_filters) == 1:
                    rows = scope.named_links  # the names are the only filter: looked up
                else:
                    found = await self.session.execute(
                        select(Link.workspace_id, Link.id).where(
                            *scope.principal.sees(Link), *scope.q.link_filters
                        )
                    )
                    rows = found.all()
                workspaces, links = sorted({w for w, _ in rows}), sorted({i for _, i in rows})
                # The workspaces first: the clicks are ordered by workspace, then link.
                self._links[scope] = (
                    [
                        "workspace_id IN {workspaces:Array(UInt32)}",
                        "link_id IN {links:Array(UInt32)}",
                    ],
                    {"workspaces": workspaces, "links": links},
                )
            elif scope.principal.is_admin:
                self._links[scope] = ([], {})
            else:
                workspace = scope.principal.workspace_id
                self._links[scope] = (
                    ["workspace_id = {workspace:UInt32}"],
                    {"workspace": workspace},
                )
        return self._links[scope]

    async def _hours(
        self, scope: Scope, *, bots: bool | None, start: datetime | None = None,
        end: datetime | None = None,
    ) -> Where:  # fmt: skip
        conditions, params = await self._of(scope)
        start, end = (
            max(start or scope.q.start, scope.q.start),
            min(end or scope.q.end, scope.q.end),
        )
        conditions = [
            *conditions,
            "hour >= {start:DateTime('UTC')}",
            "hour < {end:DateTime('UTC')}",
        ]
        params = {
            **params,
            "start": start.replace(microsecond=0),
            "end": end.replace(microsecond=0),
        }
        return _bots(conditions, params, bots)

    async def _days(self, scope: Scope, dimension: str, *, bots: bool | None) -> Where:
        assert scope.days is not None
        conditions, params = await self._of(scope)
        first, last = scope.days
        conditions = [*conditions, "dimension = {dimension:String}", "day >= {first:Date}",
                      "day < {last:Date}"]  # fmt: skip
        params = {**params, "dimension": dimension, "first": first, "last": last}
        return _bots(conditions, params, bots)

    async def _clicks(
        self, scope: Scope, *, bots: bool | None,
        ranges: list[tuple[datetime, datetime]] | None = None,
    ) -> Where:  # fmt: skip
        """Conditions on raw clicks in the time `ranges` (the query's range unless given),
        each cut to the query's range."""
        conditions, params = await self._of(scope)
        params, within = dict(params), []
        for n, (start, end) in enumerate(
            ranges if ranges is not None else [(scope.q.start, scope.q.end)]
        ):
            params[f"start{n}"] = max(start, scope.q.start)
            params[f"end{n}"] = min(end, scope.q.end)
            within.append(f"ts >= {{start{n}:DateTime64(6, 'UTC')}} "
                          f"AND ts < {{end{n}:DateTime64(6, 'UTC')}}")  # fmt: skip
        conditions = [*conditions, "(" + " OR ".join(f"({w})" for w in within) + ")"]
        for attribute, match in scope.q.attributes:
            conditions.append(_matches(attribute, attribute, match))
            params[attribute] = list(match.values)
        return _bots(conditions, params, bots)

    async def _sums(self, sql: str, where: Where) -> list[Any]:
        conditions, params = where
        return await self.clickhouse.query(
            sql.format(where=" AND ".join(conditions) or "1"), **params
        )

    async def _union(self, parts: list[tuple[str, Where]]) -> list[Any]:
        """The rows of SELECTs (each `{where}` filled in with its conditions), in one query:
        each query costs chdb several ms, however little it reads."""
        selects, params = [], {}
        for n, (sql, (conditions, values)) in enumerate(parts):
            where = " AND ".join(conditions) or "1"
            for name, value in values.items():  # each part's parameters under names of its own
                where = where.replace(f"{{{name}:", f"{{{name}_{n}:")
                params[f"{name}_{n}"] = value
            selects.append(sql.format(where=where))
        return await self.clickhouse.query(" UNION ALL ".join(selects), **params) if selects else []

    async def per_link_from_rollups(self, scope: Scope) -> list[tuple[int, bool, int, int]]:
        """As SqlReads.per_link_from_rollups, in one query. Links the request names are read
        from the hourly view, which holds their rows together (ordered by link, then hour):
        ~2 ms less than the daily view, whose rows of a day are the whole workspace's, and
        the same read tells the hours of their first and last clicks. Otherwise whole days
        from the daily view, the hours around them from the hourly one."""
        if scope.q.links:
            rows = await self._sums(
                "SELECT link_id, is_bot, sum(clicks), sum(visitors), min(hour), max(hour) "
                "FROM rollup_hours WHERE {where} GROUP BY link_id, is_bot",
                await self._hours(scope, bots=None),
            )
            self._edge_hours[scope] = [
                (is_bot, first, last) for _, is_bot, _, _, first, last in rows
            ]
            return [(link, is_bot, clicks, visitors) for link, is_bot, clicks, visitors, *_ in rows]
        sums = ("SELECT link_id, is_bot, sum(clicks), sum(visitors) FROM {table} "
                "WHERE {{where}} GROUP BY link_id, is_bot")  # fmt: skip
        parts = [(sums.format(table="rollup_hours"),
                  await self._hours(scope, bots=None, start=start, end=end))
                 for start, end in scope.around_days]  # fmt: skip
        if scope.days is not None:
            days = await self._days(scope, EVERY_CLICK_DIMENSION, bots=None)
            parts.append((sums.format(table="rollup_days"), days))
        return [tuple(row) for row in await self._union(parts)]  # type: ignore[misc]

    async def per_link_from_clicks(self, scope: Scope) -> list[tuple[int, bool, int, int]]:
        rows = await self._sums(
            "SELECT link_id, is_bot, count(), countIf(new_visitor) FROM clicks "
            "WHERE {where} GROUP BY link_id, is_bot",
            await self._clicks(scope, bots=None),
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    async def first_and_last(self, scope: Scope) -> tuple[datetime | None, datetime | None]:
        """As SqlReads.first_and_last (the hours from the hourly view, then the clicks in
        those two hours; the hour itself where they were purged), in two queries, or one
        when the links' sums were read from the hourly view."""
        first_hour = last_hour = None
        if scope in self._edge_hours:  # read with the links' sums
            counted = [(first, last) for is_bot, first, last in self._edge_hours[scope]
                       if scope.bots is None or is_bot == scope.bots]  # fmt: skip
            if counted:
                first_hour = min(first for first, _ in counted)
                last_hour = max(last for _, last in counted)
        elif scope.q.rollups_apply:
            [(first_hour, last_hour)] = await self._sums(
                "SELECT minOrNull(hour), maxOrNull(hour) FROM rollup_hours WHERE {where}",
                await self._hours(scope, bots=scope.bots),
            )
        ranges = None  # the query's range
        if first_hour is not None and last_hour is not None:
            hour = timedelta(hours=1)
            ranges = [(first_hour, first_hour + hour), (last_hour, last_hour + hour)]
        conditions, params = await self._clicks(scope, bots=scope.bots, ranges=ranges)
        # Each edge from its own hour (the other's clicks may be there, the edge's purged).
        [(first, last)] = await self.clickhouse.query(
            "SELECT minOrNullIf(ts, ts < {first_end:DateTime64(6, 'UTC')}), "
            "maxOrNullIf(ts, ts >= {last_start:DateTime64(6, 'UTC')}) "
            f"FROM clicks WHERE {' AND '.join(conditions)}",
            **params,
            first_end=first_hour + timedelta(hours=1) if first_hour else scope.q.end,
            last_start=last_hour or scope.q.start,
        )
        return first or first_hour, last or last_hour

    async def per_hour(self, scope: Scope) -> list[Totals]:
        rows = await self._sums(
            "SELECT hour, sum(clicks), sum(visitors) FROM rollup_hours WHERE {where} GROUP BY hour",
            await self._hours(scope, bots=scope.bots),
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    async def per_slot(self, scope: Scope) -> list[Totals]:
        minutes = int(SLOT.total_seconds() // 60)
        rows = await self._sums(
            f"SELECT toStartOfInterval(ts, INTERVAL {minutes} MINUTE) AS slot, count(), "
            "countIf(new_visitor) FROM clicks WHERE {where} GROUP BY slot",
            await self._clicks(scope, bots=scope.bots),
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    async def per_value(
        self, scope: Scope, dimension: str, *, days: bool, by_link: bool = False
    ) -> list[Any]:
        """As SqlReads.per_value, in one query."""
        if dimension not in CLICK_DIMENSIONS:
            raise ValueError(f"no click attribute {dimension!r}")
        link = "link_id, " if by_link else ""
        parts = []
        if days:
            parts.append((
                f"SELECT {link}value, sum(clicks), sum(visitors) FROM rollup_days WHERE {{where}} "
                f"GROUP BY {link}value",
                await self._days(scope, dimension, bots=scope.bots),
            ))  # fmt: skip
        if ranges := scope.raw_ranges(days=days):  # none when whole days hold all of it
            parts.append((
                f"SELECT {link}{dimension}, count(), countIf(new_visitor) FROM clicks "
                f"WHERE {{where}} GROUP BY {link}{dimension}",
                await self._clicks(scope, bots=scope.bots, ranges=ranges),
            ))  # fmt: skip
        return [tuple(row) for row in await self._union(parts)]

    async def raw_clicks(self, scope: Scope) -> AsyncIterator[Sequence[Any]]:
        """As SqlReads.raw_clicks: oldest first (ids follow the order of receipt), a page
        of CSV_PAGE rows at a time; `link` named as the SQL database names it."""
        columns = ", ".join("link_id" if name == "link" else name for name in CSV_COLUMNS)
        link_at = CSV_COLUMNS.index("link")
        conditions, params = await self._clicks(scope, bots=scope.bots)
        after = -1
        while True:
            page = await self.clickhouse.query(
                f"SELECT {columns} FROM clicks WHERE {' AND '.join(conditions)} "
                f"AND id > {{after:Int64}} ORDER BY id LIMIT {CSV_PAGE}",
                **params,
                after=after,
            )
            if not page:
                return
            ids = sorted({row[link_at] for row in page})
            names = await link_values(self.session, ids, LINK_NAME)
            for row in page:
                row[link_at] = names.get(row[link_at])
                yield row
            after = page[-1][0]


def _bots(conditions: list[str], params: dict[str, Any], bots: bool | None) -> Where:
    if bots is None:
        return conditions, params
    return [*conditions, "is_bot = {bot:Bool}"], {**params, "bot": bots}


def _matches(column: str, name: str, match: Match) -> str:
    """As Match.condition: `column` in the values, or (excluding) null or not in them."""
    values = f"{{{name}:Array(String)}}"
    if match.exclude:
        return f"({column} IS NULL OR {column} NOT IN {values})"
    return f"{column} IN {values}"
