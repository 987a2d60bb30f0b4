"""The link form: what the browser posts, turned into the API's own schemas, so the
dashboard accepts exactly what the API accepts; and errors put back beside their fields.

Targeting comes as rows of fields named by kind, row and field (`rule-0-name`,
`rule-0-device` once per ticked box, `variant-1-weight`). Rows are taken in their order,
blank ones left out, so that the N-th rule or variant the API is given is the N-th row
the form shows again: an error about `rules.N.url` goes beside that row's URL."""

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
# Fields whose errors the form shows beside them too, but for the rows' (ROW_FIELD).
OTHER_FIELDS = ("password", "utm_template", "rules", "variants")
EXPIRES_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends; UTC here
REDIRECT_CODES = (302, 301, 307, 308)
# Only the offered codes become numbers: int() would raise on "²" or on 5,000 digits.
CODES_BY_TEXT = {str(code): code for code in REDIRECT_CODES}

# A rule's conditions but its device boxes: comma-separated values.
LIST_CONDITIONS = ("os", "country", "language")
ROW_FIELDS = {
    "rule": ("name", "device", *LIST_CONDITIONS, "url"),
    "variant": ("name", "url", "weight"),
}
KINDS = {"rule": "rules", "variant": "variants"}  # a row's kind -> the API's field
# A row's field (or the row itself, for what is about the whole rule) as the form names it.
# Row numbers have at most three digits: more rows than the API takes are refused anyway.
ROW_FIELD = re.compile(r"(rule|variant)-(0|[1-9][0-9]{0,2})(?:-([a-z]+))?")
BLANK_ROWS = 2  # rows offered to add a rule or a variant, without script


