"""The ceiling for the redirect benchmark: the cheapest redirect this stack serves, a bare
Starlette route returning a fixed 302 (why: docs/design.md)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route


async def redirect(request: Request) -> RedirectResponse:
    return RedirectResponse("https://shop.example.com/sale?utm_source=bench", status_code=302)


app = Starlette(routes=[Route("/{slug}", redirect)])
