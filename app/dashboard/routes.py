"""The dashboard: server-rendered pages under /dashboard for signing in (with email and
password), setting a password through a one-time link, listing, creating and editing
links, and reading a link's KPIs. Every page asks the same
services as the API, with the same scopes and the same workspace rules."""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import available_timezones

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from pydantic import ValidationError

from app import geo_update
from app.accounts import mail
from app.accounts import service as accounts
from app.api.deps import (
    ReadSession,
    ShortUrls,
    State,
    WriteSession,
    app_state,
    limit_client_writes,
    writes_of,
)  # fmt: skip
from app.config import Settings
from app.core.errors import AppError, NotFound, validation_error
from app.core.principal import OWNER, Principal
from app.core.tables import Link, UtmTemplate
from app.core.urls import domain_host, merge_utm
from app.dashboard import charts, forms, session
from app.domains import service as domains
from app.domains.schemas import DomainCreate, DomainOut
from app.links import qr
from app.links import service as links
from app.links.schemas import DEVICE_TYPES, LinkOut, LinkUpdate
from app.ratelimit import count_failure
from app.utm_templates import service as utm_templates

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_FILES = frozenset(path.name for path in STATIC.iterdir() if path.is_file())
ZONES = sorted(available_timezones())
HOME = "/dashboard/overview"  # where signing in, and the brand in the header, lead

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# The chart is an SVG image with its own inline style; it never runs script.
CHART_CSP = (
    "default-src 'self'; script-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["number"] = lambda n: f"{n:,}"
templates.env.filters["percent"] = lambda share: f"{share:.0%}"
templates.env.filters["country_name"] = charts.country_name


@pass_context
def on_domain(context: Context, link: LinkOut, separator: str = "?") -> str:
    """The query naming a link's branded domain in its dashboard paths ("" on the base host)."""
    if link.domain == app_state(context["request"]).link_context.short_host:
        return ""
    return f"{separator}{urlencode({'domain': link.domain})}"


templates.env.filters["on_domain"] = on_domain


def _page_path(link: Link) -> str:
    """A link's page: /dashboard/links/SLUG, with `?domain=` for a branded domain's link."""
    return f"/dashboard/links/{link.slug}" + (
        f"?{urlencode({'domain': link.domain})}" if link.domain else ""
    )


@dataclass(frozen=True)
class GeoNote:
    """What the pages say of the geo database: whether places can be known yet, and
    whether DB-IP's data (which asks for attribution) is the one in use."""

    status: str  # ready | fetching | off | failed: why
    dbip: bool
    country_only: bool


def geo_note(settings: Settings) -> GeoNote:
    status = geo_update.geo_status(settings)
    country_only = status == "ready" and "city" not in geo_update.database_type(settings).lower()
    return GeoNote(status, status == "ready" and geo_update.is_dbip(settings), country_only)


def _page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("principal", None)
    context.setdefault("geo", geo_note(app_state(request).settings))
    # The signed-in user's workspaces, for the switcher (session.principal_of keeps them).
    context.setdefault("workspaces", getattr(request.state, "workspaces", []))
    return templates.TemplateResponse(request, name, context, status_code=status)


def _error_page(request: Request, error: AppError) -> Response:
    return _page(request, "error.html", error.status, error=error)


class PageRoute(APIRoute):
    """Every dashboard response carries the security headers; errors become pages, and a
    missing, tampered or lapsed session a redirect to the sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handle(request)
            except session.SignedOut:
                response = RedirectResponse("/dashboard/sign-in", status_code=303)
                session.forget_cookie(app_state(request), response)
            except AppError as exc:
                response = _error_page(request, exc)
                response.headers.update(exc.headers or {})
            except RequestValidationError as exc:
                response = _error_page(request, validation_error(exc.errors()))
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page


router = APIRouter(prefix="/dashboard", route_class=PageRoute, include_in_schema=False)


MayRead = Annotated[Principal, Depends(session.signed_in("links:read"))]
MayWrite = Annotated[Principal, Depends(session.signed_in("links:write"))]
Writing = Annotated[Principal, Depends(writes_of(session.signed_in("links:write")))]
# The edit form shows what the link holds: writing alone is no right to read it.
MayEdit = Annotated[Principal, Depends(session.signed_in("links:read", "links:write"))]
MayReadStats = Annotated[Principal, Depends(session.signed_in("stats:read"))]
# A workspace's domains, members, keys and audit log are its owners'.
MayOwn = Annotated[Principal, Depends(session.signed_in(OWNER))]
Owning = Annotated[Principal, Depends(writes_of(session.signed_in(OWNER)))]
SameOrigin = Depends(session.same_origin)
DomainParam = Annotated[str | None, Query(max_length=300)]


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise NotFound("file")
    return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})


@router.get("")
@router.get("/")
async def home() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get("/sign-in")
async def sign_in_form(request: Request, db: ReadSession) -> Response:
    return _page(request, "sign_in.html", no_users=not await accounts.any_user(db))


# Counted per client address before the password is checked, and per account: guessing
# passwords, one account or many, stays slow.
@router.post("/sign-in", dependencies=[SameOrigin, Depends(limit_client_writes)])
async def sign_in(request: Request, state: State, read: ReadSession, db: WriteSession) -> Response:
    """The password is checked on a read session: its ~100 ms of argon2 hold no write
    lock. Only a right one writes (the session, and a renewed hash)."""
    form = await request.form()
    typed = str(form.get("email", ""))[: accounts.MAX_EMAIL + 10].strip()
    password = str(form.get("password", ""))
    refused = _page(request, "sign_in.html", 401, email=typed,
                    error="That email and password do not match an account.")  # fmt: skip
    try:
        email = accounts.email_of(typed)
    except AppError:
        await count_failure()
        return refused
    if (wait := await state.rate_limiter.sign_in_wait(email)) is not None:
        error = f"Too many failed sign-ins to this account: try again in {wait} seconds."
        page = _page(request, "sign_in.html", 429, email=typed, error=error)
        page.headers["Retry-After"] = str(wait)
        return page
    user, rehashed = await accounts.check_sign_in(read, email, password)
    if user is None:
        await count_failure()
        await state.rate_limiter.count_sign_in_failure(email)
        return refused
    workspaces = await accounts.workspaces_of(read, user.id)
    if not workspaces:
        error = "Your account belongs to no workspace yet: ask an owner to add you."
        return _page(request, "sign_in.html", 403, email=typed, error=error)
    if rehashed is not None:
        await accounts.store_rehash(db, user.id, rehashed)
    response = RedirectResponse(HOME, status_code=303)
    await session.sign_in(db, state, request, response, user.id, workspaces[0][0].id)
    return response


@router.post("/sign-out", dependencies=[SameOrigin])
async def sign_out(request: Request, state: State, db: WriteSession) -> Response:
    response = RedirectResponse("/dashboard/sign-in", status_code=303)
    await session.sign_out(db, state, request, response)
    return response


@router.post("/workspace", dependencies=[SameOrigin])
async def switch_workspace(request: Request, state: State, db: WriteSession) -> Response:
    """Look at another of the user's workspaces (the switcher in the header)."""
    try:
        workspace_id = int(str((await request.form()).get("workspace", "")))
    except ValueError:
        raise AppError(422, "invalid_workspace", "choose a workspace") from None
    await session.switch_workspace(db, state, request, workspace_id)
    return RedirectResponse(HOME, status_code=303)


def _set_password_page(request: Request, status: int = 200, **context: Any) -> Response:
    response = _page(request, "set_password.html", status, **context)
    # The page's URL holds the token: a Referer carries the origin alone (no-referrer
    # would also make the browser post the form with `Origin: null`, which is refused).
    response.headers["Referrer-Policy"] = "strict-origin"
    return response


# The token is in the path, not the query: it is the one secret of the page. Opening the
# link uses nothing (mail scanners fetch links); posting the form does.
@router.get("/set-password/{token}")
async def set_password_form(
    request: Request, token: str, state: State, db: ReadSession
) -> Response:
    await state.rate_limiter.guard_authentication(request)
    found = await accounts.password_link(db, token[:100])
    if found is None:
        await count_failure()
        return _set_password_page(request, 410, gone=True)
    user, link = found
    return _set_password_page(request, email=user.email, purpose=link.purpose)


@router.post("/set-password/{token}", dependencies=[SameOrigin, Depends(limit_client_writes)])
async def set_password(request: Request, token: str, state: State, db: WriteSession) -> Response:
    form = await request.form()
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))
    found = await accounts.password_link(db, token[:100])
    if found is None:
        await count_failure()
        return _set_password_page(request, 410, gone=True)
    user, link = found
    purpose, error = link.purpose, None
    if password != again:
        error = "The two passwords differ: type the same one twice."
    else:
        try:
            await accounts.set_password_with(db, found, password)
        except AppError as exc:
            error = exc.message
    if error is not None:
        return _set_password_page(request, 422, email=user.email, purpose=purpose, error=error)
    workspaces = await accounts.workspaces_of(db, user.id)
    if not workspaces:
        return RedirectResponse("/dashboard/sign-in", status_code=303)
    response = RedirectResponse(HOME, status_code=303)
    await session.sign_in(db, state, request, response, user.id, workspaces[0][0].id)
    return response


