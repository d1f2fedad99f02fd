//! The stored record types, and their conversions from and to the domain.
//!
//! What sled holds is these types, not the domain's: a domain type may gain
//! a field, change a field's order or type, or render differently, and the
//! bytes on disk do not move until a record here changes, which the
//! golden-bytes tests below catch. Changing a record means a new data
//! format and a migration (`super::migrate`).
//!
//! Conventions: times are microseconds since the Unix epoch (`i64`); enums
//! are their variant index (append new variants, never reorder); maps are
//! key-ordered. Only facts are stored, never text rendered for people,
//! except a history entry's reason, which is part of the audit trail.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{
        decide::{AtRisk, Change, ChangeKind, HistoryEntry, OverrideMode, TierOverride, TierState},
        fingerprint::Fingerprint,
        member::{Closure, DayTotals, MemberState, PointsLot, Redeemed},
        merge::Alias,
        privacy::Erasure,
        receipt::{
            LineTrack, MinimumLine, MinimumTrack, OrderRedemptions, PurchaseTrack, Receipt,
            RequestKind,
        },
    },
    rules::{Minimum, RulesVersion},
};

/// A time that cannot be read back: the record is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("time {0} µs is out of range")]
pub struct BadTime(pub i64);

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn time(micros: i64) -> Result<DateTime<Utc>, BadTime> {
    DateTime::from_timestamp_micros(micros).ok_or(BadTime(micros))
}

fn optional_time(micros: Option<i64>) -> Result<Option<DateTime<Utc>>, BadTime> {
    micros.map(time).transpose()
}

/// A member (`m/{member_id}`). Generic over the record of a day, the end
/// of the tier record and the end of the member, so that a migration can
/// read the members of format 3, whose days had fewer fields
/// (`super::migrate::v3`), and of formats 3 and 4, whose tier record ended
/// before `warned` (`()` is no bytes), and the store the members of
/// formats 5 to 8, which ended before `tail` ([`MemberRecordV8`]);
/// everything else is stored as then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord<Day = DayRecord, TierTail = WarnedRecord, Tail = MemberTail> {
    member_id: String,
    enrolled_at: i64,
    attributes: BTreeMap<String, String>,
    tier: TierRecord<TierTail>,
    /// Day number and totals, in day order: postcard writes a map and a
    /// list of pairs as the same bytes, and a list is read without
    /// building a map that the conversion would build again.
    days: Vec<(i32, Day)>,
    lifetime_value_minor: i64,
    lots: Vec<LotRecord>,
    points_debt: i64,
    points_expired: i64,
    points_redeemed: i64,
    tail: Tail,
}

/// A member as formats 5 to 8 stored it: read as it is, open, with no
/// redemptions by reward and no points given back on any day.
pub type MemberRecordV8 = MemberRecord<DayRecord, WarnedRecord, ()>;

/// Today's record of the same member.
impl From<MemberRecordV8> for MemberRecord {
    fn from(old: MemberRecordV8) -> Self {
        MemberRecord {
            member_id: old.member_id,
            enrolled_at: old.enrolled_at,
            attributes: old.attributes,
            tier: old.tier,
            days: old.days,
            lifetime_value_minor: old.lifetime_value_minor,
            lots: old.lots,
            points_debt: old.points_debt,
            points_expired: old.points_expired,
            points_redeemed: old.points_redeemed,
            tail: MemberTail::default(),
        }
    }
}

/// What format 9 keeps after a member's record: its redemptions by
/// reward, and whether the account is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberTail {
    rewards: RewardsRecord,
    closed: Option<ClosureRecord>,
}

/// A closed account (format 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClosureRecord {
    at: i64,
    reason: String,
    points_forfeited: i64,
}

/// The days that had
/// redemptions of catalogue rewards or redeemed points given back (in day
/// order; the days they belong to are in `days`), and each reward's
/// redemptions all time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardsRecord {
    days: Vec<(i32, DayRewardsRecord)>,
    all_time: Vec<(String, i64)>,
}

/// One day's redemptions by reward (id, count, points) and the redeemed
/// points returns gave back that day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DayRewardsRecord {
    rewards: Vec<(String, i64, i64)>,
    points_given_back: i64,
}

impl RewardsRecord {
    fn of(m: &MemberState) -> Self {
        let days = m
            .days
            .iter()
            .filter(|(_, t)| t.points_given_back != 0 || !t.rewards.is_empty())
            .map(|(day, t)| {
                let rewards = t
                    .rewards
                    .iter()
                    .map(|(id, r)| (id.clone(), r.count, r.points))
                    .collect();
                let record = DayRewardsRecord {
                    rewards,
                    points_given_back: t.points_given_back,
                };
                (*day, record)
            })
            .collect();
        let all_time = m
            .rewards_redeemed
            .iter()
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        Self { days, all_time }
    }

