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

/// The encoding byte of a member's value in sled since format 7: the
/// member's due moment ([`DueBytes`], 16 bytes) and then its record, so
/// that the writer moves the member's entry in the due index without a
/// key of its own for the moment. A database keeps the moment in columns
/// and the record alone, under [`RECORD_ENCODING`].
pub const MEMBER_ENCODING: u8 = 5;

/// Encodes a member's value for sled: its due moment, then its record.
pub fn encode_member<T: Serialize>(due: &DueBytes, record: &T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(128);
    bytes.push(MEMBER_ENCODING);
    bytes.extend_from_slice(due);
    bytes.extend(postcard::to_stdvec(record).unwrap_or_default());
    bytes
}

/// A member's value split into its due moment (`None`: a value of a
/// database, or of sled before format 7) and its record's bytes.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when the value is neither.
pub fn split_member<'a>(
    key: &[u8],
    bytes: &'a [u8],
) -> Result<(Option<DueBytes>, &'a [u8]), StoreError> {
    match bytes.split_first() {
        Some((&MEMBER_ENCODING, rest)) => {
            let (due, record) = rest
                .split_first_chunk::<16>()
                .ok_or_else(|| StoreError::corrupt(key, "a member value without its due moment"))?;
            Ok((Some(*due), record))
        }
        Some((&RECORD_ENCODING, record)) => Ok((None, record)),
        Some((found, _)) => Err(StoreError::corrupt(
            key,
            format!("record encoding {found}, expected {MEMBER_ENCODING}"),
        )),
        None => Err(StoreError::corrupt(key, "empty value")),
    }
}

/// Decodes a member's record from its value, in sled's layout or a
/// database's ([`split_member`]).
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when the bytes are not a member.
pub fn decode_member<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    let (_, record) = split_member(key, bytes)?;
    postcard::from_bytes(record).map_err(|e| StoreError::corrupt(key, e.to_string()))
}

/// The same member value with its due moment set to `due` (a value without
/// one gains it).
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when the bytes are not a member.
pub fn with_due(key: &[u8], bytes: &[u8], due: &DueBytes) -> Result<Vec<u8>, StoreError> {
    let (_, record) = split_member(key, bytes)?;
    Ok([&[MEMBER_ENCODING], due.as_slice(), record].concat())
}

/// The member value as a database keeps it: the record alone.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when the bytes are not a member.
pub fn without_due(key: &[u8], bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let (_, record) = split_member(key, bytes)?;
    Ok([&[RECORD_ENCODING], record].concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::due_bytes;

    /// A member's value in sled is part of data format 7: pinned.
    #[test]
    fn a_member_value_is_its_due_moment_then_its_record() {
        let due = due_bytes(0x0102_0304_0506_0708, Some(1));
        let value = encode_member(&due, &(3_u8, "ab"));
        assert_eq!(
            value,
            [
                &[5, 1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0, 0, 0, 0, 0, 0, 1][..],
                &[3, 2, b'a', b'b']
            ]
            .concat()
        );
        assert_eq!(
            split_member(b"m/x", &value).expect("a member"),
            (Some(due), &[3, 2, b'a', b'b'][..])
        );
        let database = without_due(b"m/x", &value).expect("a member");
        assert_eq!(
            database,
            encode(&(3_u8, "ab")),
            "a database keeps the record alone"
        );
        assert_eq!(split_member(b"m/x", &database).expect("a member").0, None);
        assert_eq!(with_due(b"m/x", &database, &due).expect("a member"), value);
        let record: (u8, String) = decode_member(b"m/x", &value).expect("decodes");
        assert_eq!(record, (3, "ab".to_owned()));
        assert!(split_member(b"m/x", &value[..10]).is_err(), "cut short");
        assert!(split_member(b"m/x", &[9, 1]).is_err(), "another encoding");
    }
}
