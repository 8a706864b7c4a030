-- The certifications holding a component, by PCI id, in the public list's
-- order: one row per (certification, PCI id) with the certification's
-- state and publication time copied, so `component=8086:1572` reads a
-- page's ids straight from one index (newest first) instead of walking the
-- list index and probing the components for each certification (about
-- 1,200 probes per page among 100,000 certifications on PostgreSQL).
-- Kept in the transactions that publish (insert_certification), revoke and
-- seed; the key leads with the certification, for revocation's UPDATE.
CREATE TABLE portal_component_list (
    certification_id TEXT NOT NULL REFERENCES portal_certifications (id),
    pci_id TEXT NOT NULL,
    state TEXT NOT NULL,
    published TEXT NOT NULL,
    PRIMARY KEY (certification_id, pci_id)
);
INSERT INTO portal_component_list (certification_id, pci_id, state, published)
SELECT DISTINCT pc.certification_id, pc.pci_id, c.state, c.published
FROM portal_components pc JOIN portal_certifications c ON c.id = pc.certification_id;
-- state last: the walk skips revoked rows from the index alone
CREATE INDEX portal_component_list_order
    ON portal_component_list (pci_id, published DESC, certification_id DESC, state);