@router.get("/forgot-password")
async def forgot_password_form(request: Request, state: State) -> Response:
    return _page(request, "forgot_password.html", mail=bool(state.settings.smtp_url))


@router.post("/forgot-password", dependencies=[SameOrigin, Depends(limit_client_writes)])
async def forgot_password(
    request: Request, state: State, db: WriteSession, background: BackgroundTasks
) -> Response:
    """With mail set up, mails a reset link to an account's address, once the page is
    sent. The page is the same whether the account exists or not, and as quick: it tells
    nobody who has one."""
    mailable = bool(state.settings.smtp_url)
    typed = str((await request.form()).get("email", ""))[: accounts.MAX_EMAIL + 10]
    try:
        email = accounts.email_of(typed)
    except AppError as exc:
        return _page(request, "forgot_password.html", 422, mail=mailable, error=exc.message)
    user = await accounts.user_named(db, email) if mailable else None
    if user is not None and await state.rate_limiter.count_reset_mail(email):
        token = await accounts.issue_password_token(db, user, "reset")
        mail.hand_over(state.settings, background.add_task, email, token, "reset")
    return _page(request, "forgot_password.html", mail=mailable, sent=mailable)


@router.get("/links")
async def link_list(
    request: Request,
    principal: MayRead,
    db: ReadSession,
    ctx: ShortUrls,
    q: Annotated[str, Query(max_length=200)] = "",
    tag: Annotated[str, Query(max_length=64)] = "",
    sort: Literal["created", "clicks", "unique_visitors", "bot_clicks"] = "created",
    archived: bool = False,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    domain: DomainParam = None,
) -> Response:
    rows, next_cursor = await links.list_links(
        db, principal, q=q or None, tag=tag or None, domain=links.domain_filter(domain, ctx),
        archived=archived, sort=sort,
        cursor=cursor,
    )  # fmt: skip
    more = None
    if next_cursor:
        query = {"q": q, "tag": tag, "sort": sort, "cursor": next_cursor, "domain": domain or ""}
        more = "?" + urlencode({**query, **({"archived": "true"} if archived else {})})
    return _page(
        request,
        "links.html",
        principal=principal,
        links=[links.to_out(link, ctx) for link in rows],
        domains=await _domains_offered(db, principal, ctx),
        domain=domain or "",
        q=q,
        tag=tag,
        sort=sort,
        archived=archived,
        more=more,
    )


