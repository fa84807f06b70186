DROP TABLE recovery_items;
DROP TABLE recoveries;
DROP INDEX deliveries_failure_idx;
DROP INDEX events_created_brin_idx;
ALTER TABLE events DROP COLUMN erased;
