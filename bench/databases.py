"""Databases of the benchmarks' own on a local PostgreSQL server."""

from sqlalchemy import make_url, text

from app.core.database import create_engine


async def postgres_database(server_url: str, name: str, *, create: bool) -> str:
    """Drop the database `name` on the server, then (`create`) make it anew, empty; its URL."""
    server = create_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    async with server.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if create:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await server.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)
