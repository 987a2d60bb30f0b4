import io
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from app.api.deps import ReadSession, ShortUrls, State, WriteSession, writes_of
from app.api.errors import documented
from app.auth import require_scopes
from app.core.errors import AppError, Invalid
from app.core.principal import Principal
from app.links import qr, service, transfer
from app.links.schemas import (
    BulkCreate,
    BulkOut,
    BulkResult,
    LinkCreate,
    LinkOut,
    LinkPage,
    LinkRef,
    LinkUpdate,
)

router = APIRouter(prefix="/api/links", tags=["links"])

LinksRead = Annotated[Principal, Depends(require_scopes("links:read"))]
TextFilter = Annotated[str | None, Query(max_length=200, description="text in slug, URL or title")]
TagFilter = Annotated[str | None, Query(max_length=64)]


LinksWrite = Annotated[Principal, Depends(writes_of(require_scopes("links:write")))]
DomainParam = Annotated[
    str | None,
    Query(max_length=300, description="the link's branded domain (default: the base host)"),
]


def _shown(link: LinkOut, principal: Principal) -> LinkOut | LinkRef:
    """The link written, for a key that may read it; else only where it is: `links:write`
    alone changes links without ever seeing what they hold."""
    if principal.may("links:read"):
        return link
    return LinkRef(slug=link.slug, short_url=link.short_url)


WRITE_ONLY = "A key without `links:read` gets only the `slug` and `short_url` of each link."
BINARY = {"schema": {"type": "string", "format": "binary"}}
CSV = {"text/csv": {"schema": {"type": "string"}}}


@router.post(
    "",
    status_code=201,
    response_model=LinkOut | LinkRef,
    responses={201: {"description": f"The new link. {WRITE_ONLY}"}},
)
async def create_link(
    body: LinkCreate, principal: LinksWrite, session: WriteSession, ctx: ShortUrls
) -> LinkOut | LinkRef:
    link = await service.create_link(session, principal, body, ctx)
    return _shown(service.to_out(link, ctx), principal)


@router.post(
    "/bulk",
    operation_id="bulk_create_links",
    response_model=BulkOut,
    responses={200: {"description": f"One result per item, in order. {WRITE_ONLY}"}},
)
async def create_links(
    body: BulkCreate, principal: LinksWrite, session: WriteSession, ctx: ShortUrls
) -> BulkOut:
    results = []
    for item in await service.create_links(session, principal, body.links, ctx):
        if isinstance(item, AppError):
            results.append(BulkResult(ok=False, error=item.body()))
        else:
            link = _shown(service.to_out(item, ctx), principal)
            results.append(BulkResult(ok=True, link=link))
    return BulkOut(results=results)


@router.get("", response_model=LinkPage)
async def list_links(
    principal: LinksRead,
    session: ReadSession,
    ctx: ShortUrls,
    q: TextFilter = None,
    tag: TagFilter = None,
    utm_campaign: Annotated[str | None, Query(max_length=255)] = None,
    domain: Annotated[
        str | None, Query(max_length=300, description="only the links on this domain")
    ] = None,
    archived: bool = False,
    sort: Annotated[
        Literal["created", "clicks", "unique_visitors", "bot_clicks"],
        Query(description="largest first; `created`: newest first"),
    ] = "created",
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> LinkPage:
    links, next_cursor = await service.list_links(
        session,
        principal,
        q=q,
        tag=tag,
        utm_campaign=utm_campaign,
        domain=service.domain_filter(domain, ctx),
        archived=archived,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return LinkPage(links=[service.to_out(x, ctx) for x in links], next_cursor=next_cursor)


@router.post(
    "/import",
    response_model=transfer.ImportReport,
    responses={
        200: {"description": "What was imported (each link by its slug and short URL) and refused"},
        413: documented("the file is over the size limit, or over 10,000 rows"),
    },
)
async def import_links(
    file: Annotated[UploadFile, File(description="CSV, UTF-8, header row first")],
    principal: LinksWrite,
    session: WriteSession,
    ctx: ShortUrls,
    dry_run: Annotated[bool, Query(description="report what would happen, write nothing")] = False,
) -> transfer.ImportReport:
    """Creates a link per CSV row (columns url, slug, title, tags (`|`-separated),
    utm_source, utm_medium, utm_campaign, utm_term, utm_content); refused rows are reported
    with their line number. A file that is not such a CSV is refused whole (422)."""
    text = io.TextIOWrapper(file.file, encoding="utf-8-sig", newline="")
    return await transfer.import_links(session, principal, text, ctx, dry_run=dry_run)


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"description": "CSV with a header row", "content": CSV}},
)
async def export_links(
    principal: LinksRead,
    session: ReadSession,
    ctx: ShortUrls,
    q: TextFilter = None,
    tag: TagFilter = None,
    archived: Annotated[
        bool | None,
        Query(description="only archived (true) or active (false) links; all if absent"),
    ] = None,
) -> StreamingResponse:
    """Every link the key sees, as CSV that POST /api/links/import reads back, streamed."""
    pages = transfer.link_pages(session, principal, q=q, tag=tag, archived=archived)
    return StreamingResponse(
        transfer.export_csv(pages, ctx),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="links.csv"'},
    )


