-- The audit log (issue 21): one row per event, chained by hash (src/domain/audit.rs), and
-- the chain's state in a one-row table. Every append, with a change or alone, locks the
-- chain row (`SELECT ... FOR UPDATE`) inside its transaction, numbers and hashes the event
-- after the head, inserts it and moves the head: concurrent appends from any node wait for
-- each other's commit, so `seq` is 1, 2, 3, ... in commit order without gaps or forks.
-- `at` is the entry's milliseconds since the epoch as a bigint, not a timestamptz as the
-- other tables' times: the hash covers the exact i64, and an append (which commits or fails
-- with the change it records) must take any value, where timestamptz has a narrower range.

CREATE TABLE audit_events (
    seq                bigint PRIMARY KEY CHECK (seq > 0),
    at                 bigint NOT NULL,
    actor_user_id      bigint,
    actor_login        text NOT NULL,
    token_id           bigint,
    service_account_id bigint,
    auth_method        text NOT NULL,
    client             text NOT NULL,
    user_agent         text NOT NULL,
    request_id         text NOT NULL,
    method             text NOT NULL,
    route              text NOT NULL,
    action             text NOT NULL,
    target_kind        text NOT NULL,
    target_id          text NOT NULL,
    status             integer NOT NULL CHECK (status BETWEEN 0 AND 65535),
    fields             text[] NOT NULL,
    prev_hash          bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash               bytea NOT NULL CHECK (length(hash) = 32)
);
-- The listing's filters that narrow most (time ranges, one actor, one action or action
-- prefix), each with seq for the newest-first order and its cursor.
CREATE INDEX audit_events_at ON audit_events (at, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_user_id, seq);
CREATE INDEX audit_events_action ON audit_events (action text_pattern_ops, seq);

-- The anchor where verification starts (moved by pruning) and the head the next append
-- goes after; one row, seeded with the empty chain.
CREATE TABLE audit_chain (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    first_seq  bigint NOT NULL CHECK (first_seq > 0),
    first_prev bytea NOT NULL CHECK (length(first_prev) = 32),
    head_seq   bigint NOT NULL CHECK (head_seq >= 0),
    head_hash  bytea NOT NULL CHECK (length(head_hash) = 32)
);
INSERT INTO audit_chain (first_seq, first_prev, head_seq, head_hash)
    VALUES (1, decode(repeat('00', 32), 'hex'), 0, decode(repeat('00', 32), 'hex'));
