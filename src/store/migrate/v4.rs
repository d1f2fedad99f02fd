//! What changed in data format 5, frozen as format 4 wrote it: a
//! purchase's track had no lines, and a receipt ended with its purchase
//! (no refund or re-credit of a return after it). Formats 3 and 4 wrote
//! receipts alike. Only the migration reads these.

use serde::Deserialize;

use crate::store::records::{PurchaseRecord, ReceiptRecord};

/// The record encoding byte of format 4.
pub const RECORD_ENCODING: u8 = 3;

/// A receipt of format 4 (and 3).
pub type Receipt = ReceiptRecord<Purchase, (), ()>;

/// A purchase's track in format 4.
#[derive(Deserialize)]
pub struct Purchase {
    amount_minor: i64,
    points: i64,
    occurred_at: i64,
    returned_minor: i64,
    points_reversed: i64,
    redeemable_reversed: i64,
    points_lapsed: i64,
}

/// Purchases before format 5 were recorded as sums: no lines.
impl From<Purchase> for PurchaseRecord {
    fn from(p: Purchase) -> Self {
        PurchaseRecord {
            amount_minor: p.amount_minor,
            points: p.points,
            occurred_at: p.occurred_at,
            returned_minor: p.returned_minor,
            points_reversed: p.points_reversed,
            redeemable_reversed: p.redeemable_reversed,
            points_lapsed: p.points_lapsed,
            lines: Vec::new(),
        }
    }
}
