"""Links: create, read, list, update and archive, scoped to the caller's workspace."""

import asyncio
import base64
import secrets
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.clickhouse.client import ClickHouse
from app.clicks.retention import erase_link
from app.clicks.store import clickhouse as clickhouse_store
from app.core.clock import utcnow
from app.core.errors import AppError, Invalid, NotFound, validation_error
from app.core.passwords import hash_password
from app.core.principal import Principal
from app.core.tables import UTM_FIELDS, Link, LinkTag
from app.core.urls import browser_host, destination, points_at
from app.domains import repository as domains_repository
from app.domains import service as domains
from app.links import repository
from app.links.schemas import LARGEST_INTEGER, LinkCreate, LinkOut, LinkUpdate
from app.utm_templates import repository as templates

SLUG_ALPHABET = string.ascii_letters + string.digits
GENERATED_SLUG_LENGTH = 7
INSERT_CHUNK = 200  # links per INSERT when several are created at once


@dataclass(frozen=True)
class LinkContext:
    """What link rules need to know of the deployment."""

    base_url: str

    @property
    def short_host(self) -> str:
        return browser_host(self.base_url) or ""

    def short_url(self, slug: str, domain: str = "") -> str:
        """On the base URL, or on the link's branded `domain` with the base URL's scheme."""
        if not domain:
            return f"{self.base_url.rstrip('/')}/{slug}"
        return f"{urlsplit(self.base_url).scheme}://{domain}/{slug}"

    def domain_of(self, link: Link) -> str:
        """The host a link lives on."""
        return link.domain or self.short_host


def to_out(link: Link, ctx: LinkContext) -> LinkOut:
    fields = {name: getattr(link, name) for name in LinkOut.model_fields if hasattr(link, name)}
    return LinkOut(
        **fields | {"domain": ctx.domain_of(link)},
        short_url=ctx.short_url(link.slug, link.domain),
        destination=destination(link),
        archived=link.archived_at is not None,
    )


def _check_rules(
    link: Link, data: LinkCreate | LinkUpdate, ctx: LinkContext, registered: set[str]
) -> None:
    """Refuse `data` for `link` (as it is before `data` applies, or a new link it made) if
    the result would break a rule: checked before anything changes, so a refused change
    leaves the link as it was. `registered`: the registered domains among the hosts of
    `data`'s URLs."""

    def value(field: str) -> Any:
        return getattr(data if field in data.model_fields_set else link, field)

    urls = [("url", value("url")), ("fallback_url", value("fallback_url"))]
    names: dict[str, str] = {}  # route name -> where it was first given
    for kind in ("rules", "variants"):
        for index, route in enumerate(value(kind) or []):
            where, name = f"{kind}.{index}", _route_field(route, "name")
            if name in names:
                # A click records the name: two routes of one name could not be told apart.
                raise Invalid(
                    "route_name_taken",
                    f"{where}.name: '{name}' is {names[name]}'s name too",
                    f"{where}.name",
                )
            names[name] = where
            urls.append((f"{where}.url", _route_field(route, "url")))
    for field, url in urls:
        if url and (points_at(url, ctx.short_host) or browser_host(url) in registered):
            # Whatever the spelling: one short link leading to another can loop.
            raise Invalid("redirect_loop", f"{field} must not point at this service", field)
    starts_at, expires_at = value("starts_at"), value("expires_at")
    if starts_at and expires_at and expires_at <= starts_at:
        raise Invalid("invalid_window", "expires_at must be after starts_at", "expires_at")


def _route_field(route: object, field: str) -> str:
    """A field of a rule or variant, whether from a request body or as a link stores it."""
    return route[field] if isinstance(route, dict) else getattr(route, field)


async def _registered_among(
    session: AsyncSession, bodies: list[LinkCreate] | list[LinkUpdate]
) -> set[str]:
    """The registered domains among the hosts the bodies' URLs lead to (one query)."""
    hosts = {
        browser_host(url)
        for body in bodies
        for url in (
            body.url,
            body.fallback_url,
            *(route.url for route in [*(body.rules or []), *(body.variants or [])]),
        )
        if url
    }
    return await domains_repository.registered(session, {host for host in hosts if host})


