"""One error type for the API and the handlers that render every error as
`{"error": {"code", "message", "details"}}`, the one shape API clients handle."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.errors import AppError, ErrorBody, Invalid, validation_error


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
