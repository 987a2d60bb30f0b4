"""Where the writer stores clicks: the SQL database (sql.py: clicks, rollups and counters
in the writer's transaction), or ClickHouse (clickhouse.py: clicks, whose views keep the
KPIs; the counters stay in the SQL database)."""
