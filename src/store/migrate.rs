//! Bringing a data directory of an older format up to this one, when it is
//! opened.
//!
//! A migration converts record by record, in batches, each batch atomic.
//! Every value starts with its record encoding byte ([`super::codec`]), so
//! a migration that was interrupted (a crash, `kill -9`) simply runs again
//! on the next open: records already converted are passed over. The format
//! number is raised last, in the final batch, then the directory is flushed
//! and fsynced before anything else happens.
//!
//! Format 2 -> 3: stored records get types of their own (`super::records`);
//! a transaction record keeps facts only (points, the seqs of its tier
//! changes), no longer the whole answer with its English summary; the
//! idempotency fingerprint becomes the explicit encoding of
//! `crate::domain::fingerprint`, recomputed from the request format 2 kept;
//! a purchase remembers points of it that lapsed.
//!
//! Format 3 -> 4: a day's totals gain what reports need (purchases before
//! returns, refunds on the day of the return, points earned, taken back,
//! redeemed and lapsed per day); other records only change their encoding
//! byte.
//!
//! Format 4 -> 5: a purchase's track gains its lines (none for purchases
//! recorded before: they were sums), and a receipt gains what a return
//! refunded and re-credited (0 for returns recorded before); a member's
//! tier gains whether it was warned before a demotion (not yet), and a
//! history entry the details of an AT_RISK event (none before). The
//! redemptions against orders are new records. Rules versions only change
//! their encoding byte.
//!
//! Format 5 -> 6: records are unchanged; two kinds of keys are new, each
//! member's due moment (`n/{member_id}`) and the due index the sweep reads
//! ([`super::keys::DUE`]). Every member got the unknown moment, so the
//! first sweep decides everyone, as every sweep did before.
//!
//! Format 6 -> 7: a member's due moment moves from its own key to the
//! start of the member's value ([`super::codec::encode_member`]); records
//! are unchanged. [`due_in_members`] does it, and gives a member stored
//! before format 6 the unknown moment.
//!
//! Format 7 -> 8: a receipt gains what its basket's lines need beyond
//! themselves (what line rules with a minimum paid, which lines did not
//! count toward the tier), under an encoding byte of its own
//! ([`super::codec::RECEIPT_ENCODING`]). Nothing is rewritten: a receipt
//! of formats 5 to 7 is read as it is (`super::receipt_from_bytes`), with
//! no minimums and every line counting, as its rules had them; only the
//! format number moves.
//!
//! Format 8 -> 9: a member's record gains its redemptions by reward (day
//! by day and all time) and the redeemed points returns gave back each
//! day, under encoding bytes of its own ([`super::codec::MEMBER_ENCODING`],
//! and [`super::codec::MEMBER_RECORD_ENCODING`] without the due moment).
//! Nothing is rewritten: a member of formats 5 to 8 is read as it is,
//! with no redemptions by reward, and written in today's record by its
//! next change; only the format number moves.
//!
//! Format 9 -> 10: members can be merged: aliases (`a/`, with their index
//! `b/`) are new keys, and history entries and receipts gain the MERGED
//! and merge kinds. Nothing is rewritten; only the format number moves.

mod v2;
mod v3;
mod v4;

use super::{
    FORMAT_VERSION, StoreError, codec, keys,
    records::{
        DayRecord, HistoryRecord, MemberRecord, PurchaseRecord, ReturnRecord, RulesVersionRecord,
    },
    writer::Disk,
};
use crate::domain::{
    decide::HistoryEntry,
    member::{DayTotals, MemberState},
};

/// Records converted per atomic batch.
const BATCH: usize = 5_000;

/// The first format whose records are encoded as today's (formats 6 and
/// 7 changed keys and the member value's head, not records).
const RECORDS_SETTLED: u32 = 5;

/// The first format that keeps each member's due moment in its value.
/// (Format 8 reads the receipts of formats 5 to 7 as they are: nothing of
/// theirs is rewritten.)
const DUE_IN_MEMBERS: u32 = 7;

/// The oldest format this build migrates.
const OLDEST: u32 = 2;

/// Whether this build can open (perhaps after migrating) `format`.
pub fn can_read(format: u32) -> bool {
    (OLDEST..=FORMAT_VERSION).contains(&format)
}