# Fields a link does not store as they come (or at all).
NOT_STORED_AS_GIVEN = {
    "tags", "archived", "slug", "domain", "rules", "variants", "password", "utm_template"
}  # fmt: skip


def _apply(link: Link, data: LinkCreate | LinkUpdate) -> None:
    """`data`'s fields on `link`, but for its password (`_set_password`)."""
    for name in data.model_fields_set - NOT_STORED_AS_GIVEN:
        setattr(link, name, getattr(data, name))
    if "tags" in data.model_fields_set:
        link.tag_rows = [LinkTag(tag=tag) for tag in data.tags or []]
    # Stored as the API takes them (`if`, not `conditions`); none is null, not [].
    if "rules" in data.model_fields_set:
        link.rules = [rule.model_dump(exclude_none=True) for rule in data.rules or []] or None
    if "variants" in data.model_fields_set:
        link.variants = [variant.model_dump() for variant in data.variants or []] or None


async def _set_password(link: Link, data: LinkCreate | LinkUpdate) -> None:
    """The password `data` gives (null removes it), hashed in a thread: a hash costs
    about 100 ms of CPU, which the event loop's redirects must not wait for."""
    if "password" in data.model_fields_set:
        password = data.password
        link.password_hash = (
            None if password is None else await asyncio.to_thread(hash_password, password)
        )


async def _with_templates(
    session: AsyncSession, workspace_id: int, bodies: list[LinkCreate]
) -> list[LinkCreate | AppError]:
    """Each body with its UTM template's values in the UTM fields it does not give (one
    query for all); a 422 for a body naming a template the workspace does not have."""
    found = await templates.named(
        session, workspace_id, {body.utm_template for body in bodies if body.utm_template}
    )
    filled: list[LinkCreate | AppError] = []
    for body in bodies:
        if body.utm_template is None:
            filled.append(body)
        elif (template := found.get(body.utm_template)) is None:
            filled.append(
                Invalid(
                    "unknown_utm_template",
                    f"utm_template: the workspace has no UTM template '{body.utm_template}'",
                    "utm_template",
                )
            )
        else:
            values = {name: getattr(template, name) for name in UTM_FIELDS}
            missing = {name: value for name, value in values.items()
                       if value is not None and getattr(body, name) is None}  # fmt: skip
            filled.append(body.model_copy(update=missing))
    return filled


async def _free_slug(session: AsyncSession, domain: str) -> str:
    for _ in range(10):
        slug = _random_slug()
        if not await repository.slug_taken(session, domain, slug):
            return slug
    raise AppError(503, "slug_space_exhausted", "could not find a free slug, try again")


def _new_link(principal: Principal, data: LinkCreate, *, domain: str, slug: str) -> Link:
    """The link `data` describes, unchecked (_check_rules) and not yet added."""
    link = Link(workspace_id=principal.workspace_id, domain=domain, slug=slug)
    link.tag_rows = []
    _apply(link, data)
    return link


def _random_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(GENERATED_SLUG_LENGTH))


async def create_link(
    session: AsyncSession, principal: Principal, data: LinkCreate, ctx: LinkContext
) -> Link:
    (filled,) = await _with_templates(session, principal.workspace_id, [data])
    if isinstance(filled, AppError):
        raise filled
    data = filled
    domain = await domains.link_domain(session, principal.workspace_id, data.domain, ctx.short_host)
    link = _new_link(
        principal, data, domain=domain, slug=data.slug or await _free_slug(session, domain)
    )
    _check_rules(link, data, ctx, await _registered_among(session, [data]))
    await _set_password(link, data)
    try:
        async with session.begin_nested():
            session.add(link)
    except IntegrityError:
        where = f" on {domain}" if domain else ""
        raise AppError(409, "slug_taken", f"the slug '{link.slug}' is taken{where}") from None
    _audit(session, principal, "link.create", link, _given(data))
    return link


