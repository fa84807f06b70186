-- A leased delivery is due again when its lease runs out: every statement that leases a row now
-- also sets `next_attempt_at` to the lease's end, so the scheduler's index (on
-- `next_attempt_at`) only holds, below now(), rows that are really due. Rows leased before this
-- version get the same shape.
UPDATE deliveries SET next_attempt_at = leased_until
WHERE status = 'PENDING' AND leased_until IS NOT NULL
  AND (next_attempt_at IS NULL OR next_attempt_at < leased_until);
