-- The scheduler's index holds the rows that have a due time, which are exactly the PENDING
-- ones (`next_attempt_at` is NULL once a delivery is final). Its old predicate,
-- `status = 'PENDING'`, was implied by the take, record and release statements, which look rows
-- up by key and also say `status = 'PENDING'`: while the statistics said few deliveries were
-- pending (a fresh table, or before a burst), Postgres answered those statements by reading
-- every pending row through this index, so each cost grew with the backlog. With this
-- predicate only statements bounding `next_attempt_at` (the scheduler's) can use it, and key
-- lookups go through the primary key.
DROP INDEX deliveries_due_idx;
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