def _form_page(
    request: Request,
    principal: Principal,
    values: dict[str, Any],
    *,
    slug: str | None = None,
    domains_offered: list[str] | None = None,
    templates_offered: list[UtmTemplate] | None = None,
    has_password: bool = False,
    password_typed: bool = False,
    errors: dict[str, str] | None = None,
) -> Response:
    """The new-link form (`slug` None) or a link's edit form, showing `values` (never a
    password) and `errors` beside their fields."""
    utm = {name: values.get(name) for name in forms.UTM_FIELDS}
    template = {t.name: t for t in templates_offered or []}.get(values.get("utm_template", ""))
    if template is not None:  # as the API fills them: the fields left blank
        utm = {name: value or getattr(template, name) for name, value in utm.items()}
    preview = merge_utm(values.get("url", ""), utm) if values.get("url") else ""
    rows = {
        kind: [*(values.get(field) or []), *[forms.blank_row(kind)] * forms.BLANK_ROWS]
        for kind, field in forms.KINDS.items()
    }
    return _page(
        request,
        "link_form.html",
        422 if errors else 200,
        principal=principal,
        values=values,
        slug=slug,
        errors=errors or {},
        general=[
            msg for name, msg in (errors or {}).items() if not forms.shown_beside_a_field(name)
        ],
        preview=preview,
        redirect_codes=forms.REDIRECT_CODES,
        domains=domains_offered or [],
        templates=templates_offered or [],
        utm_fields=forms.UTM_FIELDS,
        rule_rows=rows["rule"],
        variant_rows=rows["variant"],
        device_types=DEVICE_TYPES,
        has_password=has_password,
        password_typed=password_typed,
    )