    /// Puts the days' redemptions into `days`; returns the counts all time.
    fn into_days(self, days: &mut BTreeMap<i32, DayTotals>) -> BTreeMap<String, i64> {
        for (day, record) in self.days {
            let totals = days.entry(day).or_default();
            totals.points_given_back = record.points_given_back;
            totals.rewards = record
                .rewards
                .into_iter()
                .map(|(id, count, points)| (id, Redeemed { count, points }))
                .collect();
        }
        self.all_time.into_iter().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TierRecord<Tail> {
    tier_id: String,
    since: i64,
    retain_failing_since: Option<i64>,
    tier_override: Option<OverrideRecord>,
    tail: Tail,
}

/// Whether the member at risk got its early warning (format 5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarnedRecord {
    warned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OverrideRecord {
    tier_id: String,
    mode: ModeRecord,
    until: Option<i64>,
    reason: String,
}

/// Never reorder: the index is what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum ModeRecord {
    Floor,
    Lock,
}

/// The totals of one day (format 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRecord {
    spend_minor: i64,
    purchases: i64,
    qualifying_points: i64,
    activities: i64,
    activity_kinds: BTreeMap<String, i64>,
    purchased_minor: i64,
    refunded_minor: i64,
    points_earned: i64,
    points_taken_back: i64,
    points_redeemed: i64,
    points_lapsed: i64,
}

impl<Day> MemberRecord<Day, (), ()> {
    /// The same member of an older format, with each day's record converted
    /// by `convert`, not warned of anything, with no redemptions by reward.
    pub fn upgrade<New>(self, convert: impl Fn(Day) -> New) -> MemberRecord<New> {
        let tier = self.tier;
        MemberRecord {
            member_id: self.member_id,
            enrolled_at: self.enrolled_at,
            attributes: self.attributes,
            tier: TierRecord {
                tier_id: tier.tier_id,
                since: tier.since,
                retain_failing_since: tier.retain_failing_since,
                tier_override: tier.tier_override,
                tail: WarnedRecord::default(),
            },
            days: self
                .days
                .into_iter()
                .map(|(day, totals)| (day, convert(totals)))
                .collect(),
            lifetime_value_minor: self.lifetime_value_minor,
            lots: self.lots,
            points_debt: self.points_debt,
            points_expired: self.points_expired,
            points_redeemed: self.points_redeemed,
            tail: MemberTail::default(),
        }
    }
}

impl From<&DayTotals> for DayRecord {
    fn from(t: &DayTotals) -> Self {
        Self {
            spend_minor: t.spend_minor,
            purchases: t.purchases,
            qualifying_points: t.qualifying_points,
            activities: t.activities,
            activity_kinds: t.activity_kinds.clone(),
            purchased_minor: t.purchased_minor,
            refunded_minor: t.refunded_minor,
            points_earned: t.points_earned,
            points_taken_back: t.points_taken_back,
            points_redeemed: t.points_redeemed,
            points_lapsed: t.points_lapsed,
        }
    }
}