@router.get("/{slug}", response_model=LinkOut)
async def get_link(
    slug: str,
    principal: LinksRead,
    session: ReadSession,
    ctx: ShortUrls,
    domain: DomainParam = None,
) -> LinkOut:
    link = await service.get_link(session, principal, slug, service.domain_named(domain, ctx))
    return service.to_out(link, ctx)


@router.patch(
    "/{slug}",
    response_model=LinkOut | LinkRef,
    responses={200: {"description": f"The link as changed. {WRITE_ONLY}"}},
)
async def update_link(
    slug: str,
    body: LinkUpdate,
    principal: LinksWrite,
    session: WriteSession,
    ctx: ShortUrls,
    domain: DomainParam = None,
) -> LinkOut | LinkRef:
    link = await service.update_link(
        session, principal, slug, body, ctx, service.domain_named(domain, ctx)
    )
    return _shown(service.to_out(link, ctx), principal)


@router.delete("/{slug}", status_code=204)
async def delete_link(
    slug: str,
    principal: LinksWrite,
    session: WriteSession,
    ctx: ShortUrls,
    state: State,
    domain: DomainParam = None,
    purge: Annotated[
        bool, Query(description="erase the link and all its clicks and stats; irreversible")
    ] = False,
) -> Response:
    """Archives the link: it stops redirecting, its clicks and stats stay (`PATCH` with
    `"archived": false` restores it).

    With `purge=true` the link is erased instead, with everything recorded about it: its
    clicks, its hourly and daily stats and its tags (for a GDPR erasure request, say). This
    is **irreversible**: the slug then answers 404, and the link's clicks leave every total."""
    if purge:
        on = service.domain_named(domain, ctx)
        await service.purge_link(session, principal, slug, on, state.clickhouse)
    else:
        await service.archive_link(session, principal, slug, service.domain_named(domain, ctx))
    return Response(status_code=204)


@router.get(
    "/{slug}/qr",
    response_class=Response,
    responses={
        200: {
            "description": "the image, as `format` asks",
            "content": {"image/svg+xml": BINARY, "image/png": BINARY},
        }
    },
)
async def link_qr(
    slug: str,
    principal: LinksRead,
    session: ReadSession,
    ctx: ShortUrls,
    domain: DomainParam = None,
    format: Literal["svg", "png"] = "svg",
    size: Annotated[
        int,
        Query(
            ge=50,
            le=4000,
            description="width and height of the image in pixels, quiet zone included; at "
            "least one pixel per module (the code's modules plus twice `margin`, more for a "
            "longer short URL), else 422 with that minimum in `details.minimum`",
        ),
    ] = 300,
    margin: Annotated[int, Query(ge=0, le=20, description="quiet zone, in modules")] = 4,
    dark: Annotated[str, Query(description="hex colour")] = "000000",
    light: Annotated[str, Query(description="hex colour or `transparent`")] = "ffffff",
) -> Response:
    """The link's QR code; it carries `?qr=1`, so scans are counted with trigger `qr`.

    The image is exactly `size` by `size` pixels, the quiet zone of `margin` modules
    included. A PNG gives every module the same whole number of pixels; the pixels that do
    not divide evenly widen the quiet zone (half on each side). An SVG scales its modules
    to fill `size` exactly. A `size` below the code's width in modules, quiet zone included,
    is refused with 422 (`invalid_parameter`) whose `details.minimum` is the smallest
    `size` this link's code takes with this `margin`: the size is never rounded up."""
    link = await service.get_link(session, principal, slug, service.domain_named(domain, ctx))
    try:
        image = qr.qr_code(ctx.short_url(link.slug, link.domain), kind=format, size=size,
                           margin=margin, dark=dark, light=light)  # fmt: skip
    except qr.SizeTooSmall as exc:
        details = {"field": "size", "minimum": exc.minimum}
        raise AppError(422, "invalid_parameter", str(exc), details) from None
    except ValueError as exc:
        raise Invalid("invalid_parameter", str(exc)) from None
    return Response(image, media_type=qr.MEDIA_TYPES[format])
