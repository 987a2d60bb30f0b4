"""What /openapi.json tells a client author: operation ids and schema names a person would
choose, datetimes declared as such, images and CSV declared with their media types; and a
Python client generated from it works against the app.

The generated-client test needs openapi-python-client, which cannot share the project's
venv (it wants an older httpx and typer than constraints.txt pins): install it on its own
(`pipx install openapi-python-client`) and it is found on PATH, or name the command in
TAUTAN_OPENAPI_PYTHON_CLIENT; without it the test skips."""

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.stats.periods import Interval
from app.stats.schemas import Bucket
from app.stats.service import DIMENSIONS
from tests.support.app import BASE_URL, DESKTOP_UA

OPERATION_IDS = {
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
    ("get", "/metrics"): "metrics",
    ("post", "/api/links"): "create_link",
    ("get", "/api/links"): "list_links",
    ("post", "/api/links/bulk"): "bulk_create_links",
    ("post", "/api/links/import"): "import_links",
    ("get", "/api/links/export.csv"): "export_links",
    ("get", "/api/links/{slug}"): "get_link",
    ("patch", "/api/links/{slug}"): "update_link",
    ("delete", "/api/links/{slug}"): "delete_link",
    ("get", "/api/links/{slug}/qr"): "link_qr",
    ("post", "/api/domains"): "create_domain",
    ("get", "/api/domains"): "list_domains",
    ("get", "/api/domains/check"): "check_domain",
    ("get", "/api/domains/{host}"): "get_domain",
    ("patch", "/api/domains/{host}"): "update_domain",
    ("delete", "/api/domains/{host}"): "delete_domain",
    ("post", "/api/utm-templates"): "create_utm_template",
    ("get", "/api/utm-templates"): "list_utm_templates",
    ("get", "/api/utm-templates/{name}"): "get_utm_template",
    ("patch", "/api/utm-templates/{name}"): "update_utm_template",
    ("delete", "/api/utm-templates/{name}"): "delete_utm_template",
    ("get", "/api/workspaces"): "list_workspaces",
    ("post", "/api/workspaces"): "create_workspace",
    ("get", "/api/workspaces/{workspace_id}/members"): "list_members",
    ("post", "/api/workspaces/{workspace_id}/members"): "add_member",
    ("patch", "/api/workspaces/{workspace_id}/members/{email}"): "update_member",
    ("delete", "/api/workspaces/{workspace_id}/members/{email}"): "remove_member",
    ("get", "/api/audit"): "audit_log",
    ("get", "/api/stats/summary"): "stats_summary",
    ("get", "/api/stats/timeseries"): "stats_timeseries",
    ("get", "/api/stats/breakdown/{dimension}"): "stats_breakdown",
    ("get", "/api/stats/clicks.csv"): "stats_clicks_csv",
}
BINARY = {"schema": {"type": "string", "format": "binary"}}
CSV = {"text/csv": {"schema": {"type": "string"}}}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The schema as the app serves it (building the app opens no connection)."""
    app = create_app(Settings(database_url="sqlite+aiosqlite://", base_url=BASE_URL))
    return TestClient(app, base_url=BASE_URL).get("/openapi.json").json()


def parameter(spec: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name]
    return found


def test_operation_ids_are_the_names_a_client_author_would_choose(spec: dict[str, Any]) -> None:
    ids = {
        (method, path): operation["operationId"]
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }
    assert ids == OPERATION_IDS
    assert len(set(ids.values())) == len(ids)


def test_enum_parameters_are_named_schemas(spec: dict[str, Any]) -> None:
    """`Dimension` and `Interval`, not enums named after the operation and the parameter."""
    schemas = spec["components"]["schemas"]
    dimension = parameter(spec, "/api/stats/breakdown/{dimension}", "dimension")
    assert dimension["schema"] == {"$ref": "#/components/schemas/Dimension"}
    assert schemas["Dimension"] == {"type": "string", "enum": list(DIMENSIONS)}
    interval = parameter(spec, "/api/stats/timeseries", "interval")
    assert {"$ref": "#/components/schemas/Interval"} in interval["schema"]["anyOf"]
    assert schemas["Interval"] == {"type": "string", "enum": list(Interval.__args__)}
    assert not [name for name in schemas if "Api" in name or name.endswith("Get")]


def test_datetimes_are_declared_date_time(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    start = schemas["Bucket"]["properties"]["start"]
    assert start["type"] == "string" and start["format"] == "date-time"
    assert schemas["LinkOut"]["properties"]["created_at"]["format"] == "date-time"
    first_click = schemas["Summary"]["properties"]["first_click"]["anyOf"]
    assert {"type": "string", "format": "date-time"} in first_click


def test_bucket_starts_keep_their_offset() -> None:
    """Declared a date-time, written as before: ISO 8601 with the zone's offset."""
    bucket = Bucket(start="2025-03-01T00:00:00+07:00", clicks=1, unique_visitors=1)
    assert bucket.model_dump_json() == (
        '{"start":"2025-03-01T00:00:00+07:00","clicks":1,"unique_visitors":1}'
    )


