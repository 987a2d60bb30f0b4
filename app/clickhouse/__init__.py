"""ClickHouse as the click store (TAUTAN_CLICKHOUSE_URL): the client (client.py, with the
embedded engine's owner in embedded.py) and the versioned schema (schema.py, with its
statements in migrations/clickhouse/)."""
