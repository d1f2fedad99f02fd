//! How a stored value is encoded: one byte naming the record encoding,
//! then the record in `postcard`. The byte lets a migration tell records
//! it has converted from those it has not, so an interrupted migration
//! simply runs again.

use serde::{Serialize, de::DeserializeOwned};

use super::{StoreError, keys::DueBytes};

/// The record encoding of this data format (format 2 wrote 1, format 3
/// wrote 2, format 4 wrote 3).
pub const RECORD_ENCODING: u8 = 4;

/// The encoding byte of a receipt since format 8, which added what line
/// rules with a minimum paid and which lines did not count toward the
/// tier. A receipt of formats 5 to 7 keeps
/// [`RECORD_ENCODING`] and is read as it is (`store::receipt_from_bytes`),
/// so no receipt is rewritten when a store moves to format 8.
pub const RECEIPT_ENCODING: u8 = 6;

/// Encodes a stored record.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    encode_as(RECORD_ENCODING, record)
}

/// Encodes a stored record under `encoding` (a receipt's is its own).
pub fn encode_as<T: Serialize>(encoding: u8, record: &T) -> Vec<u8> {
    let mut bytes = vec![encoding];
    // Serializing plain records into a Vec cannot fail.
    bytes.extend(postcard::to_stdvec(record).unwrap_or_default());
    bytes
}

/// Decodes a stored record kept under `key`.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when the bytes are not a record
/// of this format.
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    decode_as(RECORD_ENCODING, key, bytes)
}

/// Decodes a record written with `encoding` (a migration reads old ones).
///
/// # Errors
/// [`StoreError::Corrupt`] when the bytes are not such a record.
pub fn decode_as<T: DeserializeOwned>(
    encoding: u8,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&found, body)) if found == encoding => {
            postcard::from_bytes(body).map_err(|e| StoreError::corrupt(key, e.to_string()))
        }
        Some((found, _)) => Err(StoreError::corrupt(
            key,
            format!("record encoding {found}, expected {encoding}"),
        )),
        None => Err(StoreError::corrupt(key, "empty value")),
    }
}

/// The encoding byte of a member's value in sled since format 9: the
/// member's due moment ([`DueBytes`], 16 bytes) and then its record (which
/// since format 9 ends with its redemptions by reward), so that the writer
/// moves the member's entry in the due index without a key of its own for
/// the moment. A database keeps the moment in columns and the record
/// alone, under [`MEMBER_RECORD_ENCODING`].
pub const MEMBER_ENCODING: u8 = 7;

/// The encoding byte of a member's record without its due moment, as a
/// database keeps it (and a migration writes it before the moment is
/// added), since format 9.
pub const MEMBER_RECORD_ENCODING: u8 = 8;

/// The byte of a member's value in sled in formats 7 and 8, whose record
/// ended before the redemptions by reward; such values are read as they
/// are (a database's of then are under [`RECORD_ENCODING`]).
pub const MEMBER_ENCODING_V8: u8 = 5;

/// The encoding byte of a member's value with or without its due moment,
/// of a record with or without the redemptions by reward.
const fn member_encoding(due: bool, with_rewards: bool) -> u8 {
    match (due, with_rewards) {
        (true, true) => MEMBER_ENCODING,
        (false, true) => MEMBER_RECORD_ENCODING,
        (true, false) => MEMBER_ENCODING_V8,
        (false, false) => RECORD_ENCODING,
    }
}

/// A member's value taken apart ([`split_member`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberValue<'a> {
    /// Its due moment; `None`: a value of a database, of sled before
    /// format 7, or fresh from a migration.
    pub due: Option<DueBytes>,
    /// The record's bytes.
    pub record: &'a [u8],
    /// Whether the record is of format 9 or later (it ends with the
    /// redemptions by reward) rather than of formats 5 to 8.
    pub with_rewards: bool,
}

impl MemberValue<'_> {
    /// The value with `due` at its head (`None`: without one, as a
    /// database keeps it), its record unchanged.
    fn with(&self, due: Option<&DueBytes>) -> Vec<u8> {
        let encoding = member_encoding(due.is_some(), self.with_rewards);
        let due = due.map_or(&[][..], |due| due.as_slice());
        [&[encoding], due, self.record].concat()
    }
}

/// Encodes a member's value for sled: its due moment, then its record.
pub fn encode_member<T: Serialize>(due: &DueBytes, record: &T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(128);
    bytes.push(MEMBER_ENCODING);
    bytes.extend_from_slice(due);
    bytes.extend(postcard::to_stdvec(record).unwrap_or_default());
    bytes
}

/// Encodes a member's record alone, as a database keeps it.
pub fn encode_member_record<T: Serialize>(record: &T) -> Vec<u8> {
    encode_as(MEMBER_RECORD_ENCODING, record)
}