/// Brings `tree` to [`FORMAT_VERSION`]; a new, empty directory is stamped
/// with it.
///
/// # Errors
/// [`StoreError::FormatVersion`] for a format this build cannot read; a
/// storage failure or an undecodable old record (nothing is lost: the
/// batches done stay done, the rest waits for the next open).
pub(super) fn to_current(tree: &sled::Tree, disk: &mut Disk) -> Result<(), StoreError> {
    let found = match tree.get(keys::FORMAT)? {
        None => {
            tree.insert(keys::FORMAT, FORMAT_VERSION.to_be_bytes().to_vec())?;
            return Ok(());
        }
        Some(bytes) => <[u8; 4]>::try_from(bytes.as_ref()).map_or(0, u32::from_be_bytes),
    };
    if found == FORMAT_VERSION {
        return Ok(());
    }
    if !can_read(found) {
        return Err(StoreError::FormatVersion {
            found,
            supported: FORMAT_VERSION,
        });
    }
    tracing::info!(
        from = found,
        to = FORMAT_VERSION,
        "migrating the data directory"
    );
    // Only formats before the records' encoding settled need the walk over
    // every key.
    let converted = if found < RECORDS_SETTLED {
        convert_all(tree)?
    } else {
        0
    };
    if found < DUE_IN_MEMBERS {
        let moved = due_in_members(tree)?;
        tracing::info!(members = moved, "members given their due moment");
    }
    tree.insert(keys::FORMAT, FORMAT_VERSION.to_be_bytes().to_vec())?;
    disk.make_durable()?;
    tracing::info!(records = converted, "data directory migrated");
    Ok(())
}

/// Converts every record of an older format (2 to 4); returns how many.
fn convert_all(tree: &sled::Tree) -> Result<usize, StoreError> {
    let mut converted = 0;
    let mut from: Vec<u8> = Vec::new();
    loop {
        let mut batch = sled::Batch::default();
        let mut seen = 0;
        for item in tree.range(from.as_slice()..).take(BATCH) {
            let (key, value) = item?;
            seen += 1;
            from = [key.as_ref(), &[0]].concat();
            let converted_value = match value.first() {
                Some(&v2::RECORD_ENCODING) => convert_v2(&key, &value)?,
                Some(&v3::RECORD_ENCODING) => convert_v3(&key, &value)?,
                Some(&v4::RECORD_ENCODING) => convert_v4(&key, &value)?,
                _ => None,
            };
            if let Some(new) = converted_value {
                batch.insert(key, new);
                converted += 1;
            }
        }
        tree.apply_batch(batch)?;
        if seen < BATCH {
            return Ok(converted);
        }
    }
}

/// Where format 6 kept a member's due moment.
fn format_6_due_of(member_id: &[u8]) -> Vec<u8> {
    [b"n/".as_slice(), member_id].concat()
}

/// Puts each member's due moment at the start of its value (format 7):
/// the one format 6 kept under its own key (which goes), or for a member
/// stored without one the unknown moment (due at once under any rules: the
/// next sweep decides it and works out its moment), entered in the due
/// index. In atomic batches; returns how many members it changed. Values
/// that have their moment are passed over, so an interrupted run simply
/// runs again; records of older encodings are left to [`convert_all`].
/// Used by the migration and after a restore (a database's backup has no
/// due moments).
///
/// # Errors
/// On a storage failure, or a format-6 due moment that is not 16 bytes.
pub fn due_in_members(tree: &sled::Tree) -> Result<usize, StoreError> {
    let mut moved = 0;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for item in tree.scan_prefix(keys::MEMBERS) {
        let (key, value) = item?;
        if codec::split_member(&key, &value)?.due.is_some() {
            continue;
        }
        let pointer = format_6_due_of(&key[keys::MEMBERS.len()..]);
        let due = match tree.get(&pointer)? {
            Some(bytes) => keys::DueBytes::try_from(bytes.as_ref())
                .map_err(|_| StoreError::corrupt(&pointer, "a due moment is 16 bytes"))?,
            None => {
                let id = String::from_utf8_lossy(&key[keys::MEMBERS.len()..]);
                batch.insert(keys::due(&keys::DUE_UNKNOWN, &id), Vec::new());
                keys::DUE_UNKNOWN
            }
        };
        batch.insert(key.to_vec(), codec::with_due(&key, &value, &due)?);
        batch.remove(pointer);
        moved += 1;
        in_batch += 1;
        if in_batch == BATCH {
            tree.apply_batch(std::mem::take(&mut batch))?;
            in_batch = 0;
        }
    }
    tree.apply_batch(batch)?;
    Ok(moved)
}

