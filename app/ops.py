"""Health and readiness for orchestrators and load balancers."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database answers; 503 when it does not."""
    state = request.app.state
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # any failure means "not ready", with the reason shown
        database = f"error: {type(exc).__name__}"
    body = {"status": "ok" if database == "ok" else "unavailable", "database": database}
    return JSONResponse(body, status_code=200 if database == "ok" else 503)