async def _domains_offered(db: Any, principal: Principal, ctx: links.LinkContext) -> list[str]:
    """The hosts a new link of the caller's workspace may live on, the base host first."""
    return [ctx.short_host, *await domains.hosts_of_workspace(db, principal.workspace_id)]


# Not under /links/: a link's slug may be "new" and its page is /dashboard/links/new.
@router.get("/new")
async def new_link_form(
    request: Request, principal: MayWrite, db: ReadSession, ctx: ShortUrls
) -> Response:
    return _form_page(
        request,
        principal,
        forms.values_of(None),
        domains_offered=await _domains_offered(db, principal, ctx),
        templates_offered=await utm_templates.templates_for_new_links(db, principal),
    )


@router.post("/new", dependencies=[SameOrigin])
async def create_link(
    request: Request, principal: Writing, db: WriteSession, state: State
) -> Response:
    form = await request.form()
    values = forms.text_of(form)
    try:
        data = forms.link_create(values, forms.password_of(form))
        link = await links.create_link(db, principal, data, state.link_context)
    except (forms.FormErrors, AppError) as exc:  # nothing was written
        return _form_page(
            request,
            principal,
            values,
            domains_offered=await _domains_offered(db, principal, state.link_context),
            templates_offered=await utm_templates.templates_for_new_links(db, principal),
            password_typed=bool(forms.password_of(form)),
            errors=forms.errors_of(exc),
        )
    return RedirectResponse(_page_path(link), status_code=303)


@router.get("/links/{slug}/edit")
async def edit_link_form(
    request: Request,
    slug: str,
    principal: MayEdit,
    db: ReadSession,
    ctx: ShortUrls,
    domain: DomainParam = None,
) -> Response:
    found = await links.get_link(db, principal, slug, links.domain_named(domain, ctx))
    link = links.to_out(found, ctx)
    values = forms.values_of(link)
    return _form_page(request, principal, values, slug=slug, has_password=link.has_password)


@router.post("/links/{slug}/edit", dependencies=[SameOrigin])
async def update_link(
    request: Request,
    slug: str,
    principal: Writing,
    db: WriteSession,
    state: State,
    domain: DomainParam = None,
) -> Response:
    # Another's link is a 404 page, not a form; this one's expiry may be kept as stored.
    on = links.domain_named(domain, state.link_context)
    link = await links.get_link(db, principal, slug, on)
    form = await request.form()
    values = forms.text_of(form)
    try:
        edit = forms.link_update(values, forms.password_of(form), link.expires_at)
        await links.update_link(db, principal, slug, edit, state.link_context, on)
    except (forms.FormErrors, AppError) as exc:  # nothing was written
        return _form_page(
            request,
            principal,
            values,
            slug=slug,
            has_password=link.password_hash is not None,
            password_typed=bool(forms.password_of(form)),
            errors=forms.errors_of(exc),
        )
    return RedirectResponse(_page_path(link), status_code=303)