impl From<DayRecord> for DayTotals {
    fn from(t: DayRecord) -> Self {
        Self {
            spend_minor: t.spend_minor,
            purchases: t.purchases,
            qualifying_points: t.qualifying_points,
            activities: t.activities,
            activity_kinds: t.activity_kinds,
            purchased_minor: t.purchased_minor,
            refunded_minor: t.refunded_minor,
            points_earned: t.points_earned,
            points_taken_back: t.points_taken_back,
            points_redeemed: t.points_redeemed,
            points_lapsed: t.points_lapsed,
            ..DayTotals::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LotRecord {
    source: String,
    earned_at: i64,
    expires_at: Option<i64>,
    remaining: i64,
}

impl From<&MemberState> for MemberRecord {
    fn from(m: &MemberState) -> Self {
        Self {
            member_id: m.member_id.clone(),
            enrolled_at: micros(m.enrolled_at),
            attributes: m.attributes.clone(),
            tier: TierRecord {
                tier_id: m.tier.tier_id.clone(),
                since: micros(m.tier.since),
                retain_failing_since: m.tier.retain_failing_since.map(micros),
                tier_override: m.tier.tier_override.as_ref().map(|o| OverrideRecord {
                    tier_id: o.tier_id.clone(),
                    mode: match o.mode {
                        OverrideMode::Floor => ModeRecord::Floor,
                        OverrideMode::Lock => ModeRecord::Lock,
                    },
                    until: o.until.map(micros),
                    reason: o.reason.clone(),
                }),
                tail: WarnedRecord {
                    warned: m.tier.warned,
                },
            },
            days: m
                .days
                .iter()
                .map(|(day, t)| (*day, DayRecord::from(t)))
                .collect(),
            lifetime_value_minor: m.lifetime_value_minor,
            lots: m
                .lots
                .iter()
                .map(|lot| LotRecord {
                    source: lot.source.clone(),
                    earned_at: micros(lot.earned_at),
                    expires_at: lot.expires_at.map(micros),
                    remaining: lot.remaining,
                })
                .collect(),
            points_debt: m.points_debt,
            points_expired: m.points_expired,
            points_redeemed: m.points_redeemed,
            tail: MemberTail {
                rewards: RewardsRecord::of(m),
                closed: m.closed.as_ref().map(|c| ClosureRecord {
                    at: micros(c.at),
                    reason: c.reason.clone(),
                    points_forfeited: c.points_forfeited,
                }),
            },
        }
    }
}

impl TryFrom<MemberRecord> for MemberState {
    type Error = BadTime;

    fn try_from(r: MemberRecord) -> Result<Self, BadTime> {
        let tier_override = r
            .tier
            .tier_override
            .map(|o| {
                Ok::<_, BadTime>(TierOverride {
                    tier_id: o.tier_id,
                    mode: match o.mode {
                        ModeRecord::Floor => OverrideMode::Floor,
                        ModeRecord::Lock => OverrideMode::Lock,
                    },
                    until: optional_time(o.until)?,
                    reason: o.reason,
                })
            })
            .transpose()?;
        let lots = r
            .lots
            .into_iter()
            .map(|lot| {
                Ok(PointsLot {
                    source: lot.source,
                    earned_at: time(lot.earned_at)?,
                    expires_at: optional_time(lot.expires_at)?,
                    remaining: lot.remaining,
                })
            })
            .collect::<Result<VecDeque<_>, BadTime>>()?;
        let mut days = r
            .days
            .into_iter()
            .map(|(day, t)| (day, DayTotals::from(t)))
            .collect();
        let rewards_redeemed = r.tail.rewards.into_days(&mut days);
        let closed = r
            .tail
            .closed
            .map(|c| {
                Ok::<_, BadTime>(Closure {
                    at: time(c.at)?,
                    reason: c.reason,
                    points_forfeited: c.points_forfeited,
                })
            })
            .transpose()?;
        Ok(MemberState {
            member_id: r.member_id,
            enrolled_at: time(r.enrolled_at)?,
            attributes: r.attributes,
            tier: TierState {
                tier_id: r.tier.tier_id,
                since: time(r.tier.since)?,
                retain_failing_since: optional_time(r.tier.retain_failing_since)?,
                tier_override,
                warned: r.tier.tail.warned,
            },
            days,
            lifetime_value_minor: r.lifetime_value_minor,
            lots,
            points_debt: r.points_debt,
            points_expired: r.points_expired,
            points_redeemed: r.points_redeemed,
            rewards_redeemed,
            closed,
        })
    }
}

/// The receipt of a transaction id (`t/{transaction_id}`). Generic over
/// the record of a purchase and the fields after it, so that a migration
/// can read a receipt of format 4 (`super::migrate::v4`), whose purchases
/// had no lines and which ended with the purchase (`()` is no bytes), and
/// the store a receipt of formats 5 to 7, which ended before `basket`
/// ([`ReceiptRecordV7`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord<Purchase = PurchaseRecord, Tail = ReturnRecord, Basket = BasketRecord> {
    kind: KindRecord,
    member_id: String,
    fingerprint: [u8; 32],
    actor: String,
    points: i64,
    capped: bool,
    tier_changes: Vec<u64>,
    purchase: Option<Purchase>,
    tail: Tail,
    /// What format 8 added of the purchase's basket.
    basket: Basket,
}

/// What format 8 keeps of a purchase's basket beyond its lines: what line
/// rules with a minimum paid them, and which lines did not count toward
/// the tier (their indices; empty for any other receipt).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasketRecord {
    minimums: Vec<MinimumRecord>,
    not_qualifying: Vec<u32>,
}

/// A receipt as formats 5 to 7 wrote it: no `basket`, which those
/// formats' rules could not have (every line counted toward the tier).
pub type ReceiptRecordV7 = ReceiptRecord<PurchaseRecord, ReturnRecord, ()>;

impl ReceiptRecordV7 {
    /// The receipt as this format keeps it.
    pub fn with_no_basket(self) -> ReceiptRecord {
        let tail = self.tail;
        self.upgrade(|purchase| purchase, tail)
    }
}

/// What one line rule with a minimum paid: the minimum, and each line it
/// matched (its index in the basket) with the points it paid it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinimumRecord {
    quantity: i64,
    amount_minor: i64,
    lines: Vec<(u32, i64)>,
}

