from pathlib import Path

from sqlalchemy import inspect

from app import migrate
from app.db import create_engine
from tests.conftest import empty_database, run


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


def test_migrations_run_up_to_head_and_down_to_base(backend: str, tmp_path: Path) -> None:
    url = empty_database(backend, tmp_path, "updown")
    migrate.upgrade(url)
    assert {"workspaces", "api_keys", "links", "link_tags"} <= run(_tables(url))
    migrate.downgrade(url, "base")
    assert run(_tables(url)) <= {"alembic_version"}
    migrate.upgrade(url)  # and up again, from a downgraded database
    assert "links" in run(_tables(url))
