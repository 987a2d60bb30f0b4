"""One error type for the API and the handlers that render every error as
`{"error": {"code", "message", "details"}}` (DESIGN §5)."""

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


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


def validation_error(errors: Sequence[Any], message: str = "invalid request") -> AppError:
    """The 422 for pydantic's errors, with where and what of each."""
    details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    return AppError(422, "validation_error", message, details)


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
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(AppError(exc.status_code, code, str(exc.detail), None, exc.headers))
