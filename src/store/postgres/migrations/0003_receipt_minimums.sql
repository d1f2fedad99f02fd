-- Data format 8: a purchase's receipt also keeps what line rules with a
-- minimum paid its lines and which lines did not count toward the tier
-- (src/store/records.rs, BasketRecord), under its own encoding byte (6). Receipts written before keep theirs (4) and are
-- read as they are, so no row is rewritten here; the format moves on so
-- that an older tierd, which could not read the new receipts, refuses the
-- database instead of misreading it.
UPDATE tierd_meta SET value = 8 WHERE name = 'record_format';