def _audit(
    session: AsyncSession, principal: Principal, action: str, link: Link,
    details: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    target = f"{link.domain}/{link.slug}" if link.domain else link.slug
    audit.record(session, principal, action, target, details, workspace_id=link.workspace_id)


def _given(data: LinkCreate) -> dict[str, Any]:
    """A new link's fields for the audit log: those given a value (a password only as set)."""
    given = data.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    if "password" in given:
        given["password"] = "(set)"
    return given


def _changed(before: LinkOut, after: LinkOut) -> dict[str, Any]:
    """What a change did to a link, for the audit log: each field that differs, as now."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return {
        name: value
        for name, value in new.items()
        if value != old.get(name) and name != "updated_at"
    }


async def create_links(
    session: AsyncSession, principal: Principal, items: list[dict], ctx: LinkContext
) -> list[Link | AppError]:
    """Each item created on its own: a bad one yields its error and the rest go on. The
    valid ones are inserted INSERT_CHUNK at a time, in one statement, not a round trip
    each; a chunk the database refuses (a slug taken or repeated) is done again item by
    item, so that only the items at fault fail."""
    parsed: list[LinkCreate | AppError] = []
    for item in items:
        try:
            parsed.append(LinkCreate.model_validate(item))
        except ValidationError as exc:
            parsed.append(validation_error(exc.errors()))
    given = [data for data in parsed if isinstance(data, LinkCreate)]
    filled = iter(await _with_templates(session, principal.workspace_id, given))
    results: list[Link | AppError] = []
    bodies: dict[int, LinkCreate] = {}
    for data in parsed:
        if isinstance(data, LinkCreate):
            data = next(filled)
        if isinstance(data, AppError):
            results.append(data)
            continue
        # A generated slug is not looked up first: a collision in 62^7 is the rare case the
        # item-by-item retry handles.
        results.append(_new_link(principal, data, domain="", slug=data.slug or _random_slug()))
        bodies[len(results) - 1] = data
    # The database is read only now, the links built: on SQLite a write session's first
    # statement takes the write lock, which other writers (a capped link taking its slot,
    # the click writer) then wait for until the commit.
    registered = await _registered_among(session, list(bodies.values()))
    domains_of: dict[str | None, str | AppError] = {}  # a body's `domain` -> the stored one
    valid: list[tuple[int, LinkCreate]] = []
    for index, data in bodies.items():
        if data.domain not in domains_of:
            try:
                domains_of[data.domain] = await domains.link_domain(
                    session, principal.workspace_id, data.domain, ctx.short_host
                )
            except AppError as exc:
                domains_of[data.domain] = exc
        link, domain = results[index], domains_of[data.domain]
        assert isinstance(link, Link)
        try:
            if isinstance(domain, AppError):
                raise domain
            _check_rules(link, data, ctx, registered)
        except AppError as exc:
            results[index] = exc
        else:
            link.domain = domain
            await _set_password(link, data)
            valid.append((index, data))
    for start in range(0, len(valid), INSERT_CHUNK):
        chunk = valid[start : start + INSERT_CHUNK]
        try:
            async with session.begin_nested():
                session.add_all([results[index] for index, _ in chunk])
        except IntegrityError:  # the rolled-back links left the session: made anew
            for index, data in chunk:
                try:
                    results[index] = await create_link(session, principal, data, ctx)
                except AppError as exc:
                    results[index] = exc
        else:
            for index, data in chunk:
                link = results[index]
                assert isinstance(link, Link)
                _audit(session, principal, "link.create", link, _given(data))
    return results


async def get_link(
    session: AsyncSession, principal: Principal, slug: str, domain: str = ""
) -> Link:
    """The link of `slug` on `domain` ("" for the base host) the caller sees, else 404."""
    link = await repository.find(session, principal, slug, domain)
    if link is None:
        raise NotFound("link")
    return link


async def update_link(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    data: LinkUpdate,
    ctx: LinkContext,
    domain: str = "",
) -> Link:
    link = await get_link(session, principal, slug, domain)
    if data.domain is not None and _stored_domain(data.domain, ctx) != link.domain:
        raise Invalid(
            "domain_fixed",
            "a link stays on its domain (printed QR codes lead to it): create a new link on "
            "the other domain instead",
            "domain",
        )
    _check_rules(link, data, ctx, await _registered_among(session, [data]))
    before = to_out(link, ctx)
    await _set_password(link, data)
    was_capped = link.max_clicks is not None
    _apply(link, data)
    if link.max_clicks is not None and not was_capped:
        # Served clicks are counted only while a link is capped: a new cap counts the
        # clicks recorded so far (read in the UPDATE, not here, so none is missed). A
        # changed cap keeps the count: raising it by N lets N more through.
        link.served_clicks = Link.clicks  # type: ignore[assignment]
    if data.archived is not None:
        link.archived_at = (link.archived_at or utcnow()) if data.archived else None
    await session.flush()
    changed = _changed(before, to_out(link, ctx))
    if "password" in data.model_fields_set:  # a new password leaves has_password as it was
        changed["password"] = "(removed)" if data.password is None else "(set)"
    _audit(session, principal, "link.update", link, changed)
    return link


def _stored_domain(text: str, ctx: LinkContext) -> str | None:
    try:
        return domains.domain_host_or_base(text, ctx.short_host)
    except ValueError:
        return None


def domain_filter(text: str | None, ctx: LinkContext) -> str | None:
    """A list's `domain` filter as links store it (None: no filter); 422 for no domain."""
    if not text:
        return None
    stored = _stored_domain(text, ctx)
    if stored is None:
        raise Invalid("invalid_parameter", "domain: not a domain name", "domain")
    return stored


def domain_named(text: str | None, ctx: LinkContext) -> str:
    """The domain a request names a link on (`?domain=`), as links store it: "" for the
    base host or none named; a 404 for what is no domain (no link can be on it)."""
    if text is None:
        return ""
    stored = _stored_domain(text, ctx)
    if stored is None:
        raise NotFound("link")
    return stored


async def archive_link(
    session: AsyncSession, principal: Principal, slug: str, domain: str = ""
) -> Link:
    link = await get_link(session, principal, slug, domain)
    if link.archived_at is None:
        link.archived_at = utcnow()
        await session.flush()
        _audit(session, principal, "link.archive", link)
    return link


async def purge_link(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    domain: str = "",
    clickhouse: ClickHouse | None = None,
) -> None:
    """Delete the link with its clicks, rollups and tags, for good (erasure on request);
    its clicks in ClickHouse too, when that is the click store."""
    link = await get_link(session, principal, slug, domain)
    await erase_link(session, link.id)
    _audit(session, principal, "link.delete", link)
    await session.delete(link)  # its tags go with it
    await session.flush()
    if clickhouse is not None:
        # After the link's row is deleted (locked until commit): a writer inserting clicks
        # of it into ClickHouse meanwhile waits for this transaction, then finds the link
        # gone and erases them too (app/clicks/store/clickhouse.py).
        await clickhouse_store.erase_link(clickhouse, link.id)


def encode_cursor(link: Link, sort: str) -> str:
    position = f"{getattr(link, repository.SORTS[sort].key)}:{link.id}"
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    bad_cursor = AppError(400, "bad_cursor", "the cursor is not one this API gave out")
    try:
        value, _, link_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).partition(
            b":"
        )
        position = int(value), int(link_id)
    except ValueError:
        raise bad_cursor from None
    # Past the integer columns' range the query itself would fail (a 500).
    if not all(0 <= number <= LARGEST_INTEGER for number in position):
        raise bad_cursor
    return position


async def list_links(
    session: AsyncSession,
    principal: Principal,
    *,
    q: str | None = None,
    tag: str | None = None,
    utm_campaign: str | None = None,
    domain: str | None = None,
    archived: bool = False,
    sort: str = "created",
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Link], str | None]:
    """Largest `sort` first (newest for `created`), `limit` at a time; returns the page
    and the cursor of the next one."""
    after = decode_cursor(cursor) if cursor else None
    rows = await repository.page(
        session,
        principal,
        q=q,
        tag=tag,
        utm_campaign=utm_campaign,
        domain=domain,
        archived=archived,
        sort=sort,
        after=after,
        limit=limit + 1,
    )
    next_cursor = encode_cursor(rows[limit - 1], sort) if len(rows) > limit else None
    return rows[:limit], next_cursor