class FormErrors(Exception):
    """Messages by field name; "" holds those of the whole form."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _as_field(moment: datetime | None) -> str:
    """A moment as the datetime-local field shows it: in UTC, to the minute."""
    return moment.astimezone(UTC).strftime(EXPIRES_FORMAT) if moment else ""


def blank_row(kind: str) -> dict[str, Any]:
    return {name: [] if name == "device" else "" for name in ROW_FIELDS[kind]}


def values_of(link: LinkOut | None) -> dict[str, Any]:
    """The form's fields as text: a new link's defaults, or an existing link's values.
    Its password is never among them."""
    if link is None:
        return {"redirect_code": "302", "forward_query": "on", "rules": [], "variants": []}
    values: dict[str, Any] = {name: str(getattr(link, name) or "") for name in TEXT_FIELDS}
    values["expires_at"] = _as_field(link.expires_at)
    values["slug"] = link.slug
    values["tags"] = ", ".join(link.tags)
    values["redirect_code"] = str(link.redirect_code)
    values["forward_query"] = "on" if link.forward_query else ""
    values["rules"] = [
        {
            "name": rule.name,
            "device": rule.conditions.get("device", []),
            **{name: ", ".join(rule.conditions.get(name, [])) for name in LIST_CONDITIONS},
            "url": rule.url,
        }
        for rule in link.rules or []
    ]
    values["variants"] = [
        {"name": variant.name, "url": variant.url, "weight": str(variant.weight)}
        for variant in link.variants or []
    ]
    return values


def _rows(form: FormData, kind: str) -> list[dict[str, Any]] | None:
    """The form's rows of `kind` in their order, blank ones left out; None when the form
    has none at all (one from before targeting, or a script's: it leaves them as they are)."""
    numbers = sorted(
        {int(match[2]) for key in form if (match := ROW_FIELD.fullmatch(key)) and match[1] == kind}
    )
    if not numbers:
        return None
    rows = []
    for number in numbers:
        row: dict[str, Any] = {}
        for name in ROW_FIELDS[kind]:
            key = f"{kind}-{number}-{name}"
            if name == "device":
                row[name] = [str(value) for value in form.getlist(key) if value]
            else:
                row[name] = str(form.get(key, "")).strip()
        if any(row.values()):
            rows.append(row)
    return rows


def text_of(form: FormData) -> dict[str, Any]:
    """The posted fields, as text to show again if the form is refused (but the password,
    which `password_of` reads and no page shows)."""
    names = (*TEXT_FIELDS, "slug", "tags", "domain", "utm_template")
    values: dict[str, Any] = {name: str(form.get(name, "")).strip() for name in names}
    values["redirect_code"] = str(form.get("redirect_code", "302"))
    values["forward_query"] = "on" if form.get("forward_query") else ""
    values["rules"] = _rows(form, "rule")
    values["variants"] = _rows(form, "variant")
    values["remove_password"] = "on" if form.get("remove_password") else ""
    return values


def password_of(form: FormData) -> str:
    """The password typed, as typed ("" for none): spaces are part of a password."""
    return str(form.get("password", ""))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _rule(row: dict[str, Any]) -> dict[str, Any]:
    """A rule row as the API takes it: the conditions filled in, the others left out."""
    conditions: dict[str, list[str]] = {}
    if row["device"]:
        conditions["device"] = row["device"]
    for name in LIST_CONDITIONS:
        if given := _split(row[name]):
            conditions[name] = given
    return {"name": row["name"], "if": conditions, "url": row["url"]}


def _body(values: dict[str, Any]) -> dict[str, Any]:
    """The API body for the form's text: a blank field is cleared (or absent on create)."""
    if not values["url"]:
        raise FormErrors({"url": "a destination URL is required"})
    body: dict[str, Any] = {name: values[name] or None for name in TEXT_FIELDS}
    # Commas, or `|` as in CSV imports: either separates tags.
    body["tags"] = [tag.strip() for tag in re.split(r"[,|]", values["tags"]) if tag.strip()]
    code = values["redirect_code"]
    body["redirect_code"] = CODES_BY_TEXT.get(code, code)  # else the schema refuses it
    body["forward_query"] = bool(values["forward_query"])
    # No row left: none (the edit removes them).
    if values["rules"] is not None:
        body["rules"] = [_rule(row) for row in values["rules"]] or None
    if values["variants"] is not None:
        body["variants"] = [dict(row) for row in values["variants"]] or None
    return body


# Pydantic's words for a row's field, where the form can say more.
ROW_MESSAGES = {
    ("name", "string_too_short"): "a name is required",
    ("country", "string_pattern_mismatch"): "'{input}' is no two-letter country code (ISO 3166), e.g. ID",
    ("language", "string_pattern_mismatch"): "'{input}' is no language code of 2 or 3 letters, e.g. id",
    ("weight", "int_parsing"): "a whole number of per cent, 1 to 100",
    ("weight", "int_type"): "a whole number of per cent, 1 to 100",
}  # fmt: skip


def field_of(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """The form's name for the API's place of an error: `rules.2.if.country.0` is
    `rule-2-country`, `rules.2.if` the row `rule-2`; `url` is `url`."""
    if not loc:
        return ""
    kind = next((row for row, field in KINDS.items() if field == loc[0]), None)
    if kind is None or len(loc) < 2:
        return str(loc[0])
    rest = [part for part in loc[2:] if part != "if" and not isinstance(part, int)]
    return f"{kind}-{loc[1]}" + (f"-{rest[0]}" if rest else "")


def errors_from(exc: ValidationError) -> FormErrors:
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = field_of(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if (row := ROW_FIELD.fullmatch(field)) and row[3] == "url" and not error["input"]:
            message = "a URL is required"
        elif row and (better := ROW_MESSAGES.get((row[3], error["type"]))):
            message = better.format(input=error["input"])
        errors.setdefault(field, message)
    return FormErrors(errors)


def _row_number(match: re.Match[str]) -> str:
    return f"{match[1][:-1]} {int(match[2]) + 1}"  # as the form counts its rows, from 1


def _beside(message: str, field: str) -> str:
    """A service's message for a row's field, as read beside it: `rules.0.url must not
    point at this service` is `this URL must not point …`; `variants.0.name: 'a' is
    rules.1's name too` is `'a' is rule 2's name too`."""
    if message.startswith(f"{field}: "):
        message = message.removeprefix(f"{field}: ")
    elif message.startswith(field):
        label = "URL" if field.endswith(".url") else field.rpartition(".")[2]
        message = f"this {label}" + message.removeprefix(field)
    return re.sub(r"\b(rules|variants)\.(\d+)\b", _row_number, message)


def link_create(values: dict[str, Any], password: str) -> LinkCreate:
    try:
        body = {**_body(values), "slug": values["slug"] or None}
        body["utm_template"] = values["utm_template"] or None
        if password:
            body["password"] = password
        return LinkCreate.model_validate({**body, "domain": values["domain"] or None})
    except ValidationError as exc:
        raise errors_from(exc) from None


def link_update(values: dict[str, Any], password: str, expires_at: datetime | None) -> LinkUpdate:
    """The edit for the form's text; `expires_at` is the link's stored expiry. A blank
    password keeps the link's; `remove_password` removes it."""
    body = _body(values)
    if values["expires_at"] == _as_field(expires_at):
        # The field shows minutes only: left as shown, the stored seconds stay.
        del body["expires_at"]
    if password and values["remove_password"]:
        raise FormErrors({"password": "type a new password or remove it, not both"})
    if values["remove_password"]:
        body["password"] = None
    elif password:
        body["password"] = password
    try:
        return LinkUpdate.model_validate(body)
    except ValidationError as exc:
        raise errors_from(exc) from None


def errors_of(exc: FormErrors | AppError) -> dict[str, str]:
    """Messages by field for the form: its own, or a refusal of the links service (a
    redirect loop, a slug taken, a route's name given twice) beside the field it is about."""
    if isinstance(exc, FormErrors):
        return exc.errors
    where = exc.details.get("field") if isinstance(exc.details, dict) else None
    if exc.code == "slug_taken":
        where = "slug"
    if not where:
        return {"": exc.message}
    field = field_of([int(part) if part.isdigit() else part for part in where.split(".")])
    message = _beside(exc.message, where) if ROW_FIELD.fullmatch(field) else exc.message
    return {field: message}


def shown_beside_a_field(name: str) -> bool:
    """Whether the form shows an error of this name beside its field (else above them)."""
    return name in FIELDS or name in OTHER_FIELDS or ROW_FIELD.fullmatch(name) is not None