impl From<&MinimumTrack> for MinimumRecord {
    fn from(m: &MinimumTrack) -> Self {
        Self {
            quantity: m.minimum.quantity,
            amount_minor: m.minimum.amount_minor,
            lines: m
                .lines
                .iter()
                .map(|l| (u32::try_from(l.index).unwrap_or(u32::MAX), l.points))
                .collect(),
        }
    }
}

impl From<MinimumRecord> for MinimumTrack {
    fn from(m: MinimumRecord) -> Self {
        Self {
            minimum: Minimum {
                quantity: m.quantity,
                amount_minor: m.amount_minor,
            },
            lines: m
                .lines
                .into_iter()
                .map(|(index, points)| MinimumLine {
                    index: usize::try_from(index).unwrap_or(usize::MAX),
                    points,
                })
                .collect(),
        }
    }
}

/// What a return refunded and gave back (format 5); zero for other
/// requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRecord {
    refunded_minor: i64,
    points_recredited: i64,
}

impl<Purchase, Tail> ReceiptRecord<Purchase, Tail, ()> {
    /// The same receipt with its purchase converted by `convert`, `tail`
    /// after it and nothing of its basket beyond its lines, which formats
    /// before 8 did not keep.
    pub fn upgrade<New>(
        self,
        convert: impl Fn(Purchase) -> New,
        tail: ReturnRecord,
    ) -> ReceiptRecord<New> {
        ReceiptRecord {
            kind: self.kind,
            member_id: self.member_id,
            fingerprint: self.fingerprint,
            actor: self.actor,
            points: self.points,
            capped: self.capped,
            tier_changes: self.tier_changes,
            purchase: self.purchase.map(convert),
            tail,
            basket: BasketRecord::default(),
        }
    }
}

/// Never reorder: the index is what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum KindRecord {
    Purchase,
    Return,
    Activity,
    Adjustment,
    Redemption,
    /// Appended: receipts written before it decode as they did.
    Override,
    /// Appended in format 9.
    Close,
    /// Appended in format 9.
    Reopen,
    /// Appended in format 10.
    Merge,
    /// Appended in format 10.
    Erase,
}

/// A purchase's track (format 5: with its lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseRecord {
    pub(super) amount_minor: i64,
    pub(super) points: i64,
    pub(super) occurred_at: i64,
    pub(super) returned_minor: i64,
    pub(super) points_reversed: i64,
    pub(super) redeemable_reversed: i64,
    pub(super) points_lapsed: i64,
    pub(super) lines: Vec<LineRecord>,
}

/// One line of a purchase's track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRecord {
    sku: String,
    quantity: i64,
    amount_minor: i64,
    points: i64,
    returned_quantity: i64,
    returned_minor: i64,
    points_reversed: i64,
}

impl From<&LineTrack> for LineRecord {
    fn from(l: &LineTrack) -> Self {
        Self {
            sku: l.sku.clone(),
            quantity: l.quantity,
            amount_minor: l.amount_minor,
            points: l.points,
            returned_quantity: l.returned_quantity,
            returned_minor: l.returned_minor,
            points_reversed: l.points_reversed,
        }
    }
}

impl From<LineRecord> for LineTrack {
    fn from(l: LineRecord) -> Self {
        Self {
            sku: l.sku,
            quantity: l.quantity,
            amount_minor: l.amount_minor,
            points: l.points,
            returned_quantity: l.returned_quantity,
            returned_minor: l.returned_minor,
            points_reversed: l.points_reversed,
            qualifies: true,
        }
    }
}

/// A member id merged into another (`a/{member_id}`, format 10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    member_id: String,
    into: String,
    at: i64,
    reason: String,
}

impl From<&Alias> for AliasRecord {
    fn from(a: &Alias) -> Self {
        Self {
            member_id: a.member_id.clone(),
            into: a.into.clone(),
            at: micros(a.at),
            reason: a.reason.clone(),
        }
    }
}

impl TryFrom<AliasRecord> for Alias {
    type Error = BadTime;

    fn try_from(a: AliasRecord) -> Result<Self, BadTime> {
        Ok(Self {
            member_id: a.member_id,
            into: a.into,
            at: time(a.at)?,
            reason: a.reason,
        })
    }
}

/// The record of an erasure (`e/{pseudonym}`, format 10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRecord {
    pseudonym: String,
    at: i64,
    actor: String,
    reason: String,
}

