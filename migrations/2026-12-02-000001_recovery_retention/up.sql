-- Bulk recovery jobs, retention and erasure (docs/architecture.md, "Recovery and retention").

-- Erasure: the payload is replaced and the event stays in the log, marked with when.
ALTER TABLE events ADD COLUMN erased timestamptz;

-- Retention finds events by creation time. A BRIN index: rows arrive in time order, so a
-- summary per range of pages finds the old ones at almost no cost to ingest (a B-tree would
-- add a write per event).
CREATE INDEX events_created_brin_idx ON events USING brin (created);

-- Recovery matches a webhook's failed deliveries; like the skipped ones, they are a small
-- part of its log.
CREATE INDEX deliveries_failure_idx ON deliveries (webhook_id, event_id) WHERE status = 'FAILURE';

-- A bulk recovery: the deliveries its filter matched when it was created (in
-- recovery_items), requeued at the job's rate by whichever replica holds its lease.
CREATE TABLE recoveries (
    id uuid PRIMARY KEY,
    brand_id text NOT NULL,
    -- The webhook of a webhook-level job; NULL for a brand-level one.
    webhook_id uuid,
    -- Every webhook the job covers (one for a webhook-level job).
    webhook_ids uuid[] NOT NULL,
    since timestamptz NOT NULL,
    until timestamptz NOT NULL,
    statuses text[] NOT NULL,
    -- The leaf event types matched (groups expanded); NULL: every type.
    event_types text[],
    state text NOT NULL CHECK (state IN ('RUNNING', 'DONE', 'CANCELLED', 'FAILED')),
    matched bigint NOT NULL,
    requeued bigint NOT NULL DEFAULT 0,
    -- Matched deliveries that no longer needed it when the job reached them (delivered or
    -- owed meanwhile, or erased).
    skipped bigint NOT NULL DEFAULT 0,
    error text,
    -- The replica running the job and until when; after that any replica may continue it.
    owner text,
    leased_until timestamptz,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    finished timestamptz
);

CREATE INDEX recoveries_brand_id_created_idx ON recoveries (brand_id, created, id);
CREATE INDEX recoveries_running_idx ON recoveries (leased_until) WHERE state = 'RUNNING';

-- What a running job has still to requeue; each step deletes what it handled in the same
-- statement that requeues it and counts it on the job.
CREATE TABLE recovery_items (
    recovery_id uuid NOT NULL REFERENCES recoveries (id) ON DELETE CASCADE,
    webhook_id uuid NOT NULL,
    event_id uuid NOT NULL,
    PRIMARY KEY (recovery_id, webhook_id, event_id)
);
