-- Per-node caches of hot rows (users with their memberships, sessions, API keys and
-- tokens) and of the stats' counts follow every change through this log, written by
-- triggers inside the writing transaction: whatever writes a row, through whichever code
-- path or node, the change and its log row commit together. Nodes read the log after a
-- wake-up NOTIFY on channel `tollgate_rows` (sent by the writing node right after its
-- commit) and at least every half second, from the oldest transaction that was still
-- running at their previous read (`xid`), so a transaction that commits late is never
-- skipped. Kinds: `u` user id, `s` session id, `k` key id (`row_id`), `c` a counted table
-- changed, `*` a row table was truncated.
--
-- Why a log and not NOTIFY inside the transaction: PostgreSQL serialises the commits of
-- notifying transactions (a database-wide lock held through the WAL flush), which costs
-- every user write its group commit; a log row costs one insert.

CREATE TABLE row_changes (
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL,
    row_id bigint
);
CREATE INDEX row_changes_xid ON row_changes (xid);
CREATE INDEX row_changes_at ON row_changes (at);

CREATE FUNCTION tollgate_row_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO row_changes (kind, row_id)
            VALUES (TG_ARGV[0], (to_jsonb(OLD) ->> TG_ARGV[1])::bigint);
    ELSE
        INSERT INTO row_changes (kind, row_id)
            VALUES (TG_ARGV[0], (to_jsonb(NEW) ->> TG_ARGV[1])::bigint);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION tollgate_table_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO row_changes (kind) VALUES (TG_ARGV[0]);
    RETURN NULL;
END $$;

CREATE TRIGGER users_change AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION tollgate_row_change('u', 'id');
CREATE TRIGGER org_members_change AFTER INSERT OR UPDATE OR DELETE ON org_members
    FOR EACH ROW EXECUTE FUNCTION tollgate_row_change('u', 'user_id');
CREATE TRIGGER sessions_change AFTER INSERT OR UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION tollgate_row_change('s', 'id');
CREATE TRIGGER api_keys_change AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tollgate_row_change('k', 'id');

CREATE TRIGGER orgs_count_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_change('c');
CREATE TRIGGER datasources_count_change AFTER INSERT OR DELETE OR TRUNCATE ON datasources
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_change('c');
CREATE TRIGGER dashboards_count_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dashboards
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_change('c');
CREATE TRIGGER folders_count_change AFTER INSERT OR DELETE OR TRUNCATE ON folders
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_change('c');
CREATE TRIGGER alerts_count_change AFTER INSERT OR DELETE OR TRUNCATE ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_change('c');
-- TRUNCATE fires no row triggers: the row tables log it as "everything".
CREATE TRIGGER users_truncate_change AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_change('*');
CREATE TRIGGER org_members_truncate_change AFTER TRUNCATE ON org_members
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_change('*');
CREATE TRIGGER sessions_truncate_change AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_change('*');
CREATE TRIGGER api_keys_truncate_change AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_change('*');
