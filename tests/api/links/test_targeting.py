"""Targeting fields of a link (rules, variants, password, utm_template) through the API:
what is accepted, stored and shown, and what is refused with a 422 that points at the
rule, leaving the link as it was."""

import csv
import io
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.links.schemas import MAX_RULES, MAX_VARIANTS
from tests.support.app import BASE_URL, create_link, make_key

RULES = [
    {"name": "ios", "if": {"os": ["iOS"]}, "url": "https://apps.apple.com/app/x"},
    {
        "name": "indo",
        "if": {"country": ["id"], "language": ["ID"]},
        "url": "https://web.example/id",
    },
]
VARIANTS = [
    {"name": "a", "url": "https://a.example/", "weight": 50},
    {"name": "b", "url": "https://b.example/", "weight": 50},
]


def test_rules_and_variants_are_stored_as_given_and_shown(client: TestClient, writer: dict) -> None:
    link = create_link(client, writer, url="https://web.example/", rules=RULES, variants=VARIANTS)
    # Country codes read in upper case, languages in lower case; no condition left unset.
    assert link["rules"] == [
        RULES[0],
        {"name": "indo", "if": {"country": ["ID"], "language": ["id"]}, "url": RULES[1]["url"]},
    ]
    assert link["variants"] == VARIANTS
    assert link["has_password"] is False
    again = client.get(f"/api/links/{link['slug']}", headers=writer).json()
    assert (again["rules"], again["variants"]) == (link["rules"], link["variants"])
    # Null, or an empty list, removes them.
    patched = client.patch(
        f"/api/links/{link['slug']}", json={"rules": None, "variants": []}, headers=writer
    ).json()
    assert (patched["rules"], patched["variants"]) == (None, None)


def _rule(index: int, **change: Any) -> dict[str, Any]:
    rule = {"name": f"r{index}", "if": {"device": ["mobile"]}, "url": f"https://r{index}.example/"}
    return rule | change


@pytest.mark.parametrize(
    ("body", "code", "where"),
    [
        ({"rules": [_rule(0), _rule(1), _rule(2), _rule(3, url="ftp://x.example/")]},
         "validation_error", "rules.3.url"),
        ({"rules": [_rule(0, **{"if": {}})]}, "validation_error", "rules.0.if"),
        ({"rules": [_rule(0, **{"if": {"device": ["phone"]}})]}, "validation_error", "rules.0.if.device.0"),
        ({"rules": [_rule(0, **{"if": {"country": ["IDN"]}})]}, "validation_error", "rules.0.if.country.0"),
        ({"rules": [_rule(0, **{"if": {"browser": ["Chrome"]}})]}, "validation_error", "rules.0.if.browser"),
        ({"rules": [_rule(i) for i in range(MAX_RULES + 1)]}, "validation_error", "rules"),
        ({"variants": [{"name": f"v{i}", "url": "https://v.example/", "weight": 1}
                       for i in range(MAX_VARIANTS + 1)]}, "validation_error", "variants"),
        ({"variants": [VARIANTS[0], VARIANTS[1] | {"weight": 51}]}, "validation_error", "variants"),
        ({"variants": [VARIANTS[0] | {"weight": 0}]}, "validation_error", "variants.0.weight"),
        ({"rules": [_rule(0, url=f"{BASE_URL}/other")]}, "redirect_loop", "rules.0.url"),
        ({"variants": [VARIANTS[0] | {"url": "http://TAUTAN.test./x"}]}, "redirect_loop", "variants.0.url"),
        ({"rules": [_rule(0, name="a")], "variants": [VARIANTS[0]]}, "route_name_taken", "variants.0.name"),
        ({"password": "abc"}, "validation_error", "password"),
        ({"variants": [VARIANTS[0] | {"name": "(none)"}]}, "validation_error", "variants.0.name"),
    ],
)  # fmt: skip
def test_bad_targeting_is_refused_pointing_at_the_rule(
    client: TestClient, writer: dict, body: dict, code: str, where: str
) -> None:
    link = create_link(client, writer, url="https://web.example/", rules=[_rule(9)])
    refused = client.post("/api/links", json={"url": "https://web.example/"} | body, headers=writer)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == code
    places = (
        [".".join(map(str, item["loc"][1:])) for item in error["details"]]
        if code == "validation_error"
        else [error["details"]["field"]]
    )
    assert where in places, error
    # A PATCH with it changes nothing.
    patch = client.patch(f"/api/links/{link['slug']}", json=body, headers=writer)
    assert patch.status_code == 422
    assert client.get(f"/api/links/{link['slug']}", headers=writer).json() == link


