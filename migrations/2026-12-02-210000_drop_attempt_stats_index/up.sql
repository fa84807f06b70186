-- The portal's attempt statistics read a window of a webhook's attempts from
-- attempts_delivery_idx (webhook_id, event_id, created), bounded below by the UUIDv7 event ids
-- of a week before the window (crates/store/src/stats.rs). The covering index added for them
-- cost every recorded attempt a third index insert: with it, delivery throughput under batch
-- load fell by about a fifth (hookline-bench --events 50000 --batch 500 --concurrency 8,
-- alternating runs with and without it).
DROP INDEX IF EXISTS attempts_webhook_created_idx;
