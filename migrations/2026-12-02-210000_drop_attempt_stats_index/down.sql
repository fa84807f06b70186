-- The portal's charts read a webhook's attempts by time (crates/store/src/stats.rs): outcome
-- counts and response-time percentiles since a moment. `attempts_delivery_idx` leads with the
-- delivery (webhook, event), so a window of one webhook's attempts was a scan of the whole
-- table (75 ms with 720 000 attempts, 12 000 of them in the window). Covering the two columns
-- read makes it an index-only range scan of the window (2 ms); attempts are never updated, so
-- the visibility map stays set and the heap is not read.
CREATE INDEX attempts_webhook_created_idx ON attempts (webhook_id, created)
    INCLUDE (status, response_time_ms);
