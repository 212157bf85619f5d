-- Quota limits set through the API for one org or one user (Grafana's `quota` table);
-- `[quota]` applies to every target without a row. A limit goes with its owner.
CREATE TABLE quotas (
    org_id  bigint CONSTRAINT quotas_org_fk REFERENCES orgs (id) ON DELETE CASCADE,
    user_id bigint CONSTRAINT quotas_user_fk REFERENCES users (id) ON DELETE CASCADE,
    target  text NOT NULL,
    "limit" bigint NOT NULL,
    updated timestamptz NOT NULL,
    CONSTRAINT quotas_one_owner CHECK ((org_id IS NULL) <> (user_id IS NULL))
);
CREATE UNIQUE INDEX quotas_org_target ON quotas (org_id, target) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX quotas_user_target ON quotas (user_id, target) WHERE user_id IS NOT NULL;
