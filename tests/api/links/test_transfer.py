import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import func, select
from starlette.testclient import TestClient

from app import migrate
from app.config import Settings
from app.core.tables import Link, Workspace
from app.links.transfer import IMPORT_CHUNK, MAX_IMPORT_ROWS
from app.main import create_app
from tests.support.app import BASE_URL, PEER, create_link, make_key, run_in_transaction
from tests.support.cli import tautan
from tests.support.clicks import raw_click, seed_clicks, with_writer
from tests.support.databases import empty_database

IMPORT_FIELDS = ["url", "slug", "title", "tags", "utm_source", "utm_medium", "utm_campaign",
                 "utm_term", "utm_content", "destination", "short_url"]  # fmt: skip

# Line 1 is the header; line 3 holds a title that runs over two lines, so the row after
# it starts on line 5; line 6 is blank; the BOM is what Excel writes before "CSV UTF-8".
MIXED = (
    "\ufeffurl,slug,title,tags,utm_source,utm_campaign\r\n"
    "https://shop.example/a,spring-a,Spring,promo|ig,instagram,spring\r\n"
    'https://shop.example/b,,"Two\r\nlines, and a comma",,,\r\n'
    "javascript:alert(1),bad-url,,,,\r\n"
    "\r\n"
    "https://shop.example/c,taken,,,,\r\n"
    "https://shop.example/d,spring-a,,,,\r\n"
    "https://shop.example/e,has space,,,,\r\n"
    "https://shop.example/f,too-many,,,,,extra\r\n"
)
MIXED_ERRORS = [
    (5, "validation_error"),
    (7, "slug_taken"),  # taken before the import
    (8, "slug_taken"),  # by line 2 of the same file
    (9, "validation_error"),
    (10, "invalid_row"),
]


def count_links(client: TestClient) -> int:
    return run_in_transaction(client, lambda s: s.scalar(select(func.count()).select_from(Link)))


def upload(client: TestClient, headers: dict, text: str | bytes, **params: Any) -> Response:
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        "/api/links/import",
        files={"file": ("links.csv", data, "text/csv")},
        params=params,
        headers=headers,
    )


