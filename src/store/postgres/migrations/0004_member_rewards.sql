-- Data format 9: a member's record ends with its redemptions by reward
-- (day by day and all time, for the rewards' limits and the liability
-- report) and the redeemed points returns gave back each day
-- (src/store/records.rs, RewardsRecord), under its own encoding byte (8).
-- Members written before keep theirs (4) and are read as they are, with
-- no redemptions by reward, so no row is rewritten here; the format moves
-- on so that an older tierd, which could not read the new members,
-- refuses the database instead of misreading it.
UPDATE tierd_meta SET value = 9 WHERE name = 'record_format';
