"""The `tautan` command line, run in this process as `tautan ARGS…` would run, with
Typer's CliRunner: a subprocess per call would spend a second on imports each time
(tests/system/test_cli_process.py keeps one real subprocess as a smoke test)."""

import os
import subprocess

from typer.testing import CliRunner

from app import cli
from app.config import get_settings
from tests.support.app import BASE_URL


def tautan(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `tautan` command line against `database_url`; its exit status and output."""
    return command(*args, env={"TAUTAN_DATABASE_URL": database_url, "TAUTAN_BASE_URL": BASE_URL})


def command(*args: str, env: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    """Run `tautan ARGS…` with these environment variables set (None: unset)."""
    umask = os.umask(0o077)  # as the command sets it; the test process's own comes back
    get_settings.cache_clear()  # read from `env`, not from an earlier call's
    try:
        result = CliRunner().invoke(cli.app, list(args), env=env)
    finally:
        get_settings.cache_clear()
        os.umask(umask)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(
        ["tautan", *args], result.exit_code, result.stdout, result.stderr
    )