def test_images_and_csv_are_declared_with_their_media_types(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    qr = paths["/api/links/{slug}/qr"]["get"]["responses"]["200"]["content"]
    assert qr == {"image/svg+xml": BINARY, "image/png": BINARY}
    for path in ("/api/links/export.csv", "/api/stats/clicks.csv"):
        assert paths[path]["get"]["responses"]["200"]["content"] == CSV, path


def test_health_and_readiness_have_models(spec: dict[str, Any]) -> None:
    healthz = spec["paths"]["/healthz"]["get"]["responses"]["200"]["content"]
    assert healthz["application/json"]["schema"] == {"$ref": "#/components/schemas/Health"}
    readyz = spec["paths"]["/readyz"]["get"]["responses"]
    for status in ("200", "503"):
        schema = readyz[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Readiness"}, status


GENERATOR = os.environ.get("TAUTAN_OPENAPI_PYTHON_CLIENT") or shutil.which("openapi-python-client")
# The tool reads no image type; a client author tells it to take them as bytes.
GENERATOR_CONFIG = """\
post_hooks: []
content_type_overrides:
  image/svg+xml: application/octet-stream
  image/png: application/octet-stream
"""


@pytest.fixture(scope="module")
def generated(spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of a Python package generated from the schema, importable."""
    if not GENERATOR:
        pytest.skip("needs openapi-python-client (pipx install openapi-python-client)")
    work = tmp_path_factory.mktemp("client")
    (work / "openapi.json").write_text(json.dumps(spec))
    (work / "config.yaml").write_text(GENERATOR_CONFIG)
    command = [GENERATOR, "generate", "--path", str(work / "openapi.json"), "--meta", "none",
               "--config", str(work / "config.yaml"), "--output-path", str(work / "tautan_client")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation made it into the client: the tool warns of any it leaves out.
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout
    sys.path.insert(0, str(work))
    yield "tautan_client"
    sys.path.remove(str(work))
    for name in [n for n in sys.modules if n.split(".")[0] == "tautan_client"]:
        del sys.modules[name]


def test_generated_python_client_works_against_the_app(
    generated: str, client: TestClient, admin: dict[str, str]
) -> None:
    def module(name: str) -> Any:
        return importlib.import_module(f"{generated}.{name}")

    models = module("models")
    create_link, link_qr = module("api.links.create_link"), module("api.links.link_qr")
    stats_summary = module("api.stats.stats_summary")
    stats_timeseries = module("api.stats.stats_timeseries")
    stats_breakdown = module("api.stats.stats_breakdown")

    client.headers.update(admin)  # the generated client sends what its httpx client does
    api = module("client").AuthenticatedClient(base_url=BASE_URL, token="unused")
    api.set_httpx_client(client)  # the app's own TestClient is an httpx.Client

    body = models.LinkCreate(url="https://shop.example.com/p", slug="gen", utm_source="mail")
    link = create_link.sync(client=api, body=body)
    assert isinstance(link, models.LinkOut), link
    assert link.slug == "gen" and link.destination == "https://shop.example.com/p?utm_source=mail"

    assert client.get("/gen", headers={"User-Agent": DESKTOP_UA}).status_code == 302
    deadline = time.monotonic() + 10
    while (summary := stats_summary.sync(client=api, link=["gen"])).clicks != 1:
        assert time.monotonic() < deadline, summary
        time.sleep(0.05)
    assert isinstance(summary, models.Summary) and summary.last_click.tzinfo is not None

    series = stats_timeseries.sync(client=api, link=["gen"], interval=models.Interval.DAY)
    assert isinstance(series, models.Timeseries)
    assert sum(b.clicks for b in series.buckets) == 1
    assert all(b.start.tzinfo is not None for b in series.buckets)  # parsed as datetimes

    devices = stats_breakdown.sync(models.Dimension.DEVICE_TYPE, client=api, link=["gen"])
    assert [(row.value, row.clicks) for row in devices.rows] == [("desktop", 1)]

    png = link_qr.sync("gen", client=api, format_=models.LinkQrFormat.PNG)
    assert png.payload.read().startswith(b"\x89PNG")