def export_rows(client: TestClient, headers: dict, **params: Any) -> list[dict[str, str]]:
    response = client.get("/api/links/export.csv", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


@pytest.fixture
def other_database(backend: str, tmp_path: Path) -> str:
    """A second, migrated database: another Tautan instance to move links to."""
    url = empty_database(backend, tmp_path, "transfer")
    migrate.upgrade(url)
    return url


@pytest.fixture
def other_client(settings: Settings, other_database: str, tmp_path: Path) -> Iterator[TestClient]:
    other = settings.model_copy(
        update={"database_url": other_database, "spool_dir": str(tmp_path / "other-spool")}
    )
    with with_writer(
        TestClient(create_app(other), base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as client:
        yield client


def test_import_creates_the_valid_rows_and_reports_the_others_by_line(
    client: TestClient, writer: dict
) -> None:
    create_link(client, make_key(client, "links:write", workspace="elsewhere"), slug="taken")
    response = upload(client, writer, MIXED)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["imported"], report["refused"], report["dry_run"]) == (2, 5, False)
    assert [(e["line"], e["error"]["code"]) for e in report["errors"]] == MIXED_ERRORS
    messages = {e["line"]: e["error"] for e in report["errors"]}
    assert messages[5]["details"][0]["loc"] == ["url"]
    assert "line 2" in messages[8]["message"]
    # The report names the links made; their content is the API's (or the export's).
    assert report["links"][0] == {"slug": "spring-a", "short_url": f"{BASE_URL}/spring-a"}
    first, second = (
        client.get(f"/api/links/{made['slug']}", headers=writer).json() for made in report["links"]
    )
    assert first["tags"] == ["ig", "promo"] and first["title"] == "Spring"
    assert first["destination"] == (
        "https://shop.example/a?utm_source=instagram&utm_campaign=spring"
    )
    assert second["title"] == "Two\r\nlines, and a comma" and len(second["slug"]) == 7
    assert client.get("/spring-a").headers["location"] == first["destination"]
    assert count_links(client) == 3


def test_dry_run_reports_what_the_import_would_do_and_writes_nothing(
    client: TestClient, writer: dict
) -> None:
    create_link(client, writer, slug="taken")
    dry = upload(client, writer, MIXED, dry_run="true").json()
    assert dry["dry_run"] is True
    assert count_links(client) == 1
    assert client.get("/spring-a").status_code == 404
    real = upload(client, writer, MIXED).json()
    assert (dry["imported"], dry["refused"], dry["errors"]) == (
        real["imported"],
        real["refused"],
        real["errors"],
    )
    assert client.get("/spring-a").status_code == 302


@pytest.mark.parametrize(
    "content, says",
    [
        ("url,slug,colour,size\nhttps://a.example/,a,red,xl\n", "unknown columns: colour, size"),
        ("https://a.example/,a\nhttps://b.example/,b\n", "unknown columns: https://a.example/"),
        ("slug,title\nabc,Title\n", "no 'url' column"),
        ("url,slug,url\nhttps://a.example/,a,https://b.example/\n", "twice in the header: url"),
        ("", "empty"),
        ('url\nhttps://a.example/\n"https://b.example/"oops\n', "line 3: not valid CSV"),
        ('url\nhttps://a.example/\n"https://b.example/\n', "line 3: not valid CSV"),
        (b"url\nhttps://a.example/\n\x89PNG\r\n\x1a\n\x00\xff", "not UTF-8"),
        # Past the first chunk, which would otherwise have been committed already.
        (
            "url\n" + "https://a.example/\n" * (IMPORT_CHUNK + 1) + '"https://b.example/\n',
            f"line {IMPORT_CHUNK + 3}: not valid CSV",
        ),
    ],
)
def test_a_file_that_is_not_a_links_csv_is_refused_whole_with_422(
    client: TestClient, writer: dict, content: str | bytes, says: str
) -> None:
    response = upload(client, writer, content)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_csv" and says in error["message"]
    assert count_links(client) == 0


def test_a_dry_run_of_several_chunks_reports_every_row_and_writes_nothing(
    client: TestClient, writer: dict
) -> None:
    create_link(client, writer, slug="taken")
    rows = [f"https://shop.example/{i},dry{i}\n" for i in range(IMPORT_CHUNK + 1)]
    rows[-2] = "https://shop.example/again,dry0\n"  # in the second chunk, as line 2 does
    rows[-1] = "https://shop.example/taken,taken\n"
    body = "url,slug\n" + "".join(rows)
    dry = upload(client, writer, body, dry_run="true").json()
    assert (dry["dry_run"], dry["imported"], dry["refused"]) == (True, IMPORT_CHUNK - 1, 2)
    assert [(e["line"], e["error"]["code"]) for e in dry["errors"]] == [
        (IMPORT_CHUNK + 1, "slug_taken"),
        (IMPORT_CHUNK + 2, "slug_taken"),
    ]
    assert count_links(client) == 1
    real = upload(client, writer, body).json()
    assert (real["imported"], real["errors"]) == (dry["imported"], dry["errors"])
    assert [x["slug"] for x in real["links"]] == [x["slug"] for x in dry["links"]]


def test_trailing_empty_cells_are_ignored_and_extra_filled_ones_refused(
    client: TestClient, writer: dict
) -> None:
    body = (
        "url,slug\r\n"
        "https://a.example/,x1,\r\n"  # as spreadsheets often write it
        "https://b.example/,x2,, \r\n"
        "https://c.example/,x3,,extra\r\n"
    )
    report = upload(client, writer, body).json()
    assert [x["slug"] for x in report["links"]] == ["x1", "x2"]
    [error] = report["errors"]
    assert (error["line"], error["error"]["code"]) == (4, "invalid_row")
    assert error["error"]["message"] == "4 cells, the header names 2"
    assert count_links(client) == 2


def test_import_without_a_file_field_is_a_422(client: TestClient, writer: dict) -> None:
    response = client.post("/api/links/import", json={"url": "https://a.example/"}, headers=writer)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_import_and_export_need_their_scopes(client: TestClient, writer: dict) -> None:
    reader = make_key(client, "links:read")
    stats_only = make_key(client, "stats:read")
    assert upload(client, reader, "url\nhttps://a.example/\n").status_code == 403
    assert upload(client, {}, "url\nhttps://a.example/\n").status_code == 401
    assert count_links(client) == 0
    assert client.get("/api/links/export.csv", headers=stats_only).status_code == 403
    assert client.get("/api/links/export.csv").status_code == 401
    assert client.get("/api/links/export.csv", headers=reader).status_code == 200


@pytest.fixture
def small_limit_client(settings: Settings) -> Iterator[TestClient]:
    limited = settings.model_copy(update={"import_max_bytes": 4096})
    with with_writer(
        TestClient(create_app(limited), base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as client:
        yield client


def test_an_import_over_the_configured_size_is_413_and_writes_nothing(
    small_limit_client: TestClient,
) -> None:
    client = small_limit_client
    headers = make_key(client, "links:write")
    rows = "".join(f"https://shop.example/{i},big-{i}\n" for i in range(200))
    few = "".join(f"https://shop.example/{i},few-{i}\n" for i in range(40))
    response = upload(client, headers, "url,slug\n" + rows)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    # The same, streamed without a Content-Length.
    body = (
        b"--b\r\nContent-Disposition: form-data; name=file; filename=l.csv\r\n\r\n"
        + b"url,slug\n"
        + rows.encode()
        + b"\r\n--b--\r\n"
    )
    streamed = client.post(
        "/api/links/import",
        content=iter([body[i : i + 1000] for i in range(0, len(body), 1000)]),
        headers={**headers, "content-type": "multipart/form-data; boundary=b"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "payload_too_large"
    assert count_links(client) == 0
    assert upload(client, headers, "url,slug\n" + few).json()["imported"] == 40


def test_imports_may_pass_1_mib_but_other_bodies_may_not(client: TestClient, writer: dict) -> None:
    padded = "url,slug\nhttps://shop.example/,padded\n" + "\n" * (1536 * 1024)
    response = upload(client, writer, padded)
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 1
    over = [{"url": "https://shop.example/" + "a" * 4000} for _ in range(300)]
    bulk = client.post("/api/links/bulk", json={"links": over}, headers=writer)
    assert bulk.status_code == 413
    assert count_links(client) == 1


def _fill_workspace(client: TestClient, headers: dict) -> list[dict]:
    links = [
        create_link(client, headers, slug="rt-plain"),
        create_link(
            client,
            headers,
            slug="rt-full",
            url="https://shop.example/p?color=red&utm_source=old",
            title='Sale, "50%" off\nnow',
            tags=["b", "a"],
            utm_source="newsletter",
            utm_medium="email",
            utm_campaign="launch",
            utm_term="shoes",
            utm_content="hero",
        ),
        create_link(client, headers, url="https://shop.example/ünïcode?q=å"),
        create_link(client, headers, slug="rt-gone"),
    ]
    assert client.delete("/api/links/rt-gone", headers=headers).status_code == 204
    when = datetime(2026, 3, 10, tzinfo=UTC)
    seed_clicks(client, [raw_click(links[1], when, ip=f"203.0.113.{i}") for i in range(3)])
    return [client.get(f"/api/links/{x['slug']}", headers=headers).json() for x in links]


def test_export_then_import_elsewhere_reproduces_the_links(
    client: TestClient, writer: dict, other_client: TestClient
) -> None:
    links = _fill_workspace(client, writer)
    response = client.get("/api/links/export.csv", headers=writer)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["slug"] for r in rows] == [links[2]["slug"], "rt-full", "rt-plain", "rt-gone"]
    full = rows[1]
    assert (full["clicks"], full["unique_visitors"], full["tags"]) == ("3", "3", "a|b")
    assert (full["archived"], rows[3]["archived"]) == ("false", "true")
    assert full["short_url"] == f"{BASE_URL}/rt-full"

    other_key = make_key(other_client, "links:read", "links:write", workspace="agency")
    report = upload(other_client, other_key, response.content).json()
    assert (report["imported"], report["refused"]) == (4, 0)
    for link in links:
        copy = other_client.get(f"/api/links/{link['slug']}", headers=other_key).json()
        assert {f: copy[f] for f in IMPORT_FIELDS} == {f: link[f] for f in IMPORT_FIELDS}
        assert copy["clicks"] == 0
    # Read back into the same instance, every row's slug is taken: lines are counted
    # right past the title that spans two lines.
    again = upload(client, writer, response.content).json()
    assert [(e["line"], e["error"]["code"]) for e in again["errors"]] == [
        (2, "slug_taken"),
        (3, "slug_taken"),
        (5, "slug_taken"),
        (6, "slug_taken"),
    ]


def test_exported_text_never_opens_as_a_spreadsheet_formula(
    client: TestClient, writer: dict, other_client: TestClient
) -> None:
    formula = '=HYPERLINK("https://evil.example/","open me")'
    create_link(client, writer, slug="f", title=formula, tags=["-1", "ok"], utm_term="+x")
    [row] = export_rows(client, writer)
    assert (row["title"], row["tags"], row["utm_term"]) == ("'" + formula, "'-1|ok", "'+x")
    exported = client.get("/api/links/export.csv", headers=writer).content
    other_key = make_key(other_client, "links:read", "links:write")
    assert upload(other_client, other_key, exported).json()["imported"] == 1
    copy = other_client.get("/api/links/f", headers=other_key).json()
    assert (copy["title"], copy["tags"], copy["utm_term"]) == (formula, ["-1", "ok"], "+x")


def test_export_then_import_keeps_text_that_starts_with_a_quote(
    client: TestClient, writer: dict, other_client: TestClient
) -> None:
    link = create_link(
        client,
        writer,
        slug="quoted",
        title="'=quoted",
        tags=["'+x", "plain", "''two"],
        utm_source="'-src",
        utm_campaign="'plain'",
    )
    [row] = export_rows(client, writer)
    assert (row["title"], row["tags"], row["utm_source"], row["utm_campaign"]) == (
        "''=quoted",
        "'''two|''+x|plain",
        "''-src",
        "''plain'",
    )
    exported = client.get("/api/links/export.csv", headers=writer).content
    other_key = make_key(other_client, "links:read", "links:write")
    assert upload(other_client, other_key, exported).json()["imported"] == 1
    copy = other_client.get("/api/links/quoted", headers=other_key).json()
    assert {f: copy[f] for f in IMPORT_FIELDS} == {f: link[f] for f in IMPORT_FIELDS}
    # A file written by hand keeps a leading quote that escapes nothing.
    upload(other_client, other_key, "url,slug,title\nhttps://a.example/,tis,'Tis\n")
    assert other_client.get("/api/links/tis", headers=other_key).json()["title"] == "'Tis"


def test_export_shows_the_callers_workspace_only_and_filters_like_the_list(
    client: TestClient, writer: dict
) -> None:
    _fill_workspace(client, writer)
    other = make_key(client, "links:read", "links:write", workspace="client-b")
    create_link(client, other, slug="b-only", tags=["a"])
    assert [r["slug"] for r in export_rows(client, other)] == ["b-only"]
    assert len(export_rows(client, writer)) == 4
    assert len(export_rows(client, make_key(client, "admin"))) == 5
    assert [r["slug"] for r in export_rows(client, writer, tag="a")] == ["rt-full"]
    assert [r["slug"] for r in export_rows(client, writer, q="plain")] == ["rt-plain"]
    assert [r["slug"] for r in export_rows(client, writer, archived="true")] == ["rt-gone"]
    assert len(export_rows(client, writer, archived="false")) == 3
    empty = client.get(
        "/api/links/export.csv", headers=make_key(client, "links:read", workspace="z")
    )
    assert empty.text.startswith("url,slug,") and empty.text.count("\n") == 1


def test_export_pages_through_more_links_than_a_page(client: TestClient, writer: dict) -> None:
    body = "url,slug\n" + "".join(f"https://shop.example/{i},many-{i}\n" for i in range(1203))
    assert upload(client, writer, body).json()["imported"] == 1203
    slugs = [r["slug"] for r in export_rows(client, writer)]
    assert slugs == [f"many-{i}" for i in reversed(range(1203))]


def test_openapi_describes_the_import_report(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/api/links/import"]["post"]
    ref = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    report = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(report["properties"]) == {"imported", "refused", "dry_run", "links", "errors"}
    assert (
        "text/csv" in schema["paths"]["/api/links/export.csv"]["get"]["responses"]["200"]["content"]
    )


# --- the command line ----------------------------------------------------------------------


def test_cli_import_reports_refused_rows_by_line_and_exits_1(
    client: TestClient, writer: dict, database_url: str, tmp_path: Path
) -> None:
    create_link(client, writer, slug="taken")
    path = tmp_path / "links.csv"
    path.write_text(MIXED, encoding="utf-8", newline="")
    dry = tautan(database_url, "links", "import", str(path), "--dry-run")
    assert dry.returncode == 1, dry.stderr
    assert count_links(client) == 1
    result = tautan(database_url, "links", "import", str(path), "--workspace", "agency")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[3].startswith("line 9: slug: ")
    assert lines[:3] + lines[4:-1] == [
        "line 5: url: only http and https URLs are accepted — add https://?",
        "line 7: the slug 'taken' is taken",
        "line 8: the slug 'spring-a' is used on line 2",
        "line 10: 7 cells, the header names 6",
    ]
    assert lines[-1] == "imported 2, refused 5"
    assert dry.stdout.splitlines() == [*lines[:-1], "imported 2, refused 5 (dry run: nothing "
                                       "was written)"]  # fmt: skip
    assert count_links(client) == 3
    assert client.get("/spring-a").status_code == 302
    agency = make_key(client, "links:read", workspace="agency")
    assert client.get("/api/links/spring-a", headers=agency).status_code == 200

    clean = tmp_path / "clean.csv"  # committed chunk by chunk
    rows = 2 * IMPORT_CHUNK + 1
    clean.write_text("url\n" + "".join(f"https://shop.example/{i}\n" for i in range(rows)))
    # A dry run is rolled back chunk by chunk, with the new workspace it made first.
    dry = tautan(database_url, "links", "import", str(clean), "--dry-run", "--workspace", "new")
    assert (dry.returncode, dry.stdout) == (
        0,
        f"imported {rows}, refused 0 (dry run: nothing was written)\n",
    )
    header_only = tmp_path / "header.csv"  # no row gets as far as a chunk
    header_only.write_text("url\n")
    empty = tautan(
        database_url, "links", "import", str(header_only), "--dry-run", "--workspace", "new"
    )
    assert empty.returncode == 0, empty.stdout + empty.stderr
    assert count_links(client) == 3
    assert (
        run_in_transaction(
            client, lambda s: s.scalar(select(Workspace).where(Workspace.name == "new"))
        )
        is None
    )
    ok = tautan(database_url, "links", "import", str(clean))
    assert (ok.returncode, ok.stdout) == (0, f"imported {rows}, refused 0\n")
    assert count_links(client) == 3 + rows


def test_cli_import_refuses_a_bad_file_whole(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "links.csv"
    path.write_text("url,slug,colour\nhttps://shop.example/,x,red\n")
    result = tautan(database_url, "links", "import", str(path), "--workspace", "new-one")
    assert result.returncode == 1
    assert "unknown columns: colour" in result.stdout
    assert count_links(client) == 0
    # A short path: the error box wraps long ones mid-sentence.
    missing = tautan(database_url, "links", "import", "no-such-file.csv")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_link_exports_write_archived_as_true_and_false(
    client: TestClient, writer: dict, database_url: str
) -> None:
    _fill_workspace(client, writer)
    want = {"rt-plain": "false", "rt-full": "false", "rt-gone": "true"}
    api = {r["slug"]: r["archived"] for r in export_rows(client, writer)}
    cli = tautan(database_url, "links", "export", "--workspace", "default")
    assert cli.returncode == 0, cli.stderr
    command_line = {r["slug"]: r["archived"] for r in csv.DictReader(io.StringIO(cli.stdout))}
    for exported in (api, command_line):
        assert {slug: exported[slug] for slug in want} == want
        assert set(exported.values()) == {"true", "false"}


def test_cli_export_csv_and_json_round_trip(
    client: TestClient, writer: dict, database_url: str, other_database: str, tmp_path: Path
) -> None:
    links = _fill_workspace(client, writer)
    create_link(client, make_key(client, "links:write", workspace="client-b"), slug="b-only")

    everything = tautan(database_url, "links", "export")
    assert everything.returncode == 0, everything.stderr
    rows = list(csv.DictReader(io.StringIO(everything.stdout)))
    assert {r["slug"]: r["workspace"] for r in rows} == {
        **{x["slug"]: "default" for x in links},
        "b-only": "client-b",
    }

    path = tmp_path / "default.csv"
    exported = tautan(
        database_url, "links", "export", "--workspace", "default", "--output", str(path)
    )
    assert exported.returncode == 0, exported.stderr
    assert "workspace" not in path.read_text().splitlines()[0]
    imported = tautan(other_database, "links", "import", str(path))
    assert (imported.returncode, imported.stdout) == (0, "imported 4, refused 0\n")
    copies = tautan(other_database, "links", "export", "--format", "json")
    by_slug = {x["slug"]: x for x in json.loads(copies.stdout)}
    for link in links:
        assert {f: by_slug[link["slug"]][f] for f in IMPORT_FIELDS} == {
            f: link[f] for f in IMPORT_FIELDS
        }

    as_json = tautan(database_url, "links", "export", "--format", "json", "--workspace", "default")
    assert as_json.returncode == 0, as_json.stderr
    assert sorted(json.loads(as_json.stdout), key=lambda x: x["id"]) == links
    unknown = tautan(database_url, "links", "export", "--workspace", "nope")
    assert unknown.returncode == 1 and "no workspace named 'nope'" in unknown.stdout


def test_a_file_over_the_row_limit_is_refused_whole(client: TestClient, writer: dict) -> None:
    rows = "".join(f"https://shop.example/{n}\n" for n in range(MAX_IMPORT_ROWS + 1))
    response = upload(client, writer, "url\n" + rows)
    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("too_many_rows", {"limit": MAX_IMPORT_ROWS})
    assert "split the file" in error["message"]
    assert count_links(client) == 0
    # At the limit, every row is taken, and the report stays small: counts and addresses.
    report = upload(client, writer, "url\n" + rows.split("\n", 1)[1]).json()
    assert report["imported"] == MAX_IMPORT_ROWS
    assert set(report["links"][0]) == {"slug", "short_url"}
