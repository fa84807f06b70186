// @generated automatically by Diesel CLI.

diesel::table! {
    attempts (id) {
        id -> Uuid,
        webhook_id -> Uuid,
        event_id -> Uuid,
        created -> Timestamptz,
        status -> Text,
        request_endpoint -> Text,
        request_headers -> Jsonb,
        response_status_code -> Nullable<Int4>,
        response_headers -> Nullable<Jsonb>,
        response_body -> Nullable<Text>,
        response_time_ms -> Int4,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    deliveries (webhook_id, event_id) {
        webhook_id -> Uuid,
        event_id -> Uuid,
        status -> Text,
        status_reason -> Nullable<Text>,
        attempt_count -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        leased_until -> Nullable<Timestamptz>,
        manual_retry -> Bool,
        created -> Timestamptz,
        updated -> Timestamptz,
        attempting -> Bool,
        lost_count -> Int4,
    }
}

diesel::table! {
    events (id) {
        id -> Uuid,
        brand_id -> Text,
        event_type -> Text,
        payload -> Jsonb,
        created -> Timestamptz,
        idempotency_key -> Nullable<Text>,
        erased -> Nullable<Timestamptz>,
        traceparent -> Nullable<Text>,
        tracestate -> Nullable<Text>,
    }
}

diesel::table! {
    recoveries (id) {
        id -> Uuid,
        brand_id -> Text,
        webhook_id -> Nullable<Uuid>,
        webhook_ids -> Array<Nullable<Uuid>>,
        since -> Timestamptz,
        until -> Timestamptz,
        statuses -> Array<Nullable<Text>>,
        event_types -> Nullable<Array<Nullable<Text>>>,
        state -> Text,
        matched -> Int8,
        requeued -> Int8,
        skipped -> Int8,
        error -> Nullable<Text>,
        owner -> Nullable<Text>,
        leased_until -> Nullable<Timestamptz>,
        created -> Timestamptz,
        updated -> Timestamptz,
        finished -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    recovery_items (recovery_id, webhook_id, event_id) {
        recovery_id -> Uuid,
        webhook_id -> Uuid,
        event_id -> Uuid,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        brand_id -> Text,
        endpoint -> Text,
        event_types -> Array<Text>,
        enabled -> Bool,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        created -> Timestamptz,
        updated -> Timestamptz,
        health -> Text,
        health_reason -> Nullable<Text>,
        health_changed -> Nullable<Timestamptz>,
        consecutive_failures -> Int4,
        failing_since -> Nullable<Timestamptz>,
        last_success_at -> Nullable<Timestamptz>,
        last_failure_at -> Nullable<Timestamptz>,
        probe_interval_ms -> Nullable<Int8>,
        next_probe_at -> Nullable<Timestamptz>,
        probe_event_id -> Nullable<Uuid>,
        release_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(deliveries -> events (event_id));
diesel::joinable!(deliveries -> webhooks (webhook_id));
diesel::joinable!(recovery_items -> recoveries (recovery_id));

diesel::allow_tables_to_appear_in_same_query!(
    attempts,
    deliveries,
    events,
    recoveries,
    recovery_items,
    webhooks,
);
