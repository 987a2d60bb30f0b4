"""UTM templates: a workspace's named sets of campaign tags, made, read, changed and removed
through /api/utm-templates, and what one workspace cannot do with another's."""

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support.app import make_key

NEWSLETTER = {"name": "newsletter", "utm_source": "newsletter", "utm_medium": "email"}
UTM_NULLS = {"utm_source": None, "utm_medium": None, "utm_campaign": None, "utm_term": None,
             "utm_content": None}  # fmt: skip


@pytest.fixture
def owner(client: TestClient) -> dict[str, str]:
    """A key of the workspace `toko`."""
    return make_key(client, "links:read", "links:write", "owner", workspace="toko")


@pytest.fixture
def other(client: TestClient) -> dict[str, str]:
    """A key of another workspace, `kopi`."""
    return make_key(client, "links:read", "links:write", "owner", workspace="kopi")


def add_template(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/utm-templates", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def listed(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/api/utm-templates", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["utm_templates"]


def names(client: TestClient, headers: dict[str, str]) -> list[str]:
    return [template["name"] for template in listed(client, headers)]


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


def test_a_template_is_made_read_changed_and_removed(client: TestClient, owner: dict) -> None:
    made = add_template(client, owner, **{**NEWSLETTER, "name": "  newsletter "})
    assert made == {**UTM_NULLS, **NEWSLETTER,
                    "created_at": made["created_at"], "updated_at": made["updated_at"]}  # fmt: skip
    add_template(client, owner, name="Ads/Q4", utm_campaign="q4")
    add_template(client, owner, name="ads", utm_source="ads", utm_term="")
    assert names(client, owner) == ["Ads/Q4", "ads", "newsletter"]
    assert listed(client, owner)[1]["utm_term"] is None  # an empty tag is none
    assert client.get("/api/utm-templates/newsletter", headers=owner).json() == made
    assert client.get("/api/utm-templates/Ads%2FQ4", headers=owner).json()["utm_campaign"] == "q4"

    changed = client.patch("/api/utm-templates/newsletter", headers=owner,
                           json={"utm_medium": None, "utm_campaign": " spring "})  # fmt: skip
    assert changed.status_code == 200, changed.text
    got = changed.json()
    assert (got["utm_source"], got["utm_medium"], got["utm_campaign"]) == (
        "newsletter",
        None,
        "spring",
    )
    assert got["created_at"] == made["created_at"] and got["updated_at"] >= made["updated_at"]
    renamed = client.patch("/api/utm-templates/newsletter", json={"name": "mail"}, headers=owner)
    assert renamed.status_code == 200 and renamed.json()["utm_campaign"] == "spring"
    assert client.get("/api/utm-templates/newsletter", headers=owner).status_code == 404
    assert client.get("/api/utm-templates/mail", headers=owner).json() == renamed.json()
    same = client.patch("/api/utm-templates/mail", json={"name": "mail"}, headers=owner)
    assert same.status_code == 200

    assert client.delete("/api/utm-templates/mail", headers=owner).status_code == 204
    assert client.get("/api/utm-templates/mail", headers=owner).status_code == 404
    assert client.delete("/api/utm-templates/mail", headers=owner).status_code == 404
    assert names(client, owner) == ["Ads/Q4", "ads"]


def test_a_name_is_taken_once_per_workspace(client: TestClient, owner: dict, other: dict) -> None:
    add_template(client, owner, **NEWSLETTER)
    add_template(client, owner, name="ads", utm_source="ads")
    before = listed(client, owner)
    taken = client.post("/api/utm-templates", json={**NEWSLETTER, "utm_source": "x"},
                        headers=owner)  # fmt: skip
    assert taken.status_code == 409 and error_code(taken) == "name_taken"
    renamed = client.patch("/api/utm-templates/ads", json={"name": "newsletter", "utm_source": "y"},
                           headers=owner)  # fmt: skip
    assert renamed.status_code == 409 and error_code(renamed) == "name_taken"
    assert listed(client, owner) == before  # refused: nothing changed
    add_template(client, other, **NEWSLETTER)  # another workspace's name is free


@pytest.mark.parametrize(
    "body",
    [
        {**NEWSLETTER, "slug": "x"},  # an unknown field
        {"name": "empty"},  # no UTM field
        {"name": "empty", "utm_source": None, "utm_medium": " "},
        {"name": "x" * 65, "utm_source": "a"},
        {"name": "   ", "utm_source": "a"},
        {"name": "a\x00b", "utm_source": "a"},
        {"name": "nul", "utm_source": "a\x00b"},
        {"name": "long", "utm_source": "a" * 256},
        {"utm_source": "a"},  # no name
    ],
)
def test_a_refused_template_is_not_made(client: TestClient, owner: dict, body: dict) -> None:
    add_template(client, owner, **NEWSLETTER)
    before = listed(client, owner)
    response = client.post("/api/utm-templates", json=body, headers=owner)
    assert response.status_code == 422, response.text
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert listed(client, owner) == before


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "x"},
        {"utm_source": None, "utm_medium": None},  # would leave no UTM field
        {"utm_source": "", "utm_medium": None},
        {"name": None},
        {"name": "x" * 65},
        {"name": "a\x00b"},
        {"utm_campaign": "a\x00b"},
    ],
)
def test_a_refused_change_changes_nothing(client: TestClient, owner: dict, body: dict) -> None:
    add_template(client, owner, **NEWSLETTER)
    before = listed(client, owner)
    response = client.patch("/api/utm-templates/newsletter", json=body, headers=owner)
    assert response.status_code == 422, response.text
    assert listed(client, owner) == before


