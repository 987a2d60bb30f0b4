"""/docs (Swagger UI) and /redoc from this server's own files: no CDN, so they work on a box
with no Internet access and under a strict Content-Security-Policy."""

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

# Swagger UI and ReDoc as the fastapi-offline package ships them, served under /docs/: /docs
# and /redoc load nothing from another origin, so they work on a box with no Internet and
# under a strict CSP.
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def _docs_page(page: HTMLResponse) -> HTMLResponse:
    """The page with a Content-Security-Policy that admits this server's files only, and
    the page's own inline script (Swagger UI's start-up call) by its hash."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in re.findall(rb"<script>(.*?)</script>", page.body, re.DOTALL)
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; worker-src blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


def serve_docs(api: FastAPI) -> None:
    openapi_url, title = api.openapi_url or "/openapi.json", f"{api.title} API"

    @api.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon.png",
        )
        return _docs_page(page)

    @api.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url="/docs/redoc.standalone.js",
            redoc_favicon_url="/docs/favicon.png",
            with_google_fonts=False,
        )
        return _docs_page(page)

    # After the page: /docs itself stays the route above, /docs/<file> is a file.
    api.mount("/docs", StaticFiles(directory=DOCS_ASSETS), name="docs_assets")