impl From<&Erasure> for ErasureRecord {
    fn from(e: &Erasure) -> Self {
        Self {
            pseudonym: e.pseudonym.clone(),
            at: micros(e.at),
            actor: e.actor.clone(),
            reason: e.reason.clone(),
        }
    }
}

impl TryFrom<ErasureRecord> for Erasure {
    type Error = BadTime;

    fn try_from(e: ErasureRecord) -> Result<Self, BadTime> {
        Ok(Self {
            pseudonym: e.pseudonym,
            at: time(e.at)?,
            actor: e.actor,
            reason: e.reason,
        })
    }
}

/// The redemptions against one order (`o/{member_id} 0xFF {order_id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    redeemed: i64,
    recredited: i64,
}

impl From<&OrderRedemptions> for OrderRecord {
    fn from(o: &OrderRedemptions) -> Self {
        Self {
            redeemed: o.redeemed,
            recredited: o.recredited,
        }
    }
}

impl TryFrom<OrderRecord> for OrderRedemptions {
    type Error = BadTime;

    fn try_from(o: OrderRecord) -> Result<Self, BadTime> {
        Ok(Self {
            redeemed: o.redeemed,
            recredited: o.recredited,
        })
    }
}

impl From<&Receipt> for ReceiptRecord {
    fn from(r: &Receipt) -> Self {
        Self {
            kind: match r.kind {
                RequestKind::Purchase => KindRecord::Purchase,
                RequestKind::Return => KindRecord::Return,
                RequestKind::Activity => KindRecord::Activity,
                RequestKind::Adjustment => KindRecord::Adjustment,
                RequestKind::Redemption => KindRecord::Redemption,
                RequestKind::Override => KindRecord::Override,
                RequestKind::Close => KindRecord::Close,
                RequestKind::Reopen => KindRecord::Reopen,
                RequestKind::Merge => KindRecord::Merge,
                RequestKind::Erase => KindRecord::Erase,
            },
            member_id: r.member_id.clone(),
            fingerprint: r.fingerprint.0,
            actor: r.actor.clone(),
            points: r.points,
            capped: r.capped,
            tier_changes: r.tier_changes.clone(),
            purchase: r.purchase.as_ref().map(|p| PurchaseRecord {
                amount_minor: p.amount_minor,
                points: p.points,
                occurred_at: micros(p.occurred_at),
                returned_minor: p.returned_minor,
                points_reversed: p.points_reversed,
                redeemable_reversed: p.redeemable_reversed,
                points_lapsed: p.points_lapsed,
                lines: p.lines.iter().map(LineRecord::from).collect(),
            }),
            basket: r
                .purchase
                .as_ref()
                .map_or_else(BasketRecord::default, |p| BasketRecord {
                    minimums: p.minimums.iter().map(MinimumRecord::from).collect(),
                    not_qualifying: (0_u32..)
                        .zip(&p.lines)
                        .filter(|(_, line)| !line.qualifies)
                        .map(|(index, _)| index)
                        .collect(),
                }),
            tail: ReturnRecord {
                refunded_minor: r.refunded_minor,
                points_recredited: r.points_recredited,
            },
        }
    }
}

impl TryFrom<ReceiptRecord> for Receipt {
    type Error = BadTime;

    fn try_from(r: ReceiptRecord) -> Result<Self, BadTime> {
        let basket = r.basket;
        let purchase = r
            .purchase
            .map(|p| {
                let mut lines: Vec<LineTrack> = p.lines.into_iter().map(LineTrack::from).collect();
                for index in basket.not_qualifying {
                    if let Some(line) = usize::try_from(index).ok().and_then(|i| lines.get_mut(i)) {
                        line.qualifies = false;
                    }
                }
                Ok::<_, BadTime>(PurchaseTrack {
                    amount_minor: p.amount_minor,
                    points: p.points,
                    occurred_at: time(p.occurred_at)?,
                    returned_minor: p.returned_minor,
                    points_reversed: p.points_reversed,
                    redeemable_reversed: p.redeemable_reversed,
                    points_lapsed: p.points_lapsed,
                    lines,
                    minimums: basket
                        .minimums
                        .into_iter()
                        .map(MinimumTrack::from)
                        .collect(),
                })
            })
            .transpose()?;
        Ok(Receipt {
            kind: match r.kind {
                KindRecord::Purchase => RequestKind::Purchase,
                KindRecord::Return => RequestKind::Return,
                KindRecord::Activity => RequestKind::Activity,
                KindRecord::Adjustment => RequestKind::Adjustment,
                KindRecord::Redemption => RequestKind::Redemption,
                KindRecord::Override => RequestKind::Override,
                KindRecord::Close => RequestKind::Close,
                KindRecord::Reopen => RequestKind::Reopen,
                KindRecord::Merge => RequestKind::Merge,
                KindRecord::Erase => RequestKind::Erase,
            },
            member_id: r.member_id,
            fingerprint: Fingerprint(r.fingerprint),
            actor: r.actor,
            points: r.points,
            capped: r.capped,
            tier_changes: r.tier_changes,
            purchase,
            refunded_minor: r.tail.refunded_minor,
            points_recredited: r.tail.points_recredited,
        })
    }
}

