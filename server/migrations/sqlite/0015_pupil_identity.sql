-- Issue 17: two pupils with the same first name and initial in one class are two pupils.
-- `family_start` is the family name's first letters (at most 3), enough to tell such
-- classmates apart on the sign-in screen ("Amira Kh.") and no more; `mis_id` is the school
-- MIS's id from the roster file, kind first ("upn:A123...", "adno:1042"), how a re-import
-- recognises the same pupil. Both are unknown (NULL) for pupils imported before.
ALTER TABLE pupils ADD COLUMN family_start TEXT;
ALTER TABLE pupils ADD COLUMN mis_id TEXT;
CREATE UNIQUE INDEX pupils_by_mis_id ON pupils (mis_id) WHERE mis_id IS NOT NULL;
