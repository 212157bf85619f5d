-- The activity series behind the admin UI's charts: successful and failed password
-- sign-ins and distinct active users per UTC hour and per UTC day. Counters move by
-- `INSERT ... ON CONFLICT DO UPDATE SET n = n + ...`, never by writing back a value read
-- earlier; an active user is counted in the statement that moves its `last_seen_at`
-- (see `touch_last_seen`). The stats job deletes hours after 48 hours, days after 62.
CREATE TABLE activity_series (
    span            text NOT NULL CONSTRAINT activity_series_span CHECK (span IN ('hour', 'day')),
    start           timestamptz NOT NULL,
    sign_ins        bigint NOT NULL DEFAULT 0,
    failed_sign_ins bigint NOT NULL DEFAULT 0,
    active_users    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (span, start)
);