/// One tier change (`h/{seq}`). Generic over what follows the rules
/// version, so that a migration can read an entry of format 4, which ended
/// there (`()` is no bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord<Tail = Option<AtRiskRecord>> {
    seq: u64,
    member_id: String,
    from_tier: String,
    to_tier: String,
    kind: ChangeRecord,
    at: i64,
    reason: String,
    rules_version: String,
    at_risk: Tail,
}

/// What an AT_RISK event tells (format 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtRiskRecord {
    demotion_at: i64,
    to_stay: Vec<(String, i64)>,
}

impl HistoryRecord<()> {
    /// The same entry of format 4, which knew no AT_RISK events.
    pub fn upgrade(self) -> HistoryRecord {
        HistoryRecord {
            seq: self.seq,
            member_id: self.member_id,
            from_tier: self.from_tier,
            to_tier: self.to_tier,
            kind: self.kind,
            at: self.at,
            reason: self.reason,
            rules_version: self.rules_version,
            at_risk: None,
        }
    }
}

/// Never reorder: the index is what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum ChangeRecord {
    Initial,
    Promotion,
    Demotion,
    Manual,
    AtRisk,
    Retained,
    Closed,
    Reopened,
    /// Appended in format 10.
    Merged,
}

impl From<&HistoryEntry> for HistoryRecord {
    fn from(e: &HistoryEntry) -> Self {
        Self {
            seq: e.seq,
            member_id: e.member_id.clone(),
            from_tier: e.change.from_tier.clone(),
            to_tier: e.change.to_tier.clone(),
            kind: match e.change.kind {
                ChangeKind::Initial => ChangeRecord::Initial,
                ChangeKind::Promotion => ChangeRecord::Promotion,
                ChangeKind::Demotion => ChangeRecord::Demotion,
                ChangeKind::Manual => ChangeRecord::Manual,
                ChangeKind::AtRisk => ChangeRecord::AtRisk,
                ChangeKind::Retained => ChangeRecord::Retained,
                ChangeKind::Closed => ChangeRecord::Closed,
                ChangeKind::Reopened => ChangeRecord::Reopened,
                ChangeKind::Merged => ChangeRecord::Merged,
            },
            at: micros(e.change.at),
            reason: e.change.reason.clone(),
            rules_version: e.rules_version.clone(),
            at_risk: e.change.at_risk.as_ref().map(|r| AtRiskRecord {
                demotion_at: micros(r.demotion_at),
                to_stay: r.to_stay.clone(),
            }),
        }
    }
}

impl TryFrom<HistoryRecord> for HistoryEntry {
    type Error = BadTime;

    fn try_from(r: HistoryRecord) -> Result<Self, BadTime> {
        Ok(HistoryEntry {
            seq: r.seq,
            member_id: r.member_id,
            change: Change {
                from_tier: r.from_tier,
                to_tier: r.to_tier,
                kind: match r.kind {
                    ChangeRecord::Initial => ChangeKind::Initial,
                    ChangeRecord::Promotion => ChangeKind::Promotion,
                    ChangeRecord::Demotion => ChangeKind::Demotion,
                    ChangeRecord::Manual => ChangeKind::Manual,
                    ChangeRecord::AtRisk => ChangeKind::AtRisk,
                    ChangeRecord::Retained => ChangeKind::Retained,
                    ChangeRecord::Closed => ChangeKind::Closed,
                    ChangeRecord::Reopened => ChangeKind::Reopened,
                    ChangeRecord::Merged => ChangeKind::Merged,
                },
                at: time(r.at)?,
                reason: r.reason,
                at_risk: r
                    .at_risk
                    .map(|a| {
                        Ok::<_, BadTime>(AtRisk {
                            demotion_at: time(a.demotion_at)?,
                            to_stay: a.to_stay,
                        })
                    })
                    .transpose()?,
            },
            rules_version: r.rules_version,
        })
    }
}

/// A rules version that went live (`r/{n}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesVersionRecord {
    version: String,
    content_hash: String,
    program: String,
    activated_at: i64,
    text: String,
}

impl From<&RulesVersion> for RulesVersionRecord {
    fn from(v: &RulesVersion) -> Self {
        Self {
            version: v.version.clone(),
            content_hash: v.content_hash.clone(),
            program: v.program.clone(),
            activated_at: micros(v.activated_at),
            text: v.text.clone(),
        }
    }
}

