"""Links to and from files: CSV import (each row created like a POST /api/links body, each
refused row reported with its line number) and CSV or JSON export, page by page."""

import asyncio
import csv
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError, ErrorBody, Invalid
from app.core.principal import Principal
from app.core.tables import UTM_FIELDS, Link, Workspace
from app.domains.service import stored_or_as_given
from app.links import service
from app.links.schemas import LinkRef
from app.spreadsheet import as_text, plain

# Rules and variants as the API takes them, in JSON, one column each.
LINK_COLUMNS = ("url", "slug", "title", "tags", *UTM_FIELDS, "domain", "rules", "variants")
JSON_COLUMNS = ("rules", "variants")
IMPORT_COLUMNS = (*LINK_COLUMNS, "utm_template")
EXPORT_COLUMNS = (
    *LINK_COLUMNS,
    "short_url",
    "destination",
    "clicks",
    "unique_visitors",
    "bot_clicks",
    "created_at",
    "archived",
)
# An export can be imported as it is: the columns it adds are accepted and left unused.
KNOWN_COLUMNS = frozenset(EXPORT_COLUMNS) | frozenset(IMPORT_COLUMNS) | {"workspace"}
TAG_SEPARATOR = "|"
EXPORT_PAGE = 500
IMPORT_CHUNK = 500  # rows validated and created together
# Rows one import takes (a 10 MiB file could hold 870,000 one-column rows, minutes of work
# and a report of tens of MB): a larger file is refused whole, before anything is written.
MAX_IMPORT_ROWS = 10_000
READ_SLICE = 200  # rows read and checked between two turns of the event loop


class RowError(BaseModel):
    line: int
    error: ErrorBody


class ImportReport(BaseModel):
    """The counts, the refused rows, and the links made by their address alone (the export
    has them in full): the report of a large file stays small."""

    imported: int = 0
    refused: int = 0
    dry_run: bool = False
    links: list[LinkRef] = []
    errors: list[RowError] = []


def _bad_file(message: str) -> Invalid:
    return Invalid("invalid_csv", message)


def _columns(header: list[str]) -> list[str]:
    columns = [name.strip().lower() for name in header]
    if not any(columns):
        raise _bad_file(
            f"line 1 must be a header row naming the columns: {', '.join(IMPORT_COLUMNS)}"
        )
    unknown = [name for name in columns if name not in KNOWN_COLUMNS]
    if unknown:
        raise _bad_file(
            f"unknown columns: {', '.join(unknown)} (line 1 must be a header row; "
            f"the columns are {', '.join(IMPORT_COLUMNS)})"
        )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise _bad_file(f"columns named twice in the header: {', '.join(repeated)}")
    if "url" not in columns:
        raise _bad_file("the header has no 'url' column")
    return columns


def _link_body(columns: list[str], cells: list[str]) -> dict[str, object] | AppError:
    """The POST /api/links body a row stands for: empty cells are left out."""
    body: dict[str, object] = {}
    for name, cell in zip(columns, cells, strict=False):
        if name not in IMPORT_COLUMNS or not cell.strip():
            continue
        if name == "tags":
            tags = (plain(tag.strip()) for tag in cell.split(TAG_SEPARATOR))
            body["tags"] = [tag for tag in tags if tag]
        elif name in JSON_COLUMNS:
            try:
                body[name] = orjson.loads(plain(cell))
            except orjson.JSONDecodeError as exc:
                return Invalid("invalid_row", f"{name}: not JSON ({exc})", name)
        else:
            body[name] = plain(cell)
    return body


def read_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, object] | AppError]]:
    """Each row's line number in the file (the header is line 1; a quoted cell may span
    lines) and its link body, or why the row cannot be one. `lines` is text read with
    newline="" (as the csv module wants). Raises Invalid when the file is not CSV."""
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise _bad_file("the file is empty: line 1 must be a header row")
        columns = _columns(header)
        while True:
            line = reader.line_num + 1
            cells = next(reader, None)
            if cells is None:
                return
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, and the empty rows spreadsheets leave at the end
            # Empty cells past the header's columns: the trailing commas spreadsheets write.
            if any(cell.strip() for cell in cells[len(columns) :]):
                yield (
                    line,
                    AppError(
                        422, "invalid_row", f"{len(cells)} cells, the header names {len(columns)}"
                    ),
                )
            else:
                yield line, _link_body(columns, cells)
    except UnicodeDecodeError:  # text is decoded by the block: no telling the line
        raise _bad_file("the file is not UTF-8 text (save it as CSV UTF-8)") from None
    except csv.Error as exc:
        raise _bad_file(f"line {reader.line_num}: not valid CSV: {exc}") from None


