-- The brand portal (crates/api/src/portal): one-time sign-in links and the sessions they open.
-- Only SHA-256 digests of the link tokens and session ids are stored, so whoever reads the
-- database (a backup, a replica) cannot sign in with them.
CREATE TABLE portal_links (
    token_hash bytea PRIMARY KEY,
    brand_id text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    -- Set when the link is opened: a link works once.
    used_at timestamptz
);
CREATE INDEX portal_links_expires_at ON portal_links (expires_at);

CREATE TABLE portal_sessions (
    id_hash bytea PRIMARY KEY,
    brand_id text NOT NULL,
    -- The synchroniser token every state-changing form of this session must carry.
    csrf text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    -- A session unused for `portal.idle_timeout` ends early.
    last_seen timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_sessions_expires_at ON portal_sessions (expires_at);