/// Today's value for a format-2 record at `key`; `None` for keys whose
/// values did not change (meta, index).
fn convert_v2(key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let bytes = if key.starts_with(keys::MEMBERS) {
        let member: v2::Member = codec::decode_as(v2::RECORD_ENCODING, key, value)?;
        codec::encode_member_record(&MemberRecord::from(&MemberState::from(member)))
    } else if key.starts_with(keys::RECEIPTS) {
        let txn: v2::Txn = codec::decode_as(v2::RECORD_ENCODING, key, value)?;
        let receipt = txn
            .into_receipt()
            .map_err(|err| StoreError::corrupt(key, err.to_string()))?;
        super::receipt_to_bytes(&receipt)
    } else if key.starts_with(keys::HISTORY) {
        let entry: v2::History = codec::decode_as(v2::RECORD_ENCODING, key, value)?;
        codec::encode(&HistoryRecord::from(&HistoryEntry::from(entry)))
    } else if key.starts_with(keys::RULES) {
        let version: v2::Rules = codec::decode_as(v2::RECORD_ENCODING, key, value)?;
        codec::encode(&RulesVersionRecord::from(
            &crate::rules::RulesVersion::from(version),
        ))
    } else {
        return Ok(None);
    };
    Ok(Some(bytes))
}

/// Today's value for a format-3 record at `key`; `None` for keys whose
/// values are not records (meta, index).
fn convert_v3(key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    if key.starts_with(keys::MEMBERS) {
        let member: MemberRecord<v3::Day, (), ()> =
            codec::decode_as(v3::RECORD_ENCODING, key, value)?;
        let member = member.upgrade(|day| DayRecord::from(&DayTotals::from(day)));
        return Ok(Some(codec::encode_member_record(&member)));
    }
    convert_unchanged_since_3(v3::RECORD_ENCODING, key, value)
}

/// Today's value for a format-4 record at `key`; `None` for keys whose
/// values are not records (meta, index).
fn convert_v4(key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    if key.starts_with(keys::MEMBERS) {
        let member: MemberRecord<DayRecord, (), ()> =
            codec::decode_as(v4::RECORD_ENCODING, key, value)?;
        return Ok(Some(codec::encode_member_record(
            &member.upgrade(|day| day),
        )));
    }
    convert_unchanged_since_3(v4::RECORD_ENCODING, key, value)
}

/// Today's value for a receipt, history entry or rules version, which
/// formats 3 and 4 wrote alike (with `encoding`); `None` for other keys.
fn convert_unchanged_since_3(
    encoding: u8,
    key: &[u8],
    value: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let bytes = if key.starts_with(keys::RECEIPTS) {
        let old: v4::Receipt = codec::decode_as(encoding, key, value)?;
        let receipt = old.upgrade(PurchaseRecord::from, ReturnRecord::default());
        codec::encode_as(codec::RECEIPT_ENCODING, &receipt)
    } else if key.starts_with(keys::HISTORY) {
        let old: HistoryRecord<()> = codec::decode_as(encoding, key, value)?;
        codec::encode(&old.upgrade())
    } else if key.starts_with(keys::RULES) {
        return Ok(relabel(value));
    } else {
        return Ok(None);
    };
    Ok(Some(bytes))
}

