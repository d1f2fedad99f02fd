//! Everything stored about one member, as one JSON document: the answer to
//! a member's request for their data (EU GDPR articles 15 and 20).
//!
//! The document is the stored state as it is, not a summary of it: the
//! member's record (attributes, tier and override, closure, lifetime
//! figures, points lots, day totals by date, redemptions by reward), the
//! receipt of every request about the member (with each purchase's lines
//! and what returns and lapses took of them), its redemptions against
//! orders, and its whole tier history; for a member others were merged
//! into, their aliases, the receipts of the requests made under their ids
//! and their tier histories too. The domain's types serialize
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
        merge::Alias,
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
    /// Its tier history, and those of the ids merged into it, oldest
    /// first.
    pub history: Vec<HistoryEntry>,
    /// The ids merged into it.
    pub merged: Vec<Alias>,
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

/// Everything `store` holds about `member_id` at `now` (for an id merged
/// into another member, about that member); `None` when there is no such
/// member. Blocking: on sled it reads every receipt.
///
/// # Errors
/// On a storage failure or an undecodable record.
pub fn export(
    store: &Store,
    member_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<MemberExport>, StoreError> {
    let Some((member, _)) = store.landing(member_id)? else {
        return Ok(None);
    };
    let member_id = member.member_id.clone();
    let merged = store
        .aliases_into(&member_id)?
        .iter()
        .filter_map(|id| store.alias(id).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<String> = std::iter::once(member_id.clone())
        .chain(merged.iter().map(|alias| alias.member_id.clone()))
        .collect();
    let receipts = store
        .receipts_of(&ids)?
        .into_iter()
        .map(|(transaction_id, receipt)| ExportedReceipt {
            transaction_id,
            receipt,
        })
        .collect();
    let orders = store
        .orders_of(&member_id)?
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
        history: whole_history(store, &ids)?,
        merged,
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

/// Every history entry of the members `member_ids`, page by page, in the
/// order they happened.
fn whole_history(store: &Store, member_ids: &[String]) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut entries: Vec<HistoryEntry> = Vec::new();
    for member_id in member_ids {
        let mut after = 0;
        loop {
            let (page, more) = store.history(member_id, after, HISTORY_PAGE)?;
            after = page.last().map_or(after, |e| e.seq);
            entries.extend(page);
            if !more {
                break;
            }
        }
    }
    entries.sort_by_key(|e| e.seq);
    Ok(entries)
}
