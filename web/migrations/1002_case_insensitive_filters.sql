-- The list's filters ignore case (`os=openeuler` finds openEuler): indexes
-- on the lowercased columns, as the queries compare them.
CREATE INDEX portal_certifications_vendor_ci ON portal_certifications (LOWER(vendor));
CREATE INDEX portal_certifications_family_ci ON portal_certifications (LOWER(cpu_family));
CREATE INDEX portal_certifications_arch_ci ON portal_certifications (LOWER(arch));
CREATE INDEX portal_certifications_os_ci ON portal_certifications (LOWER(os_id), LOWER(os_version));