/// The same record body under today's encoding byte.
fn relabel(value: &[u8]) -> Option<Vec<u8>> {
    value
        .get(1..)
        .map(|body| [&[codec::RECORD_ENCODING], body].concat())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::open_db;

    /// A copy of the format-2 fixture in a temporary directory.
    fn fixture_copy() -> tempfile::TempDir {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-format-2");
        for name in ["conf", "db"] {
            std::fs::copy(fixture.join(name), dir.path().join(name)).expect("copy");
        }
        dir
    }

    #[test]
    fn a_migration_interrupted_anywhere_completes_on_the_next_open() {
        let dir = fixture_copy();
        let db = open_db(dir.path()).expect("sled");
        let tree = db.open_tree("tierd").expect("tree");
        // Convert some records only, as a crash between batches would leave
        // them, with the format still 2.
        let some: Vec<_> = tree
            .scan_prefix(keys::MEMBERS)
            .take(2)
            .map(|item| item.expect("read"))
            .collect();
        for (key, value) in some {
            let new = convert_v2(&key, &value)
                .expect("converts")
                .expect("a record");
            tree.insert(key, new).expect("insert");
        }
        let store = crate::store::SledStore::with_db(db, dir.path()).expect("the rest is migrated");
        for id in ["ana", "bo", "cy", "dee"] {
            assert!(store.member(id).expect("readable").is_some(), "{id}");
        }
        assert!(store.receipt("p1").expect("readable").is_some());
        assert_eq!(
            store.rules_versions_after(0, 10).expect("readable").len(),
            1
        );
    }

    /// Moving the due moments into the members' values resumes where it
    /// stopped: a member moved before the interruption is passed over, a
    /// format-6 moment comes along (its key goes), a member without one
    /// gets the unknown moment and its entry in the index.
    #[test]
    fn moving_due_moments_interrupted_completes_and_keeps_what_it_did() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open_db(dir.path()).expect("sled");
        let tree = db.open_tree("tierd").expect("tree");
        let old_value = |body: &[u8]| [&[codec::RECORD_ENCODING], body].concat();
        let earlier = keys::due_bytes(7, Some(1_000));
        let done = keys::due_bytes(8, None);
        tree.insert(
            keys::member("a"),
            codec::with_due(b"m/a", &old_value(b"A"), &done).expect("a value"),
        )
        .expect("insert");
        tree.insert(keys::due(&done, "a"), Vec::new())
            .expect("insert");
        tree.insert(keys::member("b"), old_value(b"B"))
            .expect("insert");
        tree.insert(format_6_due_of(b"b"), earlier.to_vec())
            .expect("insert");
        tree.insert(keys::due(&earlier, "b"), Vec::new())
            .expect("insert");
        tree.insert(keys::member("c"), old_value(b"C"))
            .expect("insert");
        assert_eq!(due_in_members(&tree).expect("moved"), 2);
        assert_eq!(due_in_members(&tree).expect("moved again"), 0);
        let value = |id| {
            tree.get(keys::member(id))
                .expect("read")
                .expect("a member")
                .to_vec()
        };
        assert_eq!(
            value("a"),
            [&[codec::MEMBER_ENCODING_V8], done.as_slice(), b"A"].concat()
        );
        assert_eq!(
            value("b"),
            [&[codec::MEMBER_ENCODING_V8], earlier.as_slice(), b"B"].concat()
        );
        assert_eq!(
            value("c"),
            [
                &[codec::MEMBER_ENCODING_V8],
                keys::DUE_UNKNOWN.as_slice(),
                b"C"
            ]
            .concat()
        );
        assert!(
            !tree.contains_key(format_6_due_of(b"b")).expect("read"),
            "format 6's key goes"
        );
        let entries: Vec<Vec<u8>> = tree
            .scan_prefix(keys::DUE)
            .keys()
            .map(|key| key.expect("read").to_vec())
            .collect();
        assert_eq!(
            entries,
            [
                keys::due(&keys::DUE_UNKNOWN, "c"),
                keys::due(&earlier, "b"),
                keys::due(&done, "a"),
            ],
            "one entry per member"
        );
    }

    /// A member as format 3 wrote it (`records::tests::member()`, from the
    /// golden bytes of commit ac4a1a8).
    const MEMBER_FORMAT_3: &str = "0203616e6180a0be88f1fca5060106726567696f6e056e6f7274680673696c76657280a0be88f1fca5060180a0f9e5f481a6060104676f6c64000180a09ff8b7dca6060376697002b8a55ac0a90702b0090000baa55a00006402010672657669657702c0a9070202703180a0be88f1fca5060180a0ddc9c2a8b406b00902763180a0f9e5f481a606006406080a";

    use crate::store::records::tests::from_hex as bytes;

    #[test]
    fn a_format_3_member_reads_its_days_as_net_spend_without_point_movements() {
        let new = convert_v3(b"m/ana", &bytes(MEMBER_FORMAT_3))
            .expect("converts")
            .expect("a record");
        let migrated = crate::store::member_from_bytes(b"m/ana", &new).expect("today's record");
        let mut expected = crate::store::records::tests::member();
        for day in expected.days.values_mut() {
            *day = DayTotals {
                purchased_minor: day.spend_minor,
                spend_minor: day.spend_minor,
                purchases: day.purchases,
                qualifying_points: day.qualifying_points,
                activities: day.activities,
                activity_kinds: std::mem::take(&mut day.activity_kinds),
                ..DayTotals::default()
            };
        }
        assert_eq!(migrated, expected);
    }

    #[test]
    fn format_3_history_reads_as_before_and_rules_versions_only_change_their_byte() {
        // A promotion as formats 3 and 4 wrote it (golden bytes of 9f3d67f,
        // encoding byte 2).
        let history = bytes(
            "020903616e610662726f6e7a650673696c7665720180a0be88f1fca506097175616c696669656406323032362e31",
        );
        let new = convert_v3(b"h/\0\0\0\0\0\0\0\x09", &history)
            .expect("converts")
            .expect("a record");
        let record: HistoryRecord = codec::decode(b"h/9", &new).expect("today's record");
        let entry = HistoryEntry::try_from(record).expect("valid times");
        assert_eq!(
            (entry.seq, entry.change.kind, entry.change.to_tier.as_str()),
            (9, crate::domain::decide::ChangeKind::Promotion, "silver")
        );
        assert_eq!(entry.change.at_risk, None);
        let rules = [&[v3::RECORD_ENCODING], b"body".as_slice()].concat();
        assert_eq!(
            convert_v3(b"r/\0\0\0\0\0\0\0\0", &rules).expect("converts"),
            Some([&[codec::RECORD_ENCODING], b"body".as_slice()].concat())
        );
        assert_eq!(
            convert_v3(keys::NEXT_SEQ, &[2, 0, 0, 0]).expect("skipped"),
            None
        );
    }

    /// A purchase's receipt and a member as format 4 wrote them
    /// (`records::tests`, golden bytes of commit 9f3d67f).
    const RECEIPT_FORMAT_4: &str = "030003616e6107070707070707070707070707070707070707070707070707070707070707070674696c6c2d31b0090002010201c0a907b00980a0be88f1fca50602040608";
    const MEMBER_FORMAT_4: &str = "0303616e6180a0be88f1fca5060106726567696f6e056e6f7274680673696c76657280a0be88f1fca5060180a0f9e5f481a6060104676f6c64000180a09ff8b7dca6060376697002b8a55ac0a90702b0090000c0a90700b009000000baa55a00006402010672657669657702000064000000c0a9070202703180a0be88f1fca5060180a0ddc9c2a8b406b00902763180a0f9e5f481a606006406080a";

    #[test]
    fn a_format_4_purchase_reads_as_a_sum_without_lines_and_its_member_as_before() {
        let new = convert_v4(b"t/p1", &bytes(RECEIPT_FORMAT_4))
            .expect("converts")
            .expect("a record");
        let receipt = crate::store::receipt_from_bytes(b"t/p1", &new).expect("today's record");
        let track = receipt.purchase.expect("a purchase");
        assert_eq!(
            (track.amount_minor, track.points, track.returned_minor),
            (60_000, 600, 1)
        );
        assert_eq!(
            (
                track.points_reversed,
                track.redeemable_reversed,
                track.points_lapsed
            ),
            (2, 3, 4)
        );
        assert!(track.lines.is_empty());
        assert_eq!((receipt.refunded_minor, receipt.points_recredited), (0, 0));
        assert_eq!((receipt.points, receipt.tier_changes), (600, vec![1, 2]));

        let new = convert_v4(b"m/ana", &bytes(MEMBER_FORMAT_4))
            .expect("converts")
            .expect("a record");
        let member = crate::store::member_from_bytes(b"m/ana", &new).expect("today's record");
        assert_eq!(member, crate::store::records::tests::member());
    }

    #[test]
    fn older_and_newer_formats_are_told_apart() {
        assert!(can_read(2) && can_read(3) && can_read(4) && can_read(FORMAT_VERSION));
        assert!(!can_read(1) && !can_read(FORMAT_VERSION + 1));
    }
}
