-- Endpoint health and parked deliveries (docs/architecture.md, "Isolation and endpoint health").
--
-- A webhook's endpoint is healthy, degraded (consecutive failures: one probe at a time, the
-- rest of its deliveries parked) or disabled (by hand, after failing for the disable period,
-- or on 410 Gone). `enabled` stays, kept equal to `health <> 'disabled'`, so readers of the
-- previous release keep working during a rolling deploy.
ALTER TABLE webhooks
    ADD COLUMN health text NOT NULL DEFAULT 'healthy'
        CHECK (health IN ('healthy', 'degraded', 'disabled')),
    ADD COLUMN health_reason text,
    ADD COLUMN health_changed timestamptz,
    -- Endpoint failures (no answer, 5xx, 410) since the last 2xx, and the first of them.
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN last_success_at timestamptz,
    ADD COLUMN last_failure_at timestamptz,
    -- While degraded: the probe interval (doubling) and when the next probe is due.
    ADD COLUMN probe_interval_ms bigint,
    ADD COLUMN next_probe_at timestamptz,
    -- The delivery sent as the current probe (its event id).
    ADD COLUMN probe_event_id uuid,
    -- Parked deliveries are being released: the next batch is due at this time.
    ADD COLUMN release_at timestamptz;

UPDATE webhooks SET health = 'disabled', health_reason = 'manual', health_changed = updated
WHERE NOT enabled;

CREATE INDEX webhooks_probe_due_idx ON webhooks (next_probe_at) WHERE health = 'degraded';
CREATE INDEX webhooks_release_idx ON webhooks (release_at) WHERE release_at IS NOT NULL;

-- PARKED: owed, held back without a due time (endpoint degraded or disabled, or a poison
-- delivery); its attempt count is kept and its retry clock paused. SKIPPED: the event matched a
-- disabled webhook; recorded, never sent, replayable.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('PENDING', 'PARKED', 'SUCCESS', 'FAILURE', 'SKIPPED'));
-- Times a worker was lost (lease ran out) while attempting the delivery; past the limit it is
-- parked instead of sent to yet another worker.
ALTER TABLE deliveries ADD COLUMN lost_count integer NOT NULL DEFAULT 0;
-- Releasing and probing look up a webhook's parked deliveries, oldest first.
CREATE INDEX deliveries_parked_idx ON deliveries (webhook_id, event_id) WHERE status = 'PARKED';
-- Replaying what was skipped looks up a webhook's skipped deliveries.
CREATE INDEX deliveries_skipped_idx ON deliveries (webhook_id, event_id) WHERE status = 'SKIPPED';
