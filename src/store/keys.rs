//! Key encoding: one sled tree, a prefix per kind of record.
//!
//! | key | value |
//! |---|---|
//! | `meta/format`, `meta/next_seq` | the data format; the next history seq |
//! | `m/{member_id}` | the member's due moment, then its record (format 7) |
//! | `t/{transaction_id}` | a request's receipt (idempotency, returns) |
//! | `h/{seq}` | a history entry (the tier-change stream reads these in order) |
//! | `i/{member_id} 0xFF {seq}` | empty: a member's history, by seq |
//! | `o/{member_id} 0xFF {order_id}` | the redemptions against an order |
//! | `r/{n}` | the `n`th rules version that went live |
//! | `w/{endpoint}` | a webhook endpoint's delivery position |
//! | `d/{due}{member_id}` | empty: the due index the sweep reads (format 6) |
//! | `a/{member_id}` | a member id merged into another: its alias (format 10) |
//! | `b/{into} 0xFF {member_id}` | empty: the aliases of a member, by id (format 10) |
//! | `e/{pseudonym}` | the record of an erasure (format 10) |
//!
//! Format 6 kept each member's due moment under a key of its own,
//! `n/{member_id}`; format 7 keeps it at the start of the member's value
//! ([`super::codec::encode_member`]), so that moving it writes no key more.
//!
//! Ids are UTF-8, which never contains the byte 0xFF, so keys that join an
//! id and what follows it with 0xFF are unambiguous and sort a member's
//! entries in order. Numbers are big-endian so that keys sort numerically.

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
/// Prefix of aliases (member ids merged into another).
pub const ALIASES: &[u8] = b"a/";
/// Prefix of the aliases by the member they lead to.
pub const ALIASES_INTO: &[u8] = b"b/";
/// Prefix of erasure records.
pub const ERASURES: &[u8] = b"e/";
/// Prefix of webhook delivery positions.
pub const DELIVERIES: &[u8] = b"w/";
/// Prefix of the due index: `d/{due}{member_id}`, empty values, in the
/// order the sweep reads them (by rules, then by moment).
pub const DUE: &[u8] = b"d/";
/// The first key after the due index.
pub const DUE_END: &[u8] = b"d0";
/// A due moment as keys hold it: the rules id, then the moment in
/// microseconds since 1970 with the sign bit flipped (so that keys sort by
/// time), both big-endian; "never" is the largest moment.
pub type DueBytes = [u8; 16];

/// The due of a member stored before due moments were kept (or changed
/// without being decided): rules 0 at the earliest moment, due under any
/// rules at any time.
pub const DUE_UNKNOWN: DueBytes = [0; 16];

/// The encoding of a due moment (see [`DueBytes`]).
pub fn due_bytes(rules: u64, micros: Option<i64>) -> DueBytes {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&rules.to_be_bytes());
    let moment = micros.map_or(u64::MAX, |m| m.cast_unsigned() ^ (1 << 63));
    bytes[8..].copy_from_slice(&moment.to_be_bytes());
    bytes
}

/// A member's entry in the due index.
pub fn due(due: &DueBytes, member_id: &str) -> Vec<u8> {
    [DUE, due.as_slice(), member_id.as_bytes()].concat()
}

/// The member id of a due index entry.
pub fn member_of_due(key: &[u8]) -> Option<&[u8]> {
    key.get(DUE.len() + 16..)
}

/// The delivery position of the webhook endpoint `name`.
pub fn delivery(name: &str) -> Vec<u8> {
    [DELIVERIES, name.as_bytes()].concat()
}

/// A member's record.
pub fn member(member_id: &str) -> Vec<u8> {
    [MEMBERS, member_id.as_bytes()].concat()
}

/// The alias of a member id merged into another.
pub fn alias(member_id: &str) -> Vec<u8> {
    [ALIASES, member_id.as_bytes()].concat()
}

/// The start of the aliases that lead to `into`.
pub fn aliases_into_prefix(into: &str) -> Vec<u8> {
    [ALIASES_INTO, into.as_bytes(), &[0xFF]].concat()
}

/// The entry of `member_id` among the aliases that lead to `into`.
pub fn alias_into(into: &str, member_id: &str) -> Vec<u8> {
    [aliases_into_prefix(into).as_slice(), member_id.as_bytes()].concat()
}

/// The record of the erasure whose pseudonym is `pseudonym`.
pub fn erasure(pseudonym: &str) -> Vec<u8> {
    [ERASURES, pseudonym.as_bytes()].concat()
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
    [order_prefix(member_id).as_slice(), order_id.as_bytes()].concat()
}

/// The start of `member_id`'s redemptions against orders.
pub fn order_prefix(member_id: &str) -> Vec<u8> {
    [ORDERS, member_id.as_bytes(), &[0xFF]].concat()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The due index's bytes are part of data format 6: pinned.
    #[test]
    fn due_keys_are_pinned_and_sort_by_rules_then_time() {
        let moment = due_bytes(0x0102_0304_0506_0708, Some(1));
        assert_eq!(
            moment,
            [1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0, 0, 0, 0, 0, 0, 1],
            "rules id, then the moment with its sign bit flipped"
        );
        assert_eq!(due_bytes(9, None)[8..], [0xFF; 8], "never is last");
        assert_eq!(
            due(&moment, "m"),
            b"d/\x01\x02\x03\x04\x05\x06\x07\x08\x80\0\0\0\0\0\0\x01m"
        );
        assert_eq!(member_of_due(&due(&moment, "m-1")), Some(b"m-1".as_slice()));
        let before_1970 = due_bytes(9, Some(-5));
        let after_1970 = due_bytes(9, Some(5));
        let later_rules = due_bytes(10, Some(-5));
        assert!(before_1970 < after_1970 && after_1970 < later_rules);
        assert!(due(&due_bytes(9, None), "z") < DUE_END.to_vec());
    }
}
