"""/docs and /redoc: Swagger UI and ReDoc load their files from Tautan itself (as the
fastapi-offline package ships them), never from a CDN, so they work on a box with no
Internet and under their own strict Content-Security-Policy. tests/system/test_docs_browser.py
opens them in Chromium."""

import base64
import hashlib
import re

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support.app import BASE_URL

PAGES = {
    "/docs": {"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/favicon.png"},
    "/redoc": {"/docs/redoc.standalone.js", "/docs/favicon.png"},
}
CONTENT_TYPES = {"js": "text/javascript", "css": "text/css", "png": "image/png"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    """The app without its lifespan: the pages and their files touch no database."""
    app = create_app(Settings(database_url="sqlite+aiosqlite://", base_url=BASE_URL))
    return TestClient(app, base_url=BASE_URL, follow_redirects=False)


def references(html: str) -> set[str]:
    """Every address the page loads or links to: attributes, and Swagger UI's `url:`."""
    found = re.findall(r"""\b(?:src|href|spec-url)="([^"]*)"|\burl: '([^']*)'""", html)
    return {attribute or script for attribute, script in found}


@pytest.mark.parametrize("path", PAGES)
def test_docs_pages_load_only_files_of_this_server(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html
    assert not re.search(r"(?i)\b[a-z][a-z0-9+.-]*://|//[a-z0-9]", html), "an absolute URL"
    loaded = references(html)
    assert loaded == PAGES[path] | {"/openapi.json"}
    for url in PAGES[path]:
        asset = client.get(url)
        assert asset.status_code == 200, url
        kind = CONTENT_TYPES[url.rsplit(".", 1)[1]]
        assert asset.headers["content-type"].split(";")[0] == kind, url
        assert len(asset.content) > 1000, url
    assert client.get("/openapi.json").status_code == 200


def test_docs_files_are_only_the_packaged_ones(client: TestClient) -> None:
    for url in ("/docs/", "/docs/nothing.js", "/docs/%2e%2e/__init__.py", "/docs/..%2fcore.py"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", PAGES)
def test_docs_pages_carry_a_strict_content_security_policy(client: TestClient, path: str) -> None:
    page = client.get(path)
    policy = dict(
        (directive.split(" ", 1) + [""])[:2]
        for directive in page.headers["content-security-policy"].split("; ")
    )
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    hashes = {
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline
    }
    # Files of this server, and the page's own start-up script by its hash: nothing else.
    assert set(policy["script-src"].split()) == {"'self'", *hashes}
    assert len(inline) == (1 if path == "/docs" else 0)
    assert "http" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
