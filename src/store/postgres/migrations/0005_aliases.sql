-- Data format 10: members merged into another (MergeMembers), and
-- erasures (EraseMember, at the end). A merged
-- member's row leaves tierd_members; its id stays here as an alias, so
-- that events naming it land on the member it went into (into_id, kept
-- pointing at a member that exists: when that one is merged in turn, its
-- aliases follow it). record is the alias as the sled engine keeps it
-- under a/{member_id} (src/store/records.rs, AliasRecord). History
-- entries and receipts gain the MERGED and merge kinds, which an older
-- tierd could not read: the format moves on so that it refuses the
-- database instead of misreading it.
CREATE TABLE tierd_aliases (
    member_id TEXT COLLATE "C" PRIMARY KEY,
    into_id TEXT COLLATE "C" NOT NULL,
    record BYTEA NOT NULL
);
CREATE INDEX tierd_aliases_into ON tierd_aliases (into_id);
UPDATE tierd_meta SET value = 10 WHERE name = 'record_format';

-- Erasures (EraseMember): the record of each, under the pseudonym that
-- replaced the member's ids (src/store/records.rs, ErasureRecord). It
-- holds when, who and why, nothing of what was erased.
CREATE TABLE tierd_erasures (
    pseudonym TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);