/// A member's value taken apart: its due moment, its record, and which
/// record it is.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when the value is not a member.
pub fn split_member<'a>(key: &[u8], bytes: &'a [u8]) -> Result<MemberValue<'a>, StoreError> {
    let Some((&encoding, rest)) = bytes.split_first() else {
        return Err(StoreError::corrupt(key, "empty value"));
    };
    let with_rewards = matches!(encoding, MEMBER_ENCODING | MEMBER_RECORD_ENCODING);
    match encoding {
        MEMBER_ENCODING | MEMBER_ENCODING_V8 => {
            let (due, record) = rest
                .split_first_chunk::<16>()
                .ok_or_else(|| StoreError::corrupt(key, "a member value without its due moment"))?;
            Ok(MemberValue {
                due: Some(*due),
                record,
                with_rewards,
            })
        }
        MEMBER_RECORD_ENCODING | RECORD_ENCODING => Ok(MemberValue {
            due: None,
            record: rest,
            with_rewards,
        }),
        found => Err(StoreError::corrupt(
            key,
            format!("record encoding {found}, expected {MEMBER_ENCODING}"),
        )),
    }
}

/// Decodes a member's record from its value, in sled's layout or a
/// database's ([`split_member`]): a record of format 9 or later as `T`,
/// one of formats 5 to 8 as `Old`, converted.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when the bytes are not a member.
pub fn decode_member<T, Old>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError>
where
    T: DeserializeOwned,
    Old: DeserializeOwned + Into<T>,
{
    let value = split_member(key, bytes)?;
    let corrupt = |e: postcard::Error| StoreError::corrupt(key, e.to_string());
    if value.with_rewards {
        postcard::from_bytes(value.record).map_err(corrupt)
    } else {
        postcard::from_bytes::<Old>(value.record)
            .map(Into::into)
            .map_err(corrupt)
    }
}

/// The same member value with its due moment set to `due` (a value without
/// one gains it).
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when the bytes are not a member.
pub fn with_due(key: &[u8], bytes: &[u8], due: &DueBytes) -> Result<Vec<u8>, StoreError> {
    Ok(split_member(key, bytes)?.with(Some(due)))
}

/// The member value as a database keeps it: the record alone.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when the bytes are not a member.
pub fn without_due(key: &[u8], bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    Ok(split_member(key, bytes)?.with(None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::due_bytes;

    /// A member's value in sled is part of data format 9: pinned.
    #[test]
    fn a_member_value_is_its_due_moment_then_its_record() {
        let due = due_bytes(0x0102_0304_0506_0708, Some(1));
        let value = encode_member(&due, &(3_u8, "ab"));
        assert_eq!(
            value,
            [
                &[7, 1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0, 0, 0, 0, 0, 0, 1][..],
                &[3, 2, b'a', b'b']
            ]
            .concat()
        );
        let split = split_member(b"m/x", &value).expect("a member");
        assert_eq!(
            (split.due, split.record, split.with_rewards),
            (Some(due), &[3, 2, b'a', b'b'][..], true)
        );
        let database = without_due(b"m/x", &value).expect("a member");
        assert_eq!(
            database,
            encode_member_record(&(3_u8, "ab")),
            "a database keeps the record alone"
        );
        assert_eq!(split_member(b"m/x", &database).expect("a member").due, None);
        assert_eq!(with_due(b"m/x", &database, &due).expect("a member"), value);
        let record: (u8, String) =
            decode_member::<_, (u8, String)>(b"m/x", &value).expect("decodes");
        assert_eq!(record, (3, "ab".to_owned()));
        assert!(split_member(b"m/x", &value[..10]).is_err(), "cut short");
        assert!(split_member(b"m/x", &[9, 1]).is_err(), "another encoding");
    }

    /// A member of formats 5 to 8 keeps its bytes when its due moment
    /// moves, and is read as the older record it is.
    #[test]
    fn a_member_of_format_8_moves_and_reads_as_it_was() {
        let due = due_bytes(7, None);
        let database = encode(&3_u8);
        let sled = with_due(b"m/x", &database, &due).expect("a member");
        assert_eq!(sled, [&[MEMBER_ENCODING_V8], due.as_slice(), &[3]].concat());
        assert!(!split_member(b"m/x", &sled).expect("a member").with_rewards);
        assert_eq!(without_due(b"m/x", &sled).expect("a member"), database);
        // The older record (a number) is read and converted; today's (a
        // pair) would not fit its bytes.
        let read: (u8, String) =
            decode_member::<(u8, String), Older>(b"m/x", &sled).expect("read as format 8");
        assert_eq!(read, (3, "older".to_owned()));
    }

    /// A record of formats 5 to 8 in the tests: a number.
    #[derive(serde::Deserialize)]
    struct Older(u8);

    impl From<Older> for (u8, String) {
        fn from(o: Older) -> Self {
            (o.0, "older".to_owned())
        }
    }
}
