"""The installed `tautan` executable as a process of its own: one smoke test of the
command line (the others run it in the test's process), and `tautan serve` refusing to
start in production without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from app import auth
from tests.support.app import BASE_URL

STRONG = "k" * 32  # as long as production asks


def test_the_installed_command_runs_as_a_process_of_its_own(database_url: str) -> None:
    """The one test of the real `tautan` executable (the rest run it in this process)."""
    env = {**os.environ, "TAUTAN_DATABASE_URL": database_url, "TAUTAN_BASE_URL": BASE_URL}
    command = [str(Path(sys.executable).parent / "tautan")]
    created = subprocess.run(
        [*command, "keys", "create", "--name", "smoke", "--scopes", "links:read"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith(auth.TOKEN_PREFIX)
    listed = subprocess.run([*command, "keys", "list"], env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert listed.returncode == 0 and "smoke" in listed.stdout, listed.stderr
    unknown = subprocess.run([*command, "no-such-command"], env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert unknown.returncode == 2 and "No such command" in unknown.stderr


def test_serve_refuses_to_start_in_production_without_a_secret(
    database_url: str, tmp_path: Path
) -> None:
    assert "TAUTAN_SECRET_KEY is missing" in serve_in_production(database_url, tmp_path)


def test_serve_refuses_a_short_admin_key_in_production(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    output = serve_in_production(database_url, tmp_path, secret_key=STRONG, admin_key="hunter2")
    assert "TAUTAN_ADMIN_KEY is shorter than 32 characters" in output
    assert "secrets.token_urlsafe(32)" in output
    assert "hunter2" not in output
    # ...and `Bearer hunter2` opens nothing.
    assert client.get("/api/links", headers={"Authorization": "Bearer hunter2"}).status_code == 401


def serve_in_production(database_url: str, tmp_path: Path, **variables: str) -> str:
    """`tautan serve` in production with these TAUTAN_* variables, expected to refuse to
    start: its output, on one line (the terminal wraps it)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("TAUTAN_SECRET_KEY", "TAUTAN_ADMIN_KEY")
    }
    env |= {"TAUTAN_ENV": "production", "TAUTAN_DATABASE_URL": database_url}
    env |= {f"TAUTAN_{name.upper()}": value for name, value in variables.items()}
    command = [str(Path(sys.executable).parent / "tautan"), "serve", "--port", "1"]
    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    return " ".join((result.stderr + result.stdout).split())
