//! Everything stored about one member, as one JSON document: the answer to
//! a member's request for their data (EU GDPR articles 15 and 20).
//!
//! The document is the stored state as it is, not a summary of it: the
//! member's record (attributes, tier and override, closure, lifetime
//! figures, points lots, day totals by date, redemptions by reward), the
//! receipt of every request about the member (with each purchase's lines
//! and what returns and lapses took of them), its redemptions against
//! orders, and its whole tier history. The domain's types serialize
//! themselves, so a field the store gains is exported without a change
//! here. Receipts keep facts, not requests: what a request sent beyond
//! them (an adjustment's reason, an activity's details) is not stored, so
//! it is not exported either.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    domain::{
        decide::HistoryEntry,
        member::MemberState,
        receipt::{OrderRedemptions, Receipt},
    },
    store::{FORMAT_VERSION, Store, StoreError, keys},
};

/// History entries read per page.
const HISTORY_PAGE: usize = 1_000;

/// One member's stored data.
#[derive(Debug, Clone, Serialize)]
pub struct MemberExport {
    /// What this document is.
    pub document: &'static str,
    /// The data format it was read from.
    pub data_format: u32,
    /// When it was made.
    pub exported_at: DateTime<Utc>,
    /// The member's record.
    pub member: MemberState,
    /// The receipts of its requests, by transaction id.
    pub receipts: Vec<ExportedReceipt>,
    /// Its redemptions against orders.
    pub orders: Vec<ExportedOrder>,
    /// Its tier history, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// A receipt with the transaction id it is kept under.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedReceipt {
    /// The request's idempotency key.
    pub transaction_id: String,
    /// What the request did.
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// Redemptions against one order.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedOrder {
    /// The order (the purchase's transaction id).
    pub order_id: String,
    /// Points redeemed against it, and given back by its returns.
    #[serde(flatten)]
    pub redemptions: OrderRedemptions,
}

/// Everything `store` holds about `member_id` at `now`; `None` when there
/// is no such member. Blocking: on sled it reads every receipt.
///
/// # Errors
/// On a storage failure or an undecodable record.
pub fn export(
    store: &Store,
    member_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<MemberExport>, StoreError> {
    let Some(member) = store.member(member_id)? else {
        return Ok(None);
    };
    let receipts = store
        .receipts_of(member_id)?
        .into_iter()
        .map(|(transaction_id, receipt)| ExportedReceipt {
            transaction_id,
            receipt,
        })
        .collect();
    let orders = store
        .orders_of(member_id)?
        .into_iter()
        .map(|(order_id, redemptions)| ExportedOrder {
            order_id,
            redemptions,
        })
        .collect();
    Ok(Some(MemberExport {
        document: "tierd member export",
        data_format: FORMAT_VERSION,
        exported_at: now,
        member,
        receipts,
        orders,
        history: whole_history(store, member_id)?,
    }))
}

/// [`export`] as the JSON document it is sent as (pretty-printed, for
/// people as well as programs); `None` when there is no such member.
///
/// # Errors
/// On a storage failure or an undecodable record.
pub fn export_json(
    store: &Store,
    member_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Vec<u8>>, StoreError> {
    export(store, member_id, now)?
        .map(|document| {
            serde_json::to_vec_pretty(&document)
                .map_err(|err| StoreError::corrupt(&keys::member(member_id), err.to_string()))
        })
        .transpose()
}

/// Every history entry of `member_id`, page by page.
fn whole_history(store: &Store, member_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut entries: Vec<HistoryEntry> = Vec::new();
    loop {
        let after = entries.last().map_or(0, |e| e.seq);
        let (page, more) = store.history(member_id, after, HISTORY_PAGE)?;
        entries.extend(page);
        if !more {
            return Ok(entries);
        }
    }
}
