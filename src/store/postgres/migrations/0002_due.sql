-- Data format 6: when the periodic sweep must next decide each member
-- (src/domain/due.rs), so that it reads only those members. due_rules is
-- the rules id the moment was worked out under, due_at the moment in
-- microseconds since 1970 (the largest INT8: never). A member without
-- them (every member stored before this migration) is due at once under
-- any rules: the first sweep decides it and fills them in.
ALTER TABLE tierd_members ADD COLUMN due_rules INT8, ADD COLUMN due_at INT8;
CREATE INDEX tierd_members_due ON tierd_members (due_rules, due_at);
UPDATE tierd_meta SET value = 6 WHERE name = 'record_format';
