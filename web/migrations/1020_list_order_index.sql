-- The public list's order (newest first, id as tie-break) straight from an
-- index: the first page of 100,000 certifications without sorting them all.
CREATE INDEX portal_certifications_list ON portal_certifications (state, published DESC, id DESC);
