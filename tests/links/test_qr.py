import io

import pytest
import zxingcpp
from PIL import Image
from starlette.testclient import TestClient

from tests.conftest import BASE_URL, create_link, make_key


def test_png_qr_code_scans_to_the_tracked_short_url(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="qr")
    response = client.get("/api/links/qr/qr", params={"format": "png", "size": 400}, headers=writer)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert 300 <= image.width <= 400
    assert [code.text for code in zxingcpp.read_barcodes(image)] == [f"{BASE_URL}/qr?qr=1"]
    assert (
        client.get("/qr?qr=1").headers["location"] == "https://shop.example.com/"
    )  # qr not forwarded


def test_svg_qr_code_with_colours(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="svg")
    response = client.get(
        "/api/links/svg/qr",
        params={"dark": "1a2b3c", "light": "transparent", "margin": 0},
        headers=writer,
    )
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<?xml") and "#1a2b3c" in response.text


@pytest.mark.parametrize(
    "params",
    [{"format": "gif"}, {"size": 10}, {"dark": "red;"}, {"light": "12345"}, {"margin": 99}],
)
def test_bad_qr_parameters_are_422(client: TestClient, writer: dict, params: dict) -> None:
    create_link(client, writer, slug="bad")
    response = client.get("/api/links/bad/qr", params=params, headers=writer)
    assert response.status_code == 422 and response.json()["error"]["message"]


def test_qr_of_another_workspace_link_is_404(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="mine")
    stranger = make_key(client, "links:read", workspace="client-b")
    assert client.get("/api/links/mine/qr", headers=stranger).status_code == 404
