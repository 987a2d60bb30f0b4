"""The application factory: the FastAPI app for the API, and a small ASGI dispatcher in
front of it that sends `GET|HEAD /{slug}` straight to the redirect handler."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app import ops
from app.clicks.queue import ClickQueue
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.links.routes import router as links_router
from app.links.service import LinkContext
from app.redirect.cache import LinkCache
from app.redirect.routes import RedirectHandler, slug_of


class Dispatcher:
    def __init__(self, api: FastAPI, redirect: RedirectHandler, cors_origins: list[str]) -> None:
        self.api = api
        self.redirect = redirect
        # CORS applies to the API only: redirects and pages never carry CORS headers.
        self.api_with_cors: ASGIApp = api
        if cors_origins:
            self.api_with_cors = CORSMiddleware(
                api,
                allow_origins=cors_origins,
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "X-API-Key", "Content-Type"],
                max_age=600,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if slug_of(scope) is not None:
            await self.redirect(scope, receive, send)
        elif scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.api_with_cors(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(settings: Settings | None = None) -> Dispatcher:
    settings = settings or get_settings()
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    cache = LinkCache(sessionmaker, settings.link_cache_ttl_s)
    queue = ClickQueue(maxsize=max(10 * settings.flush_batch, 10_000))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    api = FastAPI(title="Tautan", version="0.1.0", lifespan=lifespan)
    api.state.settings = settings
    api.state.engine = engine
    api.state.sessionmaker = sessionmaker
    api.state.link_cache = cache
    api.state.link_context = LinkContext(base_url=settings.base_url)
    api.state.click_queue = queue
    install_error_handlers(api)
    api.include_router(ops.router)
    api.include_router(links_router)
    return Dispatcher(api, RedirectHandler(cache, queue.put), settings.cors_origins)
