-- rollup_days is ordered by workspace, dimension and day: one link's breakdown reads the
-- whole workspace's rows of each day (13 granules of 8,192 rows for 90 days at 10M clicks).
-- A projection ordered by link holds the same rows with a link's together (4 granules
-- there: a link's breakdown ~25 % faster on chdb); ClickHouse reads it when it reads fewer
-- marks, the table otherwise (the workspace's breakdowns). It doubles the view's storage,
-- which is small beside the clicks'. Merges of an AggregatingMergeTree keep a projection
-- only when told to rebuild it; a lightweight DELETE is refused (it would leave the rows in
-- the projection): a link is erased from it by a mutation. The projection of the rows
-- stored so far is built before the migration is recorded (a run cut short builds it again).

ALTER TABLE rollup_days MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE rollup_days ADD PROJECTION IF NOT EXISTS by_link (
    SELECT * ORDER BY workspace_id, link_id, dimension, day, is_bot, value
);

ALTER TABLE rollup_days MATERIALIZE PROJECTION by_link SETTINGS mutations_sync = 1;
