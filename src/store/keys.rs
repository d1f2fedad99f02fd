//! Key encoding: one sled tree, a prefix per kind of record (see the
//! layout table in the module comment of [`super`]).
//!
//! Ids are UTF-8, which never contains the byte 0xFF, so the history index
//! key `i/{member_id} 0xFF {seq}` and the order key
//! `o/{member_id} 0xFF {order_id}` are unambiguous and sorts a member's
//! entries by seq. Numbers are big-endian so that keys sort numerically.

/// The data format version.
pub const FORMAT: &[u8] = b"meta/format";
/// The next history seq.
pub const NEXT_SEQ: &[u8] = b"meta/next_seq";
/// Prefix of member records.
pub const MEMBERS: &[u8] = b"m/";
/// Prefix of receipts.
pub const RECEIPTS: &[u8] = b"t/";
/// Prefix of history entries.
pub const HISTORY: &[u8] = b"h/";
/// Prefix of rules versions.
pub const RULES: &[u8] = b"r/";
/// Prefix of the redemptions against orders.
pub const ORDERS: &[u8] = b"o/";
/// Prefix of webhook delivery positions.
pub const DELIVERIES: &[u8] = b"w/";

/// The delivery position of the webhook endpoint `name`.
pub fn delivery(name: &str) -> Vec<u8> {
    [DELIVERIES, name.as_bytes()].concat()
}

/// A member's record.
pub fn member(member_id: &str) -> Vec<u8> {
    [MEMBERS, member_id.as_bytes()].concat()
}

/// A transaction id's receipt.
pub fn receipt(transaction_id: &str) -> Vec<u8> {
    [RECEIPTS, transaction_id.as_bytes()].concat()
}

/// A history entry.
pub fn history(seq: u64) -> Vec<u8> {
    [HISTORY, &seq.to_be_bytes()].concat()
}

/// The start of a member's history index.
pub fn index_prefix(member_id: &str) -> Vec<u8> {
    [b"i/", member_id.as_bytes(), &[0xFF]].concat()
}

/// A member's index entry for `seq`.
pub fn index(member_id: &str, seq: u64) -> Vec<u8> {
    [index_prefix(member_id).as_slice(), &seq.to_be_bytes()].concat()
}

/// The redemptions of `member_id` against the order `order_id`.
pub fn order(member_id: &str, order_id: &str) -> Vec<u8> {
    [ORDERS, member_id.as_bytes(), &[0xFF], order_id.as_bytes()].concat()
}

/// The `n`th rules version that went live.
pub fn rules_version(n: u64) -> Vec<u8> {
    [RULES, &n.to_be_bytes()].concat()
}

/// A big-endian number after `prefix` in `key`, if that is what the key is.
pub fn number_after(prefix: &[u8], key: &[u8]) -> Option<u64> {
    key.strip_prefix(prefix)
        .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
        .map(u64::from_be_bytes)
}
