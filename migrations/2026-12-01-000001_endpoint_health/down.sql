DROP INDEX deliveries_skipped_idx;
DROP INDEX deliveries_parked_idx;
ALTER TABLE deliveries DROP COLUMN lost_count;
UPDATE deliveries SET status = 'PENDING', next_attempt_at = now() WHERE status = 'PARKED';
UPDATE deliveries SET status = 'FAILURE', status_reason = 'webhook_disabled' WHERE status = 'SKIPPED';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('PENDING', 'SUCCESS', 'FAILURE'));
DROP INDEX webhooks_release_idx;
DROP INDEX webhooks_probe_due_idx;
ALTER TABLE webhooks
    DROP COLUMN health, DROP COLUMN health_reason, DROP COLUMN health_changed,
    DROP COLUMN consecutive_failures, DROP COLUMN failing_since, DROP COLUMN last_success_at,
    DROP COLUMN last_failure_at, DROP COLUMN probe_interval_ms, DROP COLUMN next_probe_at,
    DROP COLUMN probe_event_id, DROP COLUMN release_at;
