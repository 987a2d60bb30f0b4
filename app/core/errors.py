"""The one error type of every part of Tautan: a status, a code, a message and details,
which the API renders as `{"error": {"code", "message", "details"}}`."""

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel


class AppError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(AppError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not_found", f"{what} not found")


class Invalid(AppError):
    """Input that is well-formed JSON but not acceptable: 422, nothing written."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(422, code, message, {"field": field} if field else None)


def validation_error(errors: Sequence[Any]) -> AppError:
    """The 422 for pydantic's errors, with where and what of each; the message names the
    first problem, as a person reads it: `url: only http and https URLs are accepted`."""
    details = [{"loc": list(e["loc"]), "msg": _plain(e["msg"]), "type": e["type"]} for e in errors]
    if not details:
        return AppError(422, "validation_error", "invalid request", details)
    first = details[0]
    where = ".".join(str(part) for part in first["loc"] if part not in ("body", "query", "path"))
    message = f"{where}: {first['msg']}" if where else first["msg"]
    if len(details) > 1:
        message += f" (and {len(details) - 1} more: see details)"
    return AppError(422, "validation_error", message, details)


def _plain(message: str) -> str:
    # pydantic prefixes the messages of our own validators; the reader needs only ours.
    return message.removeprefix("Value error, ")


class ErrorBody(BaseModel):
    """An error as API clients read it (also in bulk and import reports, per row)."""

    code: str
    message: str
    details: Any = None
