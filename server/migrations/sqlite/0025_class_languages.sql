-- The language of the pupils' screens set on the languages page (issue 17): each class whose
-- language differs from the school's, by class name (classes are named uniquely, and devices
-- get languages by class name). The school's own is the `school_language` setting; until it is
-- first saved, the server's config `[languages]` is in force.
CREATE TABLE class_languages (
    class_name TEXT NOT NULL PRIMARY KEY CHECK (class_name <> ''),
    language   TEXT NOT NULL CHECK (length(language) BETWEEN 2 AND 3)
) STRICT;
