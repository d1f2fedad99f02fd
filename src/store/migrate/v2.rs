//! The records of data format 2, frozen as they were written (tierd at
//! commit 54e9b22), and their conversion into today's domain types. Only
//! the migration reads these; nothing writes them.
//!
//! Format 2 stored values as record encoding 1 + postcard of these structs
//! (times as `ts_microseconds` where marked, RFC 3339 text in commands),
//! and kept the whole response of a write, English summary included, in
//! its transaction record; the idempotency fingerprint was the command's
//! kind, a 0 byte, and postcard of the command struct.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{
    domain::{
        decide::{self, ChangeKind, HistoryEntry, OverrideMode},
        fingerprint::{Fingerprint, RequestFacts},
        member::{self, PointsLot},
        receipt::{PurchaseTrack, Receipt, RequestKind},
    },
    rules::RulesVersion,
};

/// The record encoding byte of format 2.
pub const RECORD_ENCODING: u8 = 1;

/// A day's totals: format 3 kept them as format 2 did.
type DayTotals = super::v3::Day;

#[derive(Deserialize)]
struct Lot {
    source: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    earned_at: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    expires_at: Option<DateTime<Utc>>,
    remaining: i64,
}

#[derive(Deserialize)]
enum Mode {
    Floor,
    Lock,
}

#[derive(Deserialize)]
struct Override {
    tier_id: String,
    mode: Mode,
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    until: Option<DateTime<Utc>>,
    reason: String,
}

#[derive(Deserialize)]
struct TierState {
    tier_id: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    since: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    retain_failing_since: Option<DateTime<Utc>>,
    tier_override: Option<Override>,
}

/// `m/{member_id}` in format 2.
#[derive(Deserialize)]
pub struct Member {
    member_id: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    enrolled_at: DateTime<Utc>,
    attributes: BTreeMap<String, String>,
    tier: TierState,
    days: BTreeMap<i32, DayTotals>,
    lifetime_value_minor: i64,
    lots: VecDeque<Lot>,
    points_debt: i64,
    points_expired: i64,
    points_redeemed: i64,
}

#[derive(Deserialize)]
enum Kind {
    Initial,
    Promotion,
    Demotion,
    Manual,
}

#[derive(Deserialize)]
struct Change {
    from_tier: String,
    to_tier: String,
    kind: Kind,
    #[serde(with = "chrono::serde::ts_microseconds")]
    at: DateTime<Utc>,
    reason: String,
}

/// `h/{seq}` in format 2.
#[derive(Deserialize)]
pub struct History {
    seq: u64,
    member_id: String,
    change: Change,
    rules_version: String,
}

/// What format 2 kept of a write's answer; only the points, the cap and
/// the seqs of its tier changes survive the migration.
#[derive(Deserialize)]
struct Outcome {
    _member: MemberView,
    points: i64,
    tier_changes: Vec<History>,
    capped: bool,
}

#[derive(Deserialize)]
struct MemberView {
    _member_id: String,
    _tier_id: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    _tier_since: DateTime<Utc>,
    _metrics: [i64; 6],
    _next_tier: Option<NextTier>,
    _rules_version: String,
    _currency: String,
    _attributes: BTreeMap<String, String>,
    #[serde(with = "chrono::serde::ts_microseconds")]
    _enrolled_at: DateTime<Utc>,
    _tier_override: Option<Override>,
}

/// The next tier, its summary and its shortfalls.
type NextTier = (String, String, Vec<(String, i64)>);

#[derive(Deserialize)]
struct Track {
    amount_minor: i64,
    points: i64,
    #[serde(with = "chrono::serde::ts_microseconds")]
    occurred_at: DateTime<Utc>,
    returned_minor: i64,
    points_reversed: i64,
}

/// `t/{transaction_id}` in format 2.
#[derive(Deserialize)]
pub struct Txn {
    member_id: String,
    fingerprint: Vec<u8>,
    outcome: Outcome,
    purchase: Option<Track>,
    actor: String,
}

/// `r/{n}` in format 2.
#[derive(Deserialize)]
pub struct Rules {
    version: String,
    content_hash: String,
    program: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    activated_at: DateTime<Utc>,
    text: String,
}

