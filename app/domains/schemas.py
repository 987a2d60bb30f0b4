from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.urls import check_url, domain_host

Url = Annotated[str, AfterValidator(check_url)]
Host = Annotated[
    str,
    Field(
        max_length=300, description="a domain name, e.g. go.example.com; stored as browsers send it"
    ),
    AfterValidator(domain_host),
]


class DomainUpdate(BaseModel):
    """Absent means unchanged; null clears."""

    model_config = ConfigDict(extra="forbid")

    root_url: Url | None = Field(None, description="where `GET /` on the domain goes")
    not_found_url: Url | None = Field(None, description="where a slug the domain lacks goes")


class DomainCreate(DomainUpdate):
    host: Host


class DomainOut(BaseModel):
    host: str
    root_url: str | None
    not_found_url: str | None
    links: int = Field(description="links on the domain, archived ones included")
    created_at: datetime


class DomainList(BaseModel):
    domains: list[DomainOut]
