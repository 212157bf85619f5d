-- Per-node caches follow changes through LISTEN/NOTIFY on channel `tollgate_changes`
-- (sent inside the writing transaction) and, as a safety net, by polling these counters.
CREATE TABLE change_epochs (
    topic text PRIMARY KEY,
    epoch bigint NOT NULL DEFAULT 0
);
INSERT INTO change_epochs (topic) VALUES ('roles'), ('settings'), ('data_keys'), ('license'), ('ldap');