#[derive(Deserialize)]
struct Purchase {
    member_id: String,
    transaction_id: String,
    amount_minor: i64,
    currency: String,
    occurred_at: Option<DateTime<Utc>>,
    channel: String,
    store_id: String,
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct Return {
    member_id: String,
    transaction_id: String,
    original_transaction_id: String,
    amount_minor: i64,
    occurred_at: Option<DateTime<Utc>>,
    currency: String,
}

#[derive(Deserialize)]
struct Activity {
    member_id: String,
    transaction_id: String,
    kind: String,
    occurred_at: Option<DateTime<Utc>>,
    attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Adjustment {
    member_id: String,
    transaction_id: String,
    points: i64,
    reason: String,
}

#[derive(Deserialize)]
struct Redemption {
    member_id: String,
    transaction_id: String,
    points: i64,
}

impl From<Member> for member::MemberState {
    fn from(m: Member) -> Self {
        Self {
            member_id: m.member_id,
            enrolled_at: m.enrolled_at,
            attributes: m.attributes,
            tier: decide::TierState {
                tier_id: m.tier.tier_id,
                since: m.tier.since,
                retain_failing_since: m.tier.retain_failing_since,
                tier_override: m.tier.tier_override.map(Into::into),
                warned: false,
            },
            days: m
                .days
                .into_iter()
                .map(|(day, t)| (day, member::DayTotals::from(t)))
                .collect(),
            lifetime_value_minor: m.lifetime_value_minor,
            lots: m
                .lots
                .into_iter()
                .map(|lot| PointsLot {
                    source: lot.source,
                    earned_at: lot.earned_at,
                    expires_at: lot.expires_at,
                    remaining: lot.remaining,
                })
                .collect(),
            points_debt: m.points_debt,
            points_expired: m.points_expired,
            points_redeemed: m.points_redeemed,
            rewards_redeemed: BTreeMap::new(),
            closed: None,
        }
    }
}

impl From<Override> for decide::TierOverride {
    fn from(o: Override) -> Self {
        Self {
            tier_id: o.tier_id,
            mode: match o.mode {
                Mode::Floor => OverrideMode::Floor,
                Mode::Lock => OverrideMode::Lock,
            },
            until: o.until,
            reason: o.reason,
        }
    }
}

impl From<History> for HistoryEntry {
    fn from(h: History) -> Self {
        Self {
            seq: h.seq,
            member_id: h.member_id,
            change: decide::Change {
                from_tier: h.change.from_tier,
                to_tier: h.change.to_tier,
                kind: match h.change.kind {
                    Kind::Initial => ChangeKind::Initial,
                    Kind::Promotion => ChangeKind::Promotion,
                    Kind::Demotion => ChangeKind::Demotion,
                    Kind::Manual => ChangeKind::Manual,
                },
                at: h.change.at,
                reason: h.change.reason,
                at_risk: None,
            },
            rules_version: h.rules_version,
        }
    }
}

impl From<Rules> for RulesVersion {
    fn from(r: Rules) -> Self {
        Self {
            version: r.version,
            content_hash: r.content_hash,
            program: r.program,
            activated_at: r.activated_at,
            text: r.text,
        }
    }
}

/// Why a format-2 transaction record cannot be carried over.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// The fingerprint names no known request kind.
    #[error("unknown request kind in its fingerprint")]
    UnknownKind,
    /// The request inside the fingerprint does not decode.
    #[error("undecodable request in its fingerprint: {0}")]
    Request(#[from] postcard::Error),
    /// A request without `occurred_at` (never accepted, so never stored).
    #[error("a request without occurred_at")]
    NoTime,
}

impl Txn {
    /// Today's receipt for this record. The fingerprint is recomputed from
    /// the request that format 2 kept inside its own, so that a retry sent
    /// after the migration still matches. Nothing was known in format 2 of
    /// points that lapsed before a return: none are assumed.
    ///
    /// # Errors
    /// [`TxnError`] when the old fingerprint cannot be read back.
    pub fn into_receipt(self) -> Result<Receipt, TxnError> {
        let (kind_name, request) = match self.fingerprint.iter().position(|b| *b == 0) {
            Some(at) => (&self.fingerprint[..at], &self.fingerprint[at + 1..]),
            None => return Err(TxnError::UnknownKind),
        };
        let (kind, fingerprint) = fingerprint_of(kind_name, request)?;
        Ok(Receipt {
            kind,
            member_id: self.member_id,
            fingerprint,
            actor: self.actor,
            points: self.outcome.points,
            capped: self.outcome.capped,
            tier_changes: self.outcome.tier_changes.iter().map(|h| h.seq).collect(),
            purchase: self.purchase.map(|t| PurchaseTrack {
                amount_minor: t.amount_minor,
                points: t.points,
                occurred_at: t.occurred_at,
                returned_minor: t.returned_minor,
                points_reversed: t.points_reversed,
                redeemable_reversed: t.points_reversed,
                points_lapsed: 0,
                lines: Vec::new(),
                minimums: Vec::new(),
            }),
            refunded_minor: 0,
            points_recredited: 0,
        })
    }
}

/// The kind and today's fingerprint of the request kept in a format-2
/// fingerprint.
fn fingerprint_of(kind: &[u8], request: &[u8]) -> Result<(RequestKind, Fingerprint), TxnError> {
    let time = |at: Option<DateTime<Utc>>| at.ok_or(TxnError::NoTime);
    let facts = |facts: RequestFacts<'_>| (facts.kind(), facts.fingerprint());
    let found = match kind {
        b"purchase" => {
            let p: Purchase = postcard::from_bytes(request)?;
            facts(RequestFacts::Purchase {
                member_id: &p.member_id,
                transaction_id: &p.transaction_id,
                amount_minor: p.amount_minor,
                currency: &p.currency,
                occurred_at: time(p.occurred_at)?,
                channel: &p.channel,
                store_id: &p.store_id,
                tags: &p.tags,
                lines: &[],
            })
        }
        b"return" => {
            let r: Return = postcard::from_bytes(request)?;
            facts(RequestFacts::Return {
                member_id: &r.member_id,
                transaction_id: &r.transaction_id,
                original_transaction_id: &r.original_transaction_id,
                amount_minor: r.amount_minor,
                currency: &r.currency,
                occurred_at: time(r.occurred_at)?,
                lines: &[],
            })
        }
        b"activity" => {
            let a: Activity = postcard::from_bytes(request)?;
            facts(RequestFacts::Activity {
                member_id: &a.member_id,
                transaction_id: &a.transaction_id,
                kind: &a.kind,
                occurred_at: time(a.occurred_at)?,
                details: &a.attributes,
            })
        }
        b"adjust" => {
            let a: Adjustment = postcard::from_bytes(request)?;
            facts(RequestFacts::Adjustment {
                member_id: &a.member_id,
                transaction_id: &a.transaction_id,
                points: a.points,
                reason: &a.reason,
                occurred_at: None,
            })
        }
        b"redeem" => {
            let r: Redemption = postcard::from_bytes(request)?;
            facts(RequestFacts::Redemption {
                member_id: &r.member_id,
                transaction_id: &r.transaction_id,
                points: r.points,
                order_id: None,
                reward_id: None,
            })
        }
        _ => return Err(TxnError::UnknownKind),
    };
    Ok(found)
}
