-- Per-node caches of hot rows (users with their memberships, sessions, API keys and
-- tokens) and of the stats' counts follow every change through notices on channel
-- `tollgate_rows`, sent by these triggers inside the writing transaction: whatever writes a
-- row, through whichever code path or node, every listening node hears of it right after
-- the commit, in commit order. Payloads: `u<user id>`, `s<session id>`, `k<key id>`, and
-- `c` when a counted table changed, `*` when a row table was truncated. (Nodes also send `p<nonce>` heartbeats on the channel.)

CREATE FUNCTION tollgate_row_notice() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_id text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_id := to_jsonb(OLD) ->> TG_ARGV[1];
    ELSE
        row_id := to_jsonb(NEW) ->> TG_ARGV[1];
    END IF;
    PERFORM pg_notify('tollgate_rows', TG_ARGV[0] || row_id);
    RETURN NULL;
END $$;

CREATE FUNCTION tollgate_table_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tollgate_rows', TG_ARGV[0]);
    RETURN NULL;
END $$;

CREATE TRIGGER users_notice AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION tollgate_row_notice('u', 'id');
CREATE TRIGGER org_members_notice AFTER INSERT OR UPDATE OR DELETE ON org_members
    FOR EACH ROW EXECUTE FUNCTION tollgate_row_notice('u', 'user_id');
CREATE TRIGGER sessions_notice AFTER INSERT OR UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION tollgate_row_notice('s', 'id');
CREATE TRIGGER api_keys_notice AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tollgate_row_notice('k', 'id');

CREATE TRIGGER orgs_count_notice AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_notice('c');
CREATE TRIGGER datasources_count_notice AFTER INSERT OR DELETE OR TRUNCATE ON datasources
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_notice('c');
CREATE TRIGGER dashboards_count_notice AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dashboards
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_notice('c');
CREATE TRIGGER folders_count_notice AFTER INSERT OR DELETE OR TRUNCATE ON folders
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_notice('c');
CREATE TRIGGER alerts_count_notice AFTER INSERT OR DELETE OR TRUNCATE ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_notice('c');
-- TRUNCATE fires no row triggers: the row tables announce it as "everything".
CREATE TRIGGER users_truncate_notice AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_notice('*');
CREATE TRIGGER org_members_truncate_notice AFTER TRUNCATE ON org_members
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_notice('*');
CREATE TRIGGER sessions_truncate_notice AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_notice('*');
CREATE TRIGGER api_keys_truncate_notice AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_table_notice('*');