async def import_links(
    session: AsyncSession,
    principal: Principal,
    lines: Iterable[str],
    ctx: service.LinkContext,
    *,
    dry_run: bool = False,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> ImportReport:
    """Creates the link of every valid row and reports the others. The whole file is read
    first, so that one which is not CSV is refused before anything is written. Then each
    IMPORT_CHUNK rows are created together (service.create_links) and committed: the click
    writer, and capped links taking their slots, get the database between two chunks (on
    SQLite there is one writer at a time). A dry run rolls each chunk back instead: slugs
    repeated in the file are found by reading it, slugs already taken by the database."""
    report = ImportReport(dry_run=dry_run)
    slug_lines: dict[tuple[object, str], int] = {}  # first line of each (domain, slug)
    valid: list[tuple[int, dict[str, object]]] = []

    def refuse(line: int, error: AppError) -> None:
        report.errors.append(RowError(line=line, error=ErrorBody(**error.body())))

    for count, (line, body) in enumerate(read_rows(lines), 1):
        if count > MAX_IMPORT_ROWS:
            raise AppError(
                413,
                "too_many_rows",
                f"an import takes at most {MAX_IMPORT_ROWS:,} rows: split the file",
                details={"limit": MAX_IMPORT_ROWS},
            )
        if count % READ_SLICE == 0:
            await asyncio.sleep(0)  # let redirects and requests waiting on the loop run
        slug = body.get("slug") if isinstance(body, dict) else None
        where = (_domain_of(body, ctx), slug) if isinstance(slug, str) else None
        if isinstance(body, AppError):
            refuse(line, body)
        elif where in slug_lines:
            refuse(
                line,
                AppError(
                    409, "slug_taken", f"the slug '{slug}' is used on line {slug_lines[where]}"
                ),
            )
        else:
            if where is not None:
                slug_lines[where] = line
            valid.append((line, body))

    # The first rollback of a dry run also takes what the caller wrote before it: the
    # workspace that `tautan links import --workspace NEW --dry-run` has just created. It
    # is put back for each chunk, whose links belong to it.
    workspace = await session.get(Workspace, principal.workspace_id) if dry_run else None
    for start in range(0, len(valid), IMPORT_CHUNK):
        if workspace is not None and workspace not in session:
            session.add(workspace)
            await session.flush()
        chunk = valid[start : start + IMPORT_CHUNK]
        results = await service.create_links(session, principal, [b for _, b in chunk], ctx)
        for (line, _), result in zip(chunk, results, strict=True):
            if isinstance(result, AppError):
                refuse(line, result)
            else:
                short_url = ctx.short_url(result.slug, result.domain)
                report.links.append(LinkRef(slug=result.slug, short_url=short_url))
        await (session.rollback() if dry_run else session.commit())
        on_progress(start + len(chunk), len(valid))
    if dry_run:  # also when no row got as far as a chunk
        await session.rollback()
    report.errors.sort(key=lambda row: row.line)
    report.imported, report.refused = len(report.links), len(report.errors)
    return report


def _domain_of(body: dict[str, object], ctx: service.LinkContext) -> object:
    """The row's domain as links store it, as far as the file tells (a row naming no
    domain is refused for it later)."""
    domain = body.get("domain")
    return stored_or_as_given(domain, ctx.short_host) if isinstance(domain, str) else ""


def describe(error: ErrorBody) -> str:
    """One line for a person: the message, or what is wrong with each field."""
    if error.code != "validation_error" or not isinstance(error.details, list):
        return error.message
    return "; ".join(
        f"{'.'.join(map(str, item['loc'])) or 'row'}: " + item["msg"].removeprefix("Value error, ")
        for item in error.details
    )


async def link_pages(
    session: AsyncSession,
    principal: Principal,
    *,
    q: str | None = None,
    tag: str | None = None,
    archived: bool | None = None,
) -> AsyncIterator[list[Link]]:
    """The links the caller sees, EXPORT_PAGE at a time (keyset pagination, as the listing
    pages): active ones, then archived ones (only one kind when `archived` is given)."""
    for state in (False, True) if archived is None else (archived,):
        cursor: str | None = None
        while True:
            links, cursor = await service.list_links(
                session, principal, q=q, tag=tag, archived=state, cursor=cursor, limit=EXPORT_PAGE
            )
            if links:
                yield links
            if cursor is None:
                break


class _Echo:
    """A file for csv.writer whose write hands the formatted row back."""

    def write(self, text: str) -> str:
        return text


_csv_line = csv.writer(_Echo()).writerow


def _csv_cells(link: Link, ctx: service.LinkContext) -> list[object]:
    out = service.to_out(link, ctx)
    cells = out.model_dump(include=set(EXPORT_COLUMNS)) | {"created_at": out.created_at.isoformat()}
    # Tag by tag, as the import reads them (as_text on the whole cell would quote twice).
    cells["tags"] = TAG_SEPARATOR.join(map(str, map(as_text, out.tags)))
    for name in JSON_COLUMNS:
        cells[name] = orjson.dumps(cells[name]).decode() if cells[name] else ""
    return [cells[name] if name == "tags" else as_text(cells[name]) for name in EXPORT_COLUMNS]


async def export_csv(
    pages: AsyncIterator[list[Link]],
    ctx: service.LinkContext,
    workspace_names: dict[int, str] | None = None,
) -> AsyncIterator[str]:
    """The header, then one chunk of rows per page. With `workspace_names`, a last
    `workspace` column names each link's workspace."""
    extra = ["workspace"] if workspace_names is not None else []
    yield _csv_line([*EXPORT_COLUMNS, *extra])
    async for page in pages:
        rows = []
        for link in page:
            cells = _csv_cells(link, ctx)
            if workspace_names is not None:
                cells.append(workspace_names[link.workspace_id])
            rows.append(_csv_line(cells))
        yield "".join(rows)


async def export_json(
    pages: AsyncIterator[list[Link]], ctx: service.LinkContext
) -> AsyncIterator[str]:
    """A JSON array of the API's link objects, one chunk per page."""
    opening = "[\n"
    async for page in pages:
        yield opening + ",\n".join(service.to_out(link, ctx).model_dump_json() for link in page)
        opening = ",\n"
    yield "[]\n" if opening == "[\n" else "\n]\n"
