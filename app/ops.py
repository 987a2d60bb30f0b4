"""Health, readiness and metrics for orchestrators, load balancers and Prometheus."""

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.api.deps import State

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str = Field(description="`ok`, or `error: ` and the kind of failure")
    queue_depth: int = Field(
        description="clicks in this machine's local click log, not yet written (or forwarded)"
    )
    lag_seconds: float = Field(description="age of the oldest click not yet written")


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "the database does not answer"}},
)
async def readyz(state: State) -> JSONResponse:
    """The database answers; 503 when it does not."""
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # any failure means "not ready", with the reason shown
        database = f"error: {type(exc).__name__}"
    body = {
        "status": "ok" if database == "ok" else "unavailable",
        "database": database,
        "queue_depth": state.metrics.log_size.measure()[0],
        "lag_seconds": round(state.metrics.lag_seconds(), 3),
    }
    return JSONResponse(body, status_code=200 if database == "ok" else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State) -> PlainTextResponse:
    """Prometheus text: redirects, clicks logged and written, queue depth, spool size, writer lag
    and flush latency."""
    return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
