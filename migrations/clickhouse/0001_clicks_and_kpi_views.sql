-- Clicks, and the KPIs' materialized views: what rollup_hours and rollup_days hold in the
-- SQL store, kept by ClickHouse itself as clicks are inserted. Visitors are first clicks of
-- a visitor on a link in a UTC day (new_visitor, marked by the writer), so they add up over
-- hours, days, links and values as in the SQL store. Every table keeps the tokens of its
-- last 10,000 inserts: a batch sent again (after a writer died, say) is stored once.

CREATE TABLE clicks (
    id UInt64,
    link_id UInt32,
    workspace_id UInt32,
    ts DateTime64(6, 'UTC'),
    visitor_id String,
    new_visitor Bool,
    is_bot Bool,
    bot_name Nullable(String),
    device_type LowCardinality(String),
    os LowCardinality(Nullable(String)),
    os_version Nullable(String),
    browser LowCardinality(Nullable(String)),
    browser_version Nullable(String),
    device_brand LowCardinality(Nullable(String)),
    device_model Nullable(String),
    in_app LowCardinality(Nullable(String)),
    referrer_url Nullable(String),
    referrer_domain Nullable(String),
    referrer_source LowCardinality(String),
    country LowCardinality(Nullable(String)),
    region Nullable(String),
    city Nullable(String),
    latitude Nullable(Float64),
    longitude Nullable(Float64),
    timezone LowCardinality(Nullable(String)),
    language LowCardinality(Nullable(String)),
    ip Nullable(String),
    trigger LowCardinality(String),
    user_agent_id Nullable(UInt32)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (workspace_id, link_id, ts)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE rollup_hours (
    workspace_id UInt32,
    link_id UInt32,
    hour DateTime('UTC'),
    is_bot Bool,
    clicks SimpleAggregateFunction(sum, UInt64),
    visitors SimpleAggregateFunction(sum, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (workspace_id, link_id, hour, is_bot)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW rollup_hours_view TO rollup_hours AS
SELECT workspace_id, link_id, toStartOfHour(ts) AS hour, is_bot,
       count() AS clicks, countIf(new_visitor) AS visitors
FROM clicks
GROUP BY workspace_id, link_id, hour, is_bot;

-- One row a link, day and value of each click attribute with few values ('' for null).
CREATE TABLE rollup_days (
    workspace_id UInt32,
    dimension LowCardinality(String),
    day Date,
    link_id UInt32,
    is_bot Bool,
    value String,
    clicks SimpleAggregateFunction(sum, UInt64),
    visitors SimpleAggregateFunction(sum, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (workspace_id, dimension, day, link_id, is_bot, value)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW rollup_days_view TO rollup_days AS
SELECT workspace_id, attribute.1 AS dimension, toDate(ts) AS day, link_id, is_bot,
       attribute.2 AS value, count() AS clicks, countIf(new_visitor) AS visitors
FROM clicks
ARRAY JOIN [
    ('country', ifNull(country, '')), ('device_type', device_type), ('os', ifNull(os, '')),
    ('browser', ifNull(browser, '')), ('device_brand', ifNull(device_brand, '')),
    ('referrer_source', referrer_source), ('in_app', ifNull(in_app, '')),
    ('trigger', trigger), ('language', ifNull(language, '')),
    ('bot_name', ifNull(bot_name, ''))
] AS attribute
GROUP BY workspace_id, dimension, day, link_id, is_bot, value;