def test_a_name_of_64_characters_is_one(client: TestClient, owner: dict) -> None:
    name = "é" * 64
    add_template(client, owner, name=name, utm_source="a")
    assert client.get(f"/api/utm-templates/{name}", headers=owner).json()["name"] == name


def test_an_unknown_name_is_not_found(client: TestClient, owner: dict) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, "/api/utm-templates/nope", headers=owner,
                                  **({"json": {"utm_source": "x"}} if method == "PATCH" else {}))  # fmt: skip
        assert response.status_code == 404 and error_code(response) == "not_found", method
    nul = client.get("/api/utm-templates/a%00b", headers=owner)
    assert nul.status_code == 422


def test_a_workspace_cannot_see_change_or_remove_anothers_template(
    client: TestClient, owner: dict, other: dict
) -> None:
    add_template(client, owner, **NEWSLETTER)
    unknown = client.get("/api/utm-templates/never", headers=other).json()
    calls = [("GET", {}), ("PATCH", {"json": {"utm_source": "stolen"}}),
             ("PATCH", {"json": {"name": "mine"}}), ("DELETE", {})]  # fmt: skip
    for method, extra in calls:
        response = client.request(method, "/api/utm-templates/newsletter", headers=other, **extra)
        assert response.status_code == 404, method
        assert response.json() == unknown, method  # as unknown as a name never made
    assert listed(client, other) == []
    assert client.get("/api/utm-templates/newsletter", headers=owner).json()["utm_source"] == (
        "newsletter"
    )
    add_template(client, other, name="kopi", utm_source="kopi")
    assert names(client, owner) == ["newsletter"]
    admin = make_key(client, "admin")
    assert names(client, admin) == ["kopi", "newsletter"]
    assert client.get("/api/utm-templates/kopi", headers=admin).status_code == 200
    changed = client.patch("/api/utm-templates/newsletter", json={"utm_term": "t"}, headers=admin)
    assert changed.status_code == 200
    assert client.get("/api/utm-templates/newsletter", headers=owner).json()["utm_term"] == "t"


def test_admin_names_a_template_of_several_workspaces_by_its_own(
    client: TestClient, owner: dict, other: dict
) -> None:
    add_template(client, owner, name="shared", utm_source="toko")
    add_template(client, other, name="shared", utm_source="kopi")
    admin = make_key(client, "admin")
    ambiguous = client.get("/api/utm-templates/shared", headers=admin)
    assert ambiguous.status_code == 409 and error_code(ambiguous) == "name_ambiguous"
    assert [t["utm_source"] for t in listed(client, admin)] == ["toko", "kopi"]
    add_template(client, admin, name="shared", utm_source="own")  # the admin key's workspace
    assert client.get("/api/utm-templates/shared", headers=admin).json()["utm_source"] == "own"
    assert client.get("/api/utm-templates/shared", headers=owner).json()["utm_source"] == "toko"


def test_writing_needs_the_owner_scope(client: TestClient, owner: dict) -> None:
    """Templates are kept by a workspace's owners: a key that writes links is refused too."""
    add_template(client, owner, **NEWSLETTER)
    reader = make_key(client, "links:read", "stats:read", workspace="toko")
    link_writer = make_key(client, "links:read", "links:write", workspace="toko")
    before = listed(client, owner)
    for method, path, body in (
        ("POST", "/api/utm-templates", {"name": "new", "utm_source": "x"}),
        ("PATCH", "/api/utm-templates/newsletter", {"utm_source": "x"}),
        ("DELETE", "/api/utm-templates/newsletter", None),
    ):
        for key in (reader, link_writer):
            response = client.request(method, path, json=body, headers=key)
            assert response.status_code == 403, method
            assert "lacks the scope owner" in response.json()["error"]["message"]
    assert listed(client, reader) == before
    writer_only = make_key(client, "links:write", workspace="toko")
    assert client.get("/api/utm-templates", headers=writer_only).status_code == 403
    assert client.get("/api/utm-templates").status_code == 401
