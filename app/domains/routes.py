"""`/api/domains`: a workspace's branded domains, and the check TLS proxies ask before they
get a certificate for a host (on-demand TLS)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from starlette.convertors import Convertor, register_url_convertor

from app.api.deps import ReadSession, ShortUrls, WriteSession, writes_of
from app.auth import require_scopes
from app.core.errors import NotFound
from app.core.principal import OWNER, Principal
from app.core.urls import domain_host
from app.domains import service
from app.domains.schemas import DomainCreate, DomainList, DomainOut, DomainUpdate

router = APIRouter(prefix="/api/domains", tags=["domains"])

DomainsRead = Annotated[Principal, Depends(require_scopes("links:read"))]
# A workspace's owners keep its domains (keys with the scope `owner`).
DomainsWrite = Annotated[Principal, Depends(writes_of(require_scopes(OWNER)))]


class HostConvertor(Convertor[str]):
    """A host in a path has a dot: `/api/domains/check` is never one."""

    regex = r"[^/]*\.[^/]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("host", HostConvertor())


def _host(host: str) -> str:
    """A host in a path, as stored; a 404 for what no domain can be."""
    try:
        return domain_host(host)
    except ValueError:
        raise NotFound("domain") from None


@router.post("", status_code=201, response_model=DomainOut)
async def create_domain(
    body: DomainCreate, principal: DomainsWrite, session: WriteSession, ctx: ShortUrls
) -> DomainOut:
    """Registers a host for the key's workspace: links may then live on it (`domain` in a
    link body). Point the host's DNS at the server (a CNAME to the base host, or an A
    record) and let the TLS proxy in front get its certificate (docs/domains.md)."""
    domain = await service.create_domain(session, principal, body, ctx.short_host)
    return await service.described(session, domain)


@router.get("", response_model=DomainList)
async def list_domains(principal: DomainsRead, session: ReadSession) -> DomainList:
    return DomainList(domains=await service.list_domains(session, principal))


@router.get(
    "/check",
    responses={200: {"description": "a registered domain"}, 404: {"description": "not one"}},
)
async def check_domain(
    session: ReadSession,
    domain: Annotated[str, Query(max_length=300, description="the host a TLS proxy asks about")],
) -> Response:
    """200 when `domain` is a registered branded domain, else 404; needs no key. A TLS
    proxy asks this before getting a certificate for a host on demand (Caddy's
    `on_demand_tls { ask }`), so that no one can make it request certificates for any name
    pointed at it."""
    try:
        host = domain_host(domain)
    except ValueError:
        return Response(status_code=404)
    return Response(status_code=200 if await service.is_registered(session, host) else 404)


@router.get("/{host:host}", response_model=DomainOut)
async def get_domain(host: str, principal: DomainsRead, session: ReadSession) -> DomainOut:
    domain = await service.get_domain(session, principal, _host(host))
    return await service.described(session, domain)


@router.patch("/{host:host}", response_model=DomainOut)
async def update_domain(
    host: str, body: DomainUpdate, principal: DomainsWrite, session: WriteSession, ctx: ShortUrls
) -> DomainOut:
    domain = await service.update_domain(session, principal, _host(host), body, ctx.short_host)
    return await service.described(session, domain)


@router.delete("/{host:host}", status_code=204)
async def delete_domain(host: str, principal: DomainsWrite, session: WriteSession) -> Response:
    """Removes the domain. Refused (409) while any of its links is active: archive them
    first. Its archived links stay archived, on the host they had."""
    await service.delete_domain(session, principal, _host(host))
    return Response(status_code=204)
