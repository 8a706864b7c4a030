-- The portal's tables. Numbered from 1000: the lab store's migrations
-- (harness/migrations) share this database and its _sqlx_migrations table.
-- Portable SQL as in the lab store: TEXT ids made by the application, BIGINT
-- integers, TEXT timestamps in fixed-width RFC 3339 UTC.

CREATE TABLE portal_orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);

CREATE TABLE portal_users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL REFERENCES portal_orgs (id),
    role TEXT NOT NULL CHECK (role IN ('vendor', 'reviewer', 'admin')),
    password_hash TEXT,
    created TEXT NOT NULL
);

-- API tokens: only the sha256 of the token is kept.
CREATE TABLE portal_tokens (
    token_sha256 TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES portal_users (id),
    created TEXT NOT NULL
);

-- Browser sessions: the sha256 of the cookie's value, and the CSRF token of its forms.
CREATE TABLE portal_sessions (
    session_sha256 TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES portal_users (id),
    csrf TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL
);

-- An organisation's ed25519 bundle signing keys; a key belongs to one organisation.
CREATE TABLE portal_keys (
    key_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES portal_orgs (id),
    public_key TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);

CREATE TABLE portal_submissions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES portal_orgs (id),
    submitter_id TEXT NOT NULL REFERENCES portal_users (id),
    bundle_sha256 TEXT NOT NULL UNIQUE,
    bundle_size BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    report_sha256 TEXT NOT NULL,
    results_json TEXT NOT NULL,
    state TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX portal_submissions_org ON portal_submissions (org_id, created);
CREATE INDEX portal_submissions_state ON portal_submissions (state);

-- Every state change of a submission or a certification, in order: the
-- review comments, and the entries a transparency log will be built from.
CREATE TABLE portal_changes (
    seq BIGINT PRIMARY KEY,
    subject TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    comment TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX portal_changes_subject ON portal_changes (subject_id, seq);

CREATE TABLE portal_certifications (
    id TEXT PRIMARY KEY,
    submission_id TEXT NOT NULL UNIQUE REFERENCES portal_submissions (id),
    org_id TEXT NOT NULL REFERENCES portal_orgs (id),
    state TEXT NOT NULL,
    vendor TEXT NOT NULL,
    product TEXT NOT NULL,
    firmware TEXT NOT NULL,
    cpu_family TEXT NOT NULL,
    cpu_vendor TEXT NOT NULL,
    cpu_model TEXT NOT NULL,
    arch TEXT NOT NULL,
    os_id TEXT NOT NULL,
    os_version TEXT NOT NULL,
    os_name TEXT NOT NULL,
    kernel TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    plan_version TEXT NOT NULL,
    outcome TEXT NOT NULL,
    search_text TEXT NOT NULL,
    published TEXT NOT NULL,
    revoked TEXT
);
CREATE INDEX portal_certifications_vendor ON portal_certifications (vendor);
CREATE INDEX portal_certifications_family ON portal_certifications (cpu_family);
CREATE INDEX portal_certifications_arch ON portal_certifications (arch);
CREATE INDEX portal_certifications_os ON portal_certifications (os_id, os_version);
CREATE INDEX portal_certifications_published ON portal_certifications (state, published);

CREATE TABLE portal_components (
    certification_id TEXT NOT NULL REFERENCES portal_certifications (id),
    seq BIGINT NOT NULL,
    pci_id TEXT NOT NULL,
    class TEXT NOT NULL,
    name TEXT NOT NULL,
    driver TEXT NOT NULL,
    PRIMARY KEY (certification_id, seq)
);
CREATE INDEX portal_components_pci ON portal_components (pci_id);