@router.post("/links/{slug}/archive", dependencies=[SameOrigin])
async def archive_link(
    slug: str, principal: Writing, db: WriteSession, ctx: ShortUrls, domain: DomainParam = None
) -> Response:
    """The link stops redirecting; its clicks and stats stay (as DELETE /api/links/{slug})."""
    link = await links.archive_link(db, principal, slug, links.domain_named(domain, ctx))
    return RedirectResponse(_page_path(link), status_code=303)


@router.post("/links/{slug}/restore", dependencies=[SameOrigin])
async def restore_link(
    slug: str, principal: Writing, db: WriteSession, state: State, domain: DomainParam = None
) -> Response:
    on = links.domain_named(domain, state.link_context)
    restore = LinkUpdate(archived=False)
    link = await links.update_link(db, principal, slug, restore, state.link_context, on)
    return RedirectResponse(_page_path(link), status_code=303)


def _domains_page(
    request: Request,
    principal: Principal,
    listed: list[DomainOut],
    ctx: links.LinkContext,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    return _page(request, "domains.html", 422 if errors else 200, principal=principal,
                 domains=listed, base_host=ctx.short_host, values=values or {},
                 errors=errors or {})  # fmt: skip


@router.get("/domains")
async def domain_list(
    request: Request, principal: MayRead, db: ReadSession, ctx: ShortUrls
) -> Response:
    return _domains_page(request, principal, await domains.list_domains(db, principal), ctx)


@router.post("/domains", dependencies=[SameOrigin])
async def add_domain(
    request: Request, principal: Owning, db: WriteSession, ctx: ShortUrls
) -> Response:
    form = await request.form()
    values = {
        name: str(form.get(name, "")).strip() for name in ("host", "root_url", "not_found_url")
    }
    try:
        body = DomainCreate.model_validate({k: v for k, v in values.items() if v})
        await domains.create_domain(db, principal, body, ctx.short_host)
    except ValidationError as exc:
        errors = forms.errors_of(forms.errors_from(exc))
    except AppError as exc:  # nothing was written
        errors = forms.errors_of(exc)
    else:
        return RedirectResponse("/dashboard/domains", status_code=303)
    listed = await domains.list_domains(db, principal)
    return _domains_page(request, principal, listed, ctx, values, errors)


@router.post("/domains/{host}/remove", dependencies=[SameOrigin])
async def remove_domain(host: str, principal: Owning, db: WriteSession) -> Response:
    """Refused, with how to go on, while any of its links is active."""
    try:
        stored = domain_host(host)
    except ValueError:
        raise NotFound("domain") from None
    await domains.delete_domain(db, principal, stored)
    return RedirectResponse("/dashboard/domains", status_code=303)


@router.get("/links/{slug}/qr.{kind}")
async def link_qr(
    slug: str,
    kind: Literal["svg", "png"],
    principal: MayRead,
    db: ReadSession,
    ctx: ShortUrls,
    domain: DomainParam = None,
) -> Response:
    link = await links.get_link(db, principal, slug, links.domain_named(domain, ctx))
    image = qr.qr_code(ctx.short_url(link.slug, link.domain), kind=kind, size=600, margin=4,
                       dark="000000", light="ffffff")  # fmt: skip
    disposition = f'attachment; filename="{link.slug}-qr.{kind}"'
    return Response(
        image, media_type=qr.MEDIA_TYPES[kind], headers={"Content-Disposition": disposition}
    )


@router.api_route("/{path:path}", methods=["GET", "POST"])
async def not_found(path: str) -> Response:
    raise NotFound("page")
