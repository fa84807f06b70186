-- W3C trace context of each event (crates/telemetry/src/trace.rs): the context of the
-- ingest span that stored it (the publisher's trace id), continued by every attempt, whether
-- it comes from the queue, a retry, a deferral or a parked release. NULL for events stored
-- before this column, and for Hookline's own operational events.
ALTER TABLE events ADD COLUMN traceparent text, ADD COLUMN tracestate text;
