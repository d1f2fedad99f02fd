//! How a stored value is encoded: one byte naming the record encoding,
//! then the record in `postcard`. The byte lets a migration tell records
//! it has converted from those it has not, so an interrupted migration
//! simply runs again.

use serde::{Serialize, de::DeserializeOwned};

use super::StoreError;

/// The record encoding of this data format (format 2 wrote 1, format 3
/// wrote 2, format 4 wrote 3).
pub const RECORD_ENCODING: u8 = 4;

/// Encodes a stored record.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut bytes = vec![RECORD_ENCODING];
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
