"""The application factory: the FastAPI app for the API, and a small ASGI dispatcher in
front of it that sends `GET|HEAD /{slug}` straight to the redirect handler."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import ops
from app.accounts.routes import router as accounts_router
from app.api.deps import AppState
from app.api.errors import (
    API_ERROR_RESPONSES,
    error_response,
    install_error_handlers,
    refuse_nul_characters,
)
from app.api_docs import serve_docs
from app.clickhouse.client import connect
from app.clicks.intake import ClientIntake
from app.clicks.log import ClickLog
from app.clicks.retention import RetentionTask
from app.clicks.stream import StreamForwarder
from app.config import Settings, get_settings
from app.core.database import create_engine, create_sessionmaker
from app.core.errors import AppError
from app.dashboard.people import router as dashboard_people_router
from app.dashboard.reports import public as report_router
from app.dashboard.reports import router as dashboard_reports_router
from app.dashboard.routes import router as dashboard_router
from app.dashboard.stats_pages import router as dashboard_stats_router
from app.domains.routes import router as domains_router
from app.links.routes import router as links_router
from app.links.service import LinkContext
from app.metrics import Metrics
from app.ratelimit import RateLimiter
from app.redirect.cache import LinkCache
from app.redirect.routes import RedirectHandler, is_root, slug_of
from app.redirect.sites import Sites
from app.redirect.targeting import Places
from app.secret_key import SecretKey
from app.stats.routes import router as stats_router
from app.utm_templates.routes import router as utm_templates_router

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
# How long the start waits for the instance secret (kept in the database in development):
# a server must come up while the database is down, to serve cached links and say so.
SECRET_WAIT_S = 2.0
# At shutdown, how long the last forwarding round to the click stream may take: what it
# does not forward stays in the local log, for the next process on this machine.
LAST_FORWARD_S = 3.0
# Request headers (names and values together) past this are refused with 431 before the
# redirect or FastAPI sees them: uvicorn's httptools parser has no limit of its own
# (h11_max_incomplete_event_size applies to h11 only). A browser's real headers weigh a
# few KB (User-Agent, client hints, Accept-*, a Referer, the short domain's few cookies).
# nginx, the usual proxy in front, passes lines of up to 8 KB, four of them at most
# (large_client_header_buffers 4 8k), about 33 KB in all; Cloudflare 32 KB. So nothing a
# default proxy lets through is refused, and each request costs the process 32 KiB at
# most while it is served; what a click keeps of it is cut far shorter (redirect/routes.py).
MAX_HEADER_BYTES = 32 * 1024
HEADERS_TOO_LARGE = (
    b'{"error":{"code":"headers_too_large","message":"request headers over %d bytes",'
    b'"details":null}}' % MAX_HEADER_BYTES
)


class BodyLimit:
    """Refuses request bodies over `max_bytes` (or the path's own limit in `larger`) with
    413, whether announced by Content-Length or streamed in chunks, before the app buffers
    them."""

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        max_bytes = self.larger.get(scope["path"], self.max_bytes)
        too_large = HTTPException(413, f"request body over {max_bytes} bytes")
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if length.isdigit() and int(length) > max_bytes:
            return await error_response(AppError(413, "payload_too_large", too_large.detail))(
                scope, receive, send
            )
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise too_large  # FastAPI renders it with the error handler
            return message

        await self.app(scope, limited, send)


class Dispatcher:
    def __init__(self, api: FastAPI, redirect: RedirectHandler, cors_origins: list[str]) -> None:
        self.api = api
        self.redirect = redirect
        self.limited: ASGIApp = BodyLimit(
            api, larger={"/api/links/import": api.state.tautan.settings.import_max_bytes}
        )
        # CORS applies to the API only: redirects and pages never carry CORS headers.
        self.api_with_cors: ASGIApp = self.limited
        if cors_origins:
            self.api_with_cors = CORSMiddleware(
                self.limited,
                allow_origins=cors_origins,
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "X-API-Key", "Content-Type"],
                max_age=600,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = None
        if scope["type"] == "http":
            size = 0
            for name, value in scope["headers"]:  # a plain loop: the cheapest sum of lengths
                size += len(name) + len(value)
                if name == b"host":
                    host = value
            if size > MAX_HEADER_BYTES:
                return await _refuse_headers(send)
        if slug_of(scope) is not None:
            await self.redirect(scope, receive, send, host)
        elif scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.api_with_cors(scope, receive, send)
        elif not (is_root(scope) and await self.redirect.root(send, host)):
            await self.limited(scope, receive, send)


async def _refuse_headers(send: Send) -> None:
    """431 in the API's error shape, and the connection closed: nothing of the request is
    read or kept."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(HEADERS_TOO_LARGE)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 431, "headers": headers})
    await send({"type": "http.response.body", "body": HEADERS_TOO_LARGE})


def create_app(settings: Settings | None = None) -> Dispatcher:
    settings = settings or get_settings()
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    secret_key = SecretKey(sessionmaker, settings.secret_key)
    read_engine = (
        create_engine(settings.read_database_url) if settings.read_database_url else engine
    )
    read_sessionmaker = create_sessionmaker(engine, deferred=True)
    cache = LinkCache(read_sessionmaker, settings.link_cache_ttl_s)
    sites = Sites(
        read_sessionmaker, LinkContext(settings.base_url).short_host, settings.link_cache_ttl_s
    )
    click_log = ClickLog(
        settings.spool_dir,
        interval_s=settings.flush_interval_ms / 1000,
        max_bytes=settings.spool_max_mb * 1024 * 1024,
    )
    forwarder = None
    if settings.click_stream:
        forwarder = StreamForwarder(
            settings.click_stream, settings.spool_dir, interval_s=settings.flush_interval_ms / 1000
        )
    metrics = Metrics(click_log, settings.spool_dir, forwarder)
    intake = ClientIntake(settings)
    rate_limiter = RateLimiter(settings)
    places = Places(settings.geo_db_path(), missing_ok=not settings.geoip_db)  # country rules
    retention = RetentionTask(engine, settings.retention_days, settings.audit_retention_days)
    clickhouse = connect(settings.clickhouse_url) if settings.clickhouse_url else None

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        keying = asyncio.create_task(intake.key_with(secret_key))
        await asyncio.wait([keying], timeout=SECRET_WAIT_S)  # at once, unless the database is down
        sealing = asyncio.create_task(click_log.run())
        forwarding = asyncio.create_task(forwarder.run()) if forwarder else None
        # Without a retention, only PostgreSQL's monthly partitions need looking after.
        upkeep = None
        if settings.retention_days or engine.dialect.name == "postgresql":
            upkeep = asyncio.create_task(retention.run())
        # What exists now lives as long as the process: keep it out of the collector's
        # full passes, whose pauses redirects would otherwise wait behind.
        gc.freeze()
        yield
        # The server has stopped taking requests: seal the log's last segment for the
        # writers, then close.
        retention.stop()  # after its current batch
        if upkeep:
            await upkeep
        click_log.stop()
        await sealing
        if forwarder and forwarding:  # what was logged last, if Redis answers at once
            forwarder.stop()
            try:
                await asyncio.wait_for(forwarding, LAST_FORWARD_S)
            except TimeoutError:
                log.warning("the click stream did not take this process's last clicks in "
                            "%.0f s: they wait in the local log for the next start on this "
                            "machine", LAST_FORWARD_S)  # fmt: skip
            await forwarder.close()
        keying.cancel()
        rate_limiter.close()
        places.close()
        await engine.dispose()
        await read_engine.dispose()
        if clickhouse:
            await clickhouse.close()

    api = FastAPI(
        title="Tautan",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_characters)],
        # Operation ids are the route functions' names (`create_link`, `healthz` …), which
        # generated clients take for theirs; the stats router prefixes its own with `stats_`.
        generate_unique_id_function=lambda route: route.name,
        # Served by serve_docs below, from this server's own files.
        docs_url=None,
        redoc_url=None,
    )
    cache.watch(sessionmaker)
    sites.watch(sessionmaker)
    api.state.tautan = AppState(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        read_sessionmaker=read_sessionmaker,
        stats_sessionmaker=create_sessionmaker(read_engine, deferred=True),
        link_cache=cache,
        link_context=LinkContext(base_url=settings.base_url),
        rate_limiter=rate_limiter,
        click_log=click_log,
        metrics=metrics,
        secret_key=secret_key,
        retention=retention,
        clickhouse=clickhouse,
    )
    install_error_handlers(api)
    api.include_router(ops.router)
    api.include_router(links_router, responses=API_ERROR_RESPONSES)
    api.include_router(domains_router, responses=API_ERROR_RESPONSES)
    api.include_router(utm_templates_router, responses=API_ERROR_RESPONSES)
    api.include_router(stats_router, responses=API_ERROR_RESPONSES)
    api.include_router(accounts_router, responses=API_ERROR_RESPONSES)
    # Before the dashboard's own: its last route answers every path it does not know.
    api.include_router(dashboard_people_router)
    api.include_router(dashboard_stats_router)
    api.include_router(dashboard_reports_router)
    api.include_router(report_router)
    api.include_router(dashboard_router)
    serve_docs(api)
    return Dispatcher(
        api,
        RedirectHandler(
            sites,
            cache,
            click_log.append,
            intake,
            metrics,
            rate_limiter.hit_password,
            places,
            settings.client_hints,
        ),
        settings.cors_origins,
    )
