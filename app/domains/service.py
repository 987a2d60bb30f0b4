"""Branded domains: registered, changed and removed by a workspace's admin, looked up by
the links service (a link's `domain`) and by TLS proxies (`check`)."""

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.errors import AppError, Invalid, NotFound
from app.core.principal import Principal
from app.core.tables import Domain
from app.core.urls import browser_host, domain_host, points_at
from app.domains import repository
from app.domains.schemas import DomainCreate, DomainOut, DomainUpdate


async def described(session: AsyncSession, domain: Domain) -> DomainOut:
    """The domain as the API shows it, with its count of links."""
    counts = await repository.link_counts(session, [domain.host])
    return to_out(domain, counts.get(domain.host, 0))


def to_out(domain: Domain, links: int) -> DomainOut:
    return DomainOut(
        host=domain.host,
        root_url=domain.root_url,
        not_found_url=domain.not_found_url,
        links=links,
        created_at=domain.created_at,
    )


async def refuse_loops(session: AsyncSession, base_host: str, urls: dict[str, str | None]) -> None:
    """Refuse a destination (field -> URL) on this service: the base host or any registered
    domain, whoever's. One short link leading to another can loop."""
    hosts = {field: browser_host(url) for field, url in urls.items() if url}
    registered = await repository.registered(session, (h for h in hosts.values() if h))
    for field, url in urls.items():
        if url and (points_at(url, base_host) or hosts[field] in registered):
            raise Invalid("redirect_loop", f"{field} must not point at this service", field)


async def create_domain(
    session: AsyncSession, principal: Principal, data: DomainCreate, base_host: str
) -> Domain:
    if data.host == base_host:
        raise AppError(
            409, "domain_taken", f"{data.host} is the base host, every workspace's already"
        )
    await refuse_loops(
        session, base_host, {"root_url": data.root_url, "not_found_url": data.not_found_url}
    )
    domain = Domain(
        workspace_id=principal.workspace_id,
        host=data.host,
        root_url=data.root_url,
        not_found_url=data.not_found_url,
    )
    try:
        async with session.begin_nested():
            session.add(domain)
    except IntegrityError:
        raise AppError(409, "domain_taken", f"{data.host} is registered already") from None
    audit.record(session, principal, "domain.create", domain.host,
                 data.model_dump(mode="json", exclude_unset=True), workspace_id=domain.workspace_id)  # fmt: skip
    return domain


async def get_domain(session: AsyncSession, principal: Principal, host: str) -> Domain:
    domain = await repository.find(session, principal, host)
    if domain is None:
        raise NotFound("domain")
    return domain


async def update_domain(
    session: AsyncSession, principal: Principal, host: str, data: DomainUpdate, base_host: str
) -> Domain:
    domain = await get_domain(session, principal, host)
    changes = {name: getattr(data, name) for name in data.model_fields_set}
    await refuse_loops(session, base_host, changes)
    for name, value in changes.items():
        setattr(domain, name, value)
    await session.flush()
    audit.record(session, principal, "domain.update", domain.host,
                 data.model_dump(mode="json", exclude_unset=True), workspace_id=domain.workspace_id)  # fmt: skip
    return domain


async def delete_domain(session: AsyncSession, principal: Principal, host: str) -> None:
    """Remove a domain none of whose links is active: a link that is must be archived first
    (its short URL then stops working, which is the point of asking)."""
    domain = await get_domain(session, principal, host)
    active = (await repository.link_counts(session, [host], archived=False)).get(host, 0)
    if active:
        raise AppError(
            409,
            "domain_in_use",
            f"{active} active link{'s' if active > 1 else ''} live on {host}: archive "
            f"{'them' if active > 1 else 'it'} first (PATCH /api/links/SLUG?domain={host} "
            '{"archived": true}), then remove the domain',
            {"links": active},
        )
    audit.record(session, principal, "domain.delete", domain.host, workspace_id=domain.workspace_id)
    await session.delete(domain)
    await session.flush()


async def list_domains(session: AsyncSession, principal: Principal) -> list[DomainOut]:
    domains = await repository.visible(session, principal)
    counts = await repository.link_counts(session, [d.host for d in domains])
    return [to_out(domain, counts.get(domain.host, 0)) for domain in domains]


async def list_with_workspaces(
    session: AsyncSession, principal: Principal
) -> list[tuple[DomainOut, str]]:
    """Every domain the caller sees, with its workspace's name (for the command line)."""
    names = await repository.workspace_names(session)
    domains = await repository.visible(session, principal)
    counts = await repository.link_counts(session, [d.host for d in domains])
    return [(to_out(d, counts.get(d.host, 0)), names[d.workspace_id]) for d in domains]


async def link_domain(
    session: AsyncSession, workspace_id: int, given: str | None, base_host: str
) -> str:
    """The `domain` a link of the workspace is stored with: "" for the base host (or none
    given), else a domain registered to the workspace. Another workspace's domain is
    refused as an unknown one is."""
    if given is None:
        return ""
    try:
        host = domain_host_or_base(given, base_host)
    except ValueError as exc:
        raise Invalid("invalid_domain", str(exc), "domain") from None
    if host and await repository.of_workspace(session, workspace_id, host) is None:
        raise Invalid(
            "unknown_domain",
            f"{host} is not a domain of this workspace: register it first (POST /api/domains)",
            "domain",
        )
    return host


def domain_host_or_base(text: str, base_host: str) -> str:
    """ "" for the base host, else the domain host `text` names (ValueError if none)."""

    if browser_host(f"http://{text.strip()}/") == base_host:
        return ""
    return domain_host(text)


def stored_or_as_given(text: str, base_host: str) -> str:
    """A host as links store it ("" for the base host); as given when it names no domain,
    so that it matches no link."""
    try:
        return domain_host_or_base(text, base_host)
    except ValueError:
        return text


async def hosts_of_workspace(session: AsyncSession, workspace_id: int) -> list[str]:
    return await repository.hosts_of_workspace(session, workspace_id)


async def is_registered(session: AsyncSession, host: str) -> bool:
    return bool(await repository.registered(session, [host]))
