-- A click's route (the rule or variant of its link that chose the destination; null for
-- the link's own url), and `route` as a dimension of rollup_days. The clicks stored so far
-- all went to their link's own url: their `route` rows are their `trigger` rows, summed
-- (every click has one trigger), added once (a run cut short and done again finds them).
-- The view's query is then changed in place: no click inserted meanwhile goes uncounted,
-- but those of the moment between the two (writers running through the migration) get no
-- `route` row.

ALTER TABLE clicks ADD COLUMN IF NOT EXISTS route LowCardinality(Nullable(String)) AFTER trigger;

INSERT INTO rollup_days
SELECT workspace_id, 'route', day, link_id, is_bot, '', sum(clicks), sum(visitors)
FROM rollup_days
WHERE dimension = 'trigger'
  AND (SELECT count() FROM rollup_days WHERE dimension = 'route') = 0
GROUP BY workspace_id, day, link_id, is_bot;

ALTER TABLE rollup_days_view MODIFY QUERY
SELECT workspace_id, attribute.1 AS dimension, toDate(ts) AS day, link_id, is_bot,
       attribute.2 AS value, count() AS clicks, countIf(new_visitor) AS visitors
FROM clicks
ARRAY JOIN [
    ('country', ifNull(country, '')), ('device_type', device_type), ('os', ifNull(os, '')),
    ('browser', ifNull(browser, '')), ('device_brand', ifNull(device_brand, '')),
    ('referrer_source', referrer_source), ('in_app', ifNull(in_app, '')),
    ('trigger', trigger), ('language', ifNull(language, '')),
    ('bot_name', ifNull(bot_name, '')), ('route', ifNull(route, ''))
] AS attribute
GROUP BY workspace_id, dimension, day, link_id, is_bot, value;
