"""The link form: what the browser posts, turned into the API's own schemas, so the
dashboard accepts exactly what the API accepts; and errors put back beside their fields."""

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from app.core.errors import AppError
from app.core.tables import UTM_FIELDS
from app.links.schemas import LinkCreate, LinkOut, LinkUpdate

PREVIEW_FIELDS = ("og_title", "og_description", "og_image")
LIMIT_FIELDS = ("expires_at", "max_clicks", "fallback_url")
TEXT_FIELDS = ("url", "title", *UTM_FIELDS, *PREVIEW_FIELDS, *LIMIT_FIELDS)
FIELDS = (*TEXT_FIELDS, "slug", "tags", "redirect_code", "forward_query", "domain")  # on the form
EXPIRES_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends; UTC here
REDIRECT_CODES = (302, 301, 307, 308)
# Only the offered codes become numbers: int() would raise on "²" or on 5,000 digits.
CODES_BY_TEXT = {str(code): code for code in REDIRECT_CODES}


class FormErrors(Exception):
    """Messages by field name; "" holds those of the whole form."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _as_field(moment: datetime | None) -> str:
    """A moment as the datetime-local field shows it: in UTC, to the minute."""
    return moment.astimezone(UTC).strftime(EXPIRES_FORMAT) if moment else ""


def values_of(link: LinkOut | None) -> dict[str, str]:
    """The form's fields as text: a new link's defaults, or an existing link's values."""
    if link is None:
        return {"redirect_code": "302", "forward_query": "on"}
    values = {name: str(getattr(link, name) or "") for name in TEXT_FIELDS}
    values["expires_at"] = _as_field(link.expires_at)
    values["slug"] = link.slug
    values["tags"] = ", ".join(link.tags)
    values["redirect_code"] = str(link.redirect_code)
    values["forward_query"] = "on" if link.forward_query else ""
    return values


def text_of(form: FormData) -> dict[str, str]:
    """The posted fields, as text to show again if the form is refused."""
    names = (*TEXT_FIELDS, "slug", "tags", "domain")
    values = {name: str(form.get(name, "")).strip() for name in names}
    values["redirect_code"] = str(form.get("redirect_code", "302"))
    values["forward_query"] = "on" if form.get("forward_query") else ""
    return values


def _body(values: dict[str, str]) -> dict[str, Any]:
    """The API body for the form's text: a blank field is cleared (or absent on create)."""
    if not values["url"]:
        raise FormErrors({"url": "a destination URL is required"})
    body: dict[str, Any] = {name: values[name] or None for name in TEXT_FIELDS}
    # Commas, or `|` as in CSV imports: either separates tags.
    body["tags"] = [tag.strip() for tag in re.split(r"[,|]", values["tags"]) if tag.strip()]
    code = values["redirect_code"]
    body["redirect_code"] = CODES_BY_TEXT.get(code, code)  # else the schema refuses it
    body["forward_query"] = bool(values["forward_query"])
    return body


def errors_from(exc: ValidationError) -> FormErrors:
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        errors.setdefault(field, error["msg"].removeprefix("Value error, "))
    return FormErrors(errors)


def link_create(values: dict[str, str]) -> LinkCreate:
    try:
        body = {**_body(values), "slug": values["slug"] or None}
        return LinkCreate.model_validate({**body, "domain": values["domain"] or None})
    except ValidationError as exc:
        raise errors_from(exc) from None


def link_update(values: dict[str, str], expires_at: datetime | None) -> LinkUpdate:
    """The edit for the form's text; `expires_at` is the link's stored expiry."""
    body = _body(values)
    if values["expires_at"] == _as_field(expires_at):
        # The field shows minutes only: left as shown, the stored seconds stay.
        del body["expires_at"]
    try:
        return LinkUpdate.model_validate(body)
    except ValidationError as exc:
        raise errors_from(exc) from None


def errors_of(exc: FormErrors | AppError) -> dict[str, str]:
    """Messages by field for the form: its own, or a refusal of the links service (a
    redirect loop, a slug taken) beside the field it is about."""
    if isinstance(exc, FormErrors):
        return exc.errors
    field = exc.details.get("field") if isinstance(exc.details, dict) else None
    if exc.code == "slug_taken":
        field = "slug"
    return {field or "": exc.message}
