-- Org deletion and org addresses.
--
-- users.org_id (the current org) no longer references orgs: deleting an org keeps its
-- users, and one left without any membership keeps pointing at the deleted org, as
-- Grafana's user.org_id does ("Org missing" until the user is added to an org or switches).
-- Users with another membership are moved to it by the delete, in its transaction.
ALTER TABLE users DROP CONSTRAINT users_org_fk;

-- An org's postal address (PUT /api/org/address); no row means all empty.
CREATE TABLE org_addresses (
    org_id   bigint PRIMARY KEY CONSTRAINT org_addresses_org_fk REFERENCES orgs (id) ON DELETE CASCADE,
    address1 text NOT NULL,
    address2 text NOT NULL,
    city     text NOT NULL,
    zip_code text NOT NULL,
    state    text NOT NULL,
    country  text NOT NULL
);
