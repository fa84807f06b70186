-- Hookline's initial schema. See docs/architecture.md "Data": Postgres is the source of truth
-- for what is owed; RabbitMQ only carries (webhook_id, event_id) pointers into `deliveries`.

CREATE TABLE webhooks (
    id uuid PRIMARY KEY,
    brand_id text NOT NULL,
    endpoint text NOT NULL,
    -- Normalised (deduplicated, sorted) subscriptions: leaves or group nodes of the event tree.
    event_types text[] NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    secret text NOT NULL,
    -- During a rotation the old secret keeps signing until previous_secret_expires_at.
    previous_secret text,
    previous_secret_expires_at timestamptz,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    -- flexEngage: 409 when the brand already has this endpoint with the same event types.
    CONSTRAINT webhooks_brand_endpoint_event_types_key UNIQUE (brand_id, endpoint, event_types)
);

CREATE INDEX webhooks_brand_id_created_idx ON webhooks (brand_id, created, id);
-- Ingest matches with `event_types && ARRAY[type and its ancestors]`.
CREATE INDEX webhooks_event_types_idx ON webhooks USING gin (event_types);

CREATE TABLE events (
    -- UUIDv7: ids sort by creation time, so the event log pages by id.
    id uuid PRIMARY KEY,
    brand_id text NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    idempotency_key text
);

CREATE UNIQUE INDEX events_brand_id_idempotency_key_idx
    ON events (brand_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE deliveries (
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SUCCESS', 'FAILURE')),
    -- Why a delivery ended without a successful attempt (for example `webhook_disabled`).
    status_reason text,
    attempt_count integer NOT NULL DEFAULT 0,
    -- When the next attempt is due; NULL once the delivery is final.
    next_attempt_at timestamptz,
    -- Until when the delivery belongs to the message in the queue; after it the scheduler
    -- re-publishes it (broker down at publish time, worker killed mid-delivery).
    leased_until timestamptz,
    -- A manual retry of a final delivery: one more attempt, then final again.
    manual_retry boolean NOT NULL DEFAULT false,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (webhook_id, event_id)
);

-- The scheduler's scan: pending deliveries by due time.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX deliveries_event_id_idx ON deliveries (event_id);

CREATE TABLE attempts (
    id uuid PRIMARY KEY,
    webhook_id uuid NOT NULL,
    event_id uuid NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL CHECK (status IN ('SUCCESS', 'FAILURE')),
    request_endpoint text NOT NULL,
    request_headers jsonb NOT NULL,
    response_status_code integer,
    response_headers jsonb,
    -- Truncated to delivery.response_body_limit bytes by the worker.
    response_body text,
    response_time_ms integer NOT NULL,
    -- Transport failure (timeout, DNS, refused, TLS) when there was no response.
    error text,
    FOREIGN KEY (webhook_id, event_id) REFERENCES deliveries (webhook_id, event_id) ON DELETE CASCADE
);

CREATE INDEX attempts_delivery_idx ON attempts (webhook_id, event_id, created);
