-- Numbered 1003: 1003-1009 are the portal's own tables' (see 1010), 1020 and
-- up the lab dashboard's.
-- The version of the public list: bumped in the transaction that publishes,
-- revokes or seeds certifications. The portal caches each filter's match
-- count under the version it was counted at (PortalStore::search), so an
-- answer's `total` needs no COUNT over 100,000 rows; every portal process
-- sharing the database sees a change at its next request.
CREATE TABLE portal_list_version (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO portal_list_version (id, version) VALUES (1, 0);