def test_a_bad_rule_fails_its_bulk_item_alone(client: TestClient, writer: dict) -> None:
    items = [
        {"url": "https://web.example/1", "rules": RULES},
        {"url": "https://web.example/2", "rules": [_rule(0, url="javascript:alert(1)")]},
    ]
    results = client.post("/api/links/bulk", json={"links": items}, headers=writer).json()
    assert [result["ok"] for result in results["results"]] == [True, False]
    assert results["results"][0]["link"]["rules"][0]["name"] == "ios"
    assert results["results"][1]["error"]["details"][0]["loc"] == ["rules", 0, "url"]


def test_a_password_is_never_shown_and_can_be_removed(client: TestClient, writer: dict) -> None:
    created = client.post(
        "/api/links", json={"url": "https://private.example/", "password": "s3cret-pass"},
        headers=writer,
    )  # fmt: skip
    assert created.status_code == 201
    assert created.json()["has_password"] is True
    assert "s3cret" not in created.text and "argon2" not in created.text
    slug = created.json()["slug"]
    listed = client.get("/api/links", headers=writer)
    assert "argon2" not in listed.text and listed.json()["links"][0]["has_password"] is True
    removed = client.patch(f"/api/links/{slug}", json={"password": None}, headers=writer).json()
    assert removed["has_password"] is False
    assert client.get(f"/{slug}").status_code == 302


def test_utm_templates_fill_the_fields_not_given(client: TestClient, writer: dict) -> None:
    template = {"name": "ig", "utm_source": "instagram", "utm_medium": "social",
                "utm_campaign": "always-on"}  # fmt: skip
    assert (
        client.post(
            "/api/utm-templates", json=template, headers=make_key(client, "owner")
        ).status_code
        == 201
    )
    link = create_link(
        client, writer, url="https://shop.example/t", utm_template="ig", utm_campaign="launch"
    )
    assert (link["utm_source"], link["utm_medium"], link["utm_campaign"]) == (
        "instagram", "social", "launch"
    )  # fmt: skip
    assert "utm_source=instagram" in link["destination"]
    bulk = client.post(
        "/api/links/bulk",
        json={"links": [{"url": "https://shop.example/b", "utm_template": "ig"},
                        {"url": "https://shop.example/c", "utm_template": "nope"}]},
        headers=writer,
    ).json()["results"]  # fmt: skip
    assert bulk[0]["link"]["utm_campaign"] == "always-on"
    assert bulk[1]["error"]["code"] == "unknown_utm_template"
    # Another workspace does not have it.
    other = make_key(client, "links:read", "links:write", workspace="other")
    refused = client.post(
        "/api/links", json={"url": "https://shop.example/d", "utm_template": "ig"}, headers=other
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["details"]["field"] == "utm_template"


def test_import_and_export_carry_rules_and_variants_as_json(
    client: TestClient, writer: dict
) -> None:
    template = {"name": "news", "utm_source": "newsletter", "utm_medium": "email"}
    client.post("/api/utm-templates", json=template, headers=make_key(client, "owner"))
    rows = io.StringIO()
    out = csv.writer(rows)
    out.writerow(["url", "slug", "rules", "variants", "utm_template"])
    out.writerow(["https://web.example/", "targeted", '[{"name":"ios","if":{"os":["iOS"]},'
                  '"url":"https://apps.apple.com/app/x"}]', "", "news"])  # fmt: skip
    out.writerow(["https://web.example/", "split", "", '[{"name":"a","url":"https://a.example/",'
                  '"weight":40}]', ""])  # fmt: skip
    out.writerow(["https://web.example/", "broken", "[{", "", ""])
    out.writerow(
        [
            "https://web.example/",
            "badrule",
            '[{"name":"x","if":{},"url":"https://x.example/"}]',
            "",
            "",
        ]
    )
    report = client.post(
        "/api/links/import",
        files={"file": ("links.csv", rows.getvalue().encode(), "text/csv")},
        headers=writer,
    ).json()
    assert report["imported"] == 2
    assert [(error["line"], error["error"]["code"]) for error in report["errors"]] == [
        (4, "invalid_row"), (5, "validation_error")
    ]  # fmt: skip
    targeted = client.get("/api/links/targeted", headers=writer).json()
    assert targeted["rules"][0]["if"] == {"os": ["iOS"]}
    assert targeted["utm_source"] == "newsletter"
    exported = client.get("/api/links/export.csv", headers=writer)
    by_slug = {row["slug"]: row for row in csv.DictReader(io.StringIO(exported.text))}
    assert by_slug["split"]["variants"] == '[{"name":"a","url":"https://a.example/","weight":40}]'
    assert by_slug["targeted"]["rules"].startswith('[{"name":"ios","if":{"os":["iOS"]}')
    assert by_slug["split"]["rules"] == ""
