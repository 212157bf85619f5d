-- What an audited write's answer waits on (src/store/pg_store/audit.rs, "The cost"): an
-- appending transaction that likely waits for the audit chain's row commits without
-- waiting for its WAL flush, which would keep every other audited write waiting on that
-- row, and its caller then commits one small synchronous update here on the same
-- connection, whose flush covers the earlier commit (the WAL is flushed in order). Those flushes are shared between concurrent writers. 64 rows,
-- one picked per update, so that the updates seldom wait on each other's row lock.

CREATE TABLE audit_flush (
    slot smallint PRIMARY KEY,
    n    bigint NOT NULL
);

INSERT INTO audit_flush (slot, n) SELECT s, 0 FROM generate_series(0, 63) AS s;
