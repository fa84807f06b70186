ALTER TABLE events DROP COLUMN tracestate, DROP COLUMN traceparent;