impl TryFrom<RulesVersionRecord> for RulesVersion {
    type Error = BadTime;

    fn try_from(r: RulesVersionRecord) -> Result<Self, BadTime> {
        Ok(RulesVersion {
            version: r.version,
            content_hash: r.content_hash,
            program: r.program,
            activated_at: time(r.activated_at)?,
            text: r.text,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Golden bytes: each record type encoded from a fixed value must give
    //! exactly these bytes. If one of these tests fails, the data format
    //! changed: either undo the change, or raise the format version, add a
    //! migration from the old records, and only then update the bytes.

    use chrono::TimeZone;

    use super::*;
    use crate::store::codec::{decode, encode};

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 10, 0, 0)
            .single()
            .expect("valid")
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The bytes written in `text` as hex.
    pub(crate) fn from_hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect()
    }

    /// Encodes `record`, compares with `pinned`, and checks that it
    /// decodes back to itself.
    fn pinned<R>(record: &R, pinned: &str)
    where
        R: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let bytes = encode(record);
        assert_eq!(hex(&bytes), pinned);
        let back: R = decode(b"test", &bytes).expect("decodes");
        assert_eq!(&back, record);
    }

    pub(crate) fn member() -> MemberState {
        let mut m = MemberState::new("ana", "bronze", at(1));
        m.attributes.insert("region".into(), "north".into());
        m.tier.tier_id = "silver".into();
        m.tier.retain_failing_since = Some(at(2));
        m.tier.tier_override = Some(TierOverride {
            tier_id: "gold".into(),
            mode: OverrideMode::Floor,
            until: Some(at(20)),
            reason: "vip".into(),
        });
        m.record_purchase(
            "p1",
            60_000,
            600,
            at(1),
            Some(at(1) + chrono::Months::new(12)),
        );
        m.record_activity("v1", "review", 50, at(2), None);
        m.points_debt = 3;
        m.points_expired = 4;
        m.points_redeemed = 5;
        m
    }

    #[test]
    fn a_member_record_is_pinned() {
        let mut m = member();
        m.redeem(7, Some("tote"), at(3)).expect("enough points");
        m.redeem(1, None, at(3)).expect("enough points");
        m.recredit("o1", 2, at(4), None);
        m.closed = Some(Closure {
            at: at(5),
            reason: "moved away".into(),
            points_forfeited: 9,
        });
        let bytes = crate::store::codec::encode_member_record(&MemberRecord::from(&m));
        assert_eq!(hex(&bytes), MEMBER);
        let back = crate::store::member_from_bytes(b"m/ana", &bytes).expect("decodes");
        assert_eq!(back, m);
        let old = crate::store::member_from_bytes(b"m/ana", &from_hex(MEMBER_FORMAT_8));
        assert_eq!(
            old.expect("a member of format 8 reads as it is"),
            member(),
            "no redemptions by reward, nothing given back"
        );
    }

    #[test]
    fn a_receipt_record_is_pinned() {
        let mut track = PurchaseTrack::new(60_000, 600, at(1));
        track.returned_minor = 1;
        track.points_reversed = 2;
        track.redeemable_reversed = 3;
        track.points_lapsed = 4;
        track.lines = vec![LineTrack {
            returned_quantity: 1,
            returned_minor: 1,
            points_reversed: 2,
            ..LineTrack::new("sku-1", 2, 60_000, 600)
        }];
        let without_minimums = track.clone();
        track.lines[0].qualifies = false;
        track.minimums = vec![MinimumTrack {
            minimum: Minimum {
                quantity: 3,
                amount_minor: 3_000,
            },
            lines: vec![MinimumLine {
                index: 0,
                points: 50,
            }],
        }];
        let receipt = Receipt {
            kind: RequestKind::Purchase,
            member_id: "ana".into(),
            fingerprint: Fingerprint([7; 32]),
            actor: "till-1".into(),
            points: 600,
            capped: false,
            tier_changes: vec![1, 2],
            purchase: Some(track),
            refunded_minor: 5,
            points_recredited: 6,
        };
        let bytes = crate::store::receipt_to_bytes(&receipt);
        assert_eq!(hex(&bytes), RECEIPT);
        let back = crate::store::receipt_from_bytes(b"test", &bytes).expect("decodes");
        assert_eq!(back, receipt);
        let before = Receipt {
            purchase: Some(without_minimums),
            ..receipt
        };
        let old = crate::store::receipt_from_bytes(b"test", &from_hex(RECEIPT_FORMAT_7));
        assert_eq!(
            old.expect("a format-7 receipt reads as it is"),
            before,
            "nothing of its basket beyond its lines: every line counts"
        );
    }

