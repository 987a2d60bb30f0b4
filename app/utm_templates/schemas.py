from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.links.schemas import NO_NUL, UtmValue

# What a link names in `utm_template`. Any character but NUL: in a path, URL-encoded.
TemplateName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NO_NUL)
]


class UtmFields(BaseModel):
    """The campaign tags; an empty one is no tag (as on a link)."""

    model_config = ConfigDict(extra="forbid")

    utm_source: UtmValue | None = None
    utm_medium: UtmValue | None = None
    utm_campaign: UtmValue | None = None
    utm_term: UtmValue | None = None
    utm_content: UtmValue | None = None


class UtmTemplateCreate(UtmFields):
    """A template needs one UTM field at least."""

    name: TemplateName = Field(description="unique in the workspace; links name it")


class UtmTemplateUpdate(UtmFields):
    """Absent means unchanged; null clears a UTM field (one must remain)."""

    name: TemplateName | None = Field(None, description="a new name, free in the workspace")

    @model_validator(mode="after")
    def _name_kept(self) -> "UtmTemplateUpdate":
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("a template keeps a name: give a new one or leave `name` out")
        return self


class UtmTemplateOut(BaseModel):
    name: str
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    created_at: datetime
    updated_at: datetime


class UtmTemplateList(BaseModel):
    utm_templates: list[UtmTemplateOut]
