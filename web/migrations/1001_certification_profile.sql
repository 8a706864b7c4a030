-- The hardware profile of a certification as results.json gives it
-- (reports' HardwareSummary: CPU core, sockets, cores, threads, memory,
-- accelerators, every PCI function), for its page and API answer.
ALTER TABLE portal_certifications ADD COLUMN profile_json TEXT;