    #[test]
    fn an_order_record_is_pinned() {
        let order = OrderRedemptions {
            redeemed: 500,
            recredited: 250,
        };
        pinned(&OrderRecord::from(&order), ORDER);
        assert_eq!(
            OrderRedemptions::try_from(OrderRecord::from(&order)),
            Ok(order)
        );
    }

    #[test]
    fn a_history_record_is_pinned() {
        let entry = HistoryEntry {
            seq: 9,
            member_id: "ana".into(),
            change: Change {
                at_risk: Some(AtRisk {
                    demotion_at: at(31),
                    to_stay: vec![("qualifying_points".into(), 120)],
                }),
                ..Change::new(
                    ChangeKind::AtRisk,
                    "silver",
                    "silver",
                    at(1),
                    "at risk".into(),
                )
            },
            rules_version: "2026.1".into(),
        };
        pinned(&HistoryRecord::from(&entry), HISTORY);
        let back = HistoryEntry::try_from(HistoryRecord::from(&entry)).expect("converts");
        assert_eq!(back, entry);
    }

    /// Format 10: an alias, and the kinds a merge writes (appended, so
    /// every earlier kind keeps its byte).
    #[test]
    fn an_alias_and_a_merge_s_kinds_are_pinned() {
        let alias = Alias {
            member_id: "card".into(),
            into: "web".into(),
            at: at(4),
            reason: "same customer".into(),
        };
        pinned(&AliasRecord::from(&alias), ALIAS);
        let back = Alias::try_from(AliasRecord::from(&alias)).expect("converts");
        assert_eq!(back, alias);
        assert_eq!(hex(&encode(&KindRecord::Merge)), "0408");
        assert_eq!(hex(&encode(&ChangeRecord::Merged)), "0408");
    }

    #[test]
    fn a_rules_version_record_is_pinned() {
        let version = RulesVersion {
            version: "2026.1".into(),
            content_hash: "ab".into(),
            program: "acme".into(),
            activated_at: at(1),
            text: "program: acme\n".into(),
        };
        pinned(&RulesVersionRecord::from(&version), RULES_VERSION);
        let back = RulesVersion::try_from(RulesVersionRecord::from(&version)).expect("converts");
        assert_eq!(back, version);
    }

    const MEMBER: &str = "0803616e6180a0be88f1fca5060106726567696f6e056e6f7274680673696c76657280a0be88f1fca5060180a0f9e5f481a6060104676f6c64000180a09ff8b7dca606037669700004b8a55ac0a90702b0090000c0a90700b009000000baa55a00006402010672657669657702000064000000bca55a0000000000000000001000bea55a0000000000000000000300c0a9070202703180a0be88f1fca5060180a0ddc9c2a8b406a00902763180a0f9e5f481a606006402081602bca55a0104746f7465020e00bea55a00040104746f7465020180a0aafeff90a6060a6d6f766564206177617912";
    /// A member as formats 5 to 8 stored it (without the redemptions by
    /// reward).
    const MEMBER_FORMAT_8: &str = "0403616e6180a0be88f1fca5060106726567696f6e056e6f7274680673696c76657280a0be88f1fca5060180a0f9e5f481a6060104676f6c64000180a09ff8b7dca606037669700002b8a55ac0a90702b0090000c0a90700b009000000baa55a00006402010672657669657702000064000000c0a9070202703180a0be88f1fca5060180a0ddc9c2a8b406b00902763180a0f9e5f481a606006406080a";
    const RECEIPT: &str = "060003616e6107070707070707070707070707070707070707070707070707070707070707070674696c6c2d31b0090002010201c0a907b00980a0be88f1fca506020406080105736b752d3104c0a907b0090202040a0c0106f02e0100640100";
    /// The same receipt, without minimums, as formats 5 to 7 wrote it.
    const RECEIPT_FORMAT_7: &str = "040003616e6107070707070707070707070707070707070707070707070707070707070707070674696c6c2d31b0090002010201c0a907b00980a0be88f1fca506020406080105736b752d3104c0a907b0090202040a0c";
    const ORDER: &str = "04e807f403";
    const ALIAS: &str = "0404636172640377656280a0efa0fc8ba6060d73616d6520637573746f6d6572";
    const HISTORY: &str = "040903616e610673696c7665720673696c7665720480a0be88f1fca506076174207269736b06323032362e310180a0a8fce093a70601117175616c696679696e675f706f696e7473f001";
    const RULES_VERSION: &str =
        "0406323032362e310261620461636d6580a0be88f1fca5060e70726f6772616d3a2061636d650a";
}
