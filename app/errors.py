"""One error type for the API and the handlers that render every error as
`{"error": {"code", "message", "details"}}`, the one shape API clients handle."""

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match


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


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    error: ErrorBody


def documented(description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"model": ErrorOut, "description": description}
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


# The errors any /api/* operation may answer, so that OpenAPI clients know their shape.
API_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: documented("the request cannot be read (a body that is not JSON, a bad cursor)"),
    401: documented(
        "no API key, or an unknown, revoked or expired one",
        **{"WWW-Authenticate": "Bearer"},
    ),
    403: documented("the API key lacks a scope the operation needs"),
    404: documented("no such link (or not in the key's workspace)"),
    409: documented("the slug is taken"),
    413: documented("the request body is over the size limit"),
    422: documented("a parameter or a body field is invalid; `details` says which"),
    429: documented(
        "over a rate limit: writes per API key or per client address, or failed "
        "authentications per client address",
        **{"Retry-After": "seconds until the request may be sent again"},
    ),
}


async def refuse_nul_characters(request: Request) -> None:
    """A dependency: no path or query parameter may hold NUL, which PostgreSQL text cannot
    hold either; 422 here instead of a database error."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if "\x00" in str(value):
            raise Invalid("invalid_parameter", "NUL characters are not allowed", name)


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


def error_response(error: AppError) -> JSONResponse:
    return JSONResponse(
        {"error": jsonable_encoder(error.body())}, status_code=error.status, headers=error.headers
    )


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return error_response(AppError(exc.status_code, code, str(exc.detail), None, headers))


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: Starlette names only the first route's."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    return ", ".join(allowed)
