import io

import pytest
import zxingcpp
from PIL import Image
from starlette.testclient import TestClient

from tests.support.app import BASE_URL, create_link, make_key


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


def qr_png(client: TestClient, headers: dict, slug: str, **params: object) -> Image.Image:
    response = client.get(
        f"/api/links/{slug}/qr", params={"format": "png", **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


@pytest.mark.parametrize(
    ("slug", "size", "margin"),
    [
        ("qr", 300, 4),  # the default
        ("qr", 301, 4),
        ("qr", 64, 0),
        ("qr", 1000, 2),
        ("L" * 64, 300, 4),  # the longest slug: a bigger code, still 300 pixels
        ("L" * 64, 4000, 20),
    ],
)
def test_png_qr_code_is_exactly_size_pixels_and_scans(
    client: TestClient, writer: dict, slug: str, size: int, margin: int
) -> None:
    create_link(client, writer, slug=slug)
    image = qr_png(client, writer, slug, size=size, margin=margin)
    assert image.size == (size, size)
    assert [code.text for code in zxingcpp.read_barcodes(image)] == [f"{BASE_URL}/{slug}?qr=1"]


def test_png_quiet_zone_and_colours(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="colours")
    image = qr_png(client, writer, "colours", size=300, margin=4, dark="1a2b3c", light="fedcba")
    rgb = image.convert("RGB")
    dark, light = (0x1A, 0x2B, 0x3C), (0xFE, 0xDC, 0xBA)
    assert {colour for _, colour in rgb.getcolors()} == {dark, light}
    # The top row of the finder patterns: 7 modules of whole pixels each, left and right.
    top = next(y for y in range(300) if any(rgb.getpixel((x, y)) == dark for x in range(300)))
    row = [rgb.getpixel((x, top)) == dark for x in range(300)]
    left, right = row.index(True), row[::-1].index(True)
    run = row[left:].index(False)
    assert run % 7 == 0
    scale = run // 7
    # The quiet zone: 4 modules at least, the spare pixels shared out evenly on each side.
    assert top == left >= 4 * scale and abs(left - right) <= 1
    transparent = qr_png(client, writer, "colours", light="transparent").convert("RGBA")
    assert transparent.getpixel((0, 0))[3] == 0
    assert {colour[3] for _, colour in transparent.getcolors()} == {0, 255}
    assert {colour for _, colour in transparent.getcolors() if colour[3]} == {(0, 0, 0, 255)}


def test_svg_qr_code_is_size_pixels_wide_and_high(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="svgsize")
    for size, margin in ((300, 4), (77, 0), (4000, 20)):
        response = client.get(
            "/api/links/svgsize/qr", params={"size": size, "margin": margin}, headers=writer
        )
        assert response.status_code == 200, response.text
        svg = response.text
        assert f'width="{size}"' in svg and f'height="{size}"' in svg, svg[:300]
        assert 'viewBox="0 0 ' in svg  # the modules scale to fill it


def test_a_size_below_the_codes_modules_is_422_naming_the_minimum(
    client: TestClient, writer: dict
) -> None:
    create_link(client, writer, slug="tiny")
    for kind in ("png", "svg"):
        response = client.get(
            "/api/links/tiny/qr", params={"format": kind, "size": 50, "margin": 20}, headers=writer
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["details"]["field"]) == ("invalid_parameter", "size")
        minimum = error["details"]["minimum"]
        assert minimum > 50 and f"at least {minimum}" in error["message"]
    # The minimum itself is served, at one pixel per module, and still scans.
    image = qr_png(client, writer, "tiny", size=minimum, margin=20)
    assert image.size == (minimum, minimum)
    assert [code.text for code in zxingcpp.read_barcodes(image)] == [f"{BASE_URL}/tiny?qr=1"]


def test_openapi_says_what_size_means(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/links/{slug}/qr"]["get"]
    [size] = [p for p in operation["parameters"] if p["name"] == "size"]
    assert "quiet zone included" in size["description"]
    assert "422" in size["description"] and "minimum" in size["description"]
