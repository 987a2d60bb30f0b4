"""Cross-cutting behaviour: health, the error shape, CORS."""

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support.app import BASE_URL, PEER, create_link

DASHBOARD = "https://dash.example"


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def test_readiness_fails_when_the_database_is_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    )
    with TestClient(create_app(broken)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no/such/page", 404), ("PUT", "/api/links", 405), ("GET", "/api/a.b", 404)],
)
def test_errors_have_one_json_shape(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/links" in spec["paths"] and "/api/links/{slug}" in spec["paths"]


def test_openapi_declares_how_every_api_operation_authenticates(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <API key>`"
    }  # fmt: skip
    assert schemes["APIKeyHeader"]["in"] == "header"
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    for path, operations in spec["paths"].items():
        if path.startswith("/api/") and path != "/api/domains/check":  # asked by TLS proxies
            for method, operation in operations.items():
                declared = [name for option in operation["security"] for name in option]
                assert sorted(declared) == ["APIKeyHeader", "HTTPBearer"], (method, path)
    assert "security" not in spec["paths"]["/api/domains/check"]["get"]


def test_openapi_documents_the_error_shape_of_every_api_operation(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("401", "403", "413", "422", "429"):
                content = responses[status]["content"]["application/json"]
                assert content["schema"] == error_ref, (method, path, status)
    assert "Retry-After" in spec["paths"]["/api/links"]["post"]["responses"]["429"]["headers"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/links", "GET, POST"),
        ("PUT", "/api/links", "GET, POST"),
        ("PUT", "/api/links/abc", "GET, PATCH, DELETE"),
    ],
)
def test_method_not_allowed_names_every_method_of_the_path(
    client: TestClient, writer: dict, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path, headers=writer, json={"url": "https://a.example/"})
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert client.get("/api/links", headers=writer).json()["links"] == []


@pytest.fixture
def cors_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"cors_origins": [DASHBOARD]}))
    with TestClient(app, base_url=BASE_URL, follow_redirects=False, client=PEER) as client:
        yield client


def test_cors_for_the_api_only(cors_client: TestClient, writer: dict) -> None:
    create_link(cors_client, writer, slug="c")
    preflight = cors_client.options(
        "/api/links",
        headers={
            "Origin": DASHBOARD,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == DASHBOARD
    listed = cors_client.get("/api/links", headers={**writer, "Origin": DASHBOARD})
    assert listed.headers["access-control-allow-origin"] == DASHBOARD
    stranger = cors_client.get("/api/links", headers={**writer, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers
    for path in ("/c", "/healthz"):
        response = cors_client.get(path, headers={"Origin": DASHBOARD})
        assert "access-control-allow-origin" not in response.headers


def test_no_cors_by_default(client: TestClient, writer: dict) -> None:
    response = client.get("/api/links", headers={**writer, "Origin": DASHBOARD})
    assert "access-control-allow-origin" not in response.headers


def test_request_bodies_over_1_mib_are_refused(client: TestClient, writer: dict) -> None:
    big = {"url": "https://ok.example/", "title": "x" * (1024 * 1024)}
    response = client.post("/api/links", json=big, headers=writer)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the body is counted as it arrives
        yield b'{"url": "https://ok.example/", "title": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    streamed = client.post(
        "/api/links", content=chunks(), headers={**writer, "content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "payload_too_large"
    assert client.get("/api/links", headers=writer).json()["links"] == []
