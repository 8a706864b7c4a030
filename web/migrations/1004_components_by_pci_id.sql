-- Certifications holding a component, by PCI id, from the index alone: the
-- certification id is in the index, so `component=8086:1572` reads no
-- component rows (about 1,400 table lookups per request among 100,000
-- certifications before). It replaces the index on pci_id alone, which is
-- its prefix.
CREATE INDEX portal_components_pci_cert ON portal_components (pci_id, certification_id);
DROP INDEX portal_components_pci;
