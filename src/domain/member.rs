//! A member's state and the invariants that keep it exact.
//!
//! Pure data and arithmetic, no I/O. Two structures keep every request's
//! work bounded by the qualification window, never by a member's history:
//!
//! - **Day totals**: spend, purchases and qualifying points per UTC day,
//!   summed over the window when metrics are needed. Days older than
//!   [`DAY_RETENTION`] are dropped (their spend stays in lifetime value).
//! - **Points lots**: one lot per earning, kept in expiry order, so that
//!   expiry and redemption (oldest first) touch only the lots they consume.
//!   Lots live only until they are used up or expire; points that never
//!   expire share one lot. Either way their number is bounded by the expiry
//!   period. A lot that expires is reported as a [`Lapse`], so that the
//!   purchase it came from can remember its points left as breakage.
//!
//! Every sum saturates (`saturating_add`/`saturating_sub`) instead of
//! overflowing: no input can make the arithmetic panic or wrap, and no real
//! program comes near `i64::MAX` cents.
//!
//! Invariant: `points_balance = sum(lots.remaining) - points_debt`, where
//! the debt is what returns and corrections took back beyond the lots
//! (repaid first by the next earning). Redemption never creates debt.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde::Serialize;

use super::decide::{Metrics, TierState};
use crate::rules::{Period, Window};

/// How long day totals are kept: the longest window plus a month of slack
/// for evaluations a little in the past.
pub const DAY_RETENTION: TimeDelta = TimeDelta::days(31 * (Window::MAX_MONTHS as i64 + 1));

/// Totals of one UTC day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DayTotals {
    /// Spend that day, minor units (returns netted).
    pub spend_minor: i64,
    /// Purchases that day (fully returned ones not counted).
    pub purchases: i64,
    /// Status points earned that day (returns and corrections netted).
    pub qualifying_points: i64,
    /// Activities that day.
    pub activities: i64,
    /// Activities that day by kind, for the per-day and per-month caps.
    pub activity_kinds: BTreeMap<String, i64>,
    /// Spend of the purchases made that day, minor units, returns not
    /// netted: with `refunded_minor`, what reports call net spend in a
    /// period (purchases in it minus returns made in it).
    pub purchased_minor: i64,
    /// Refunds made that day (the day of the return, not of the purchase),
    /// minor units.
    pub refunded_minor: i64,
    /// Redeemable points that came in that day (purchases, activities,
    /// positive adjustments).
    pub points_earned: i64,
    /// Redeemable points taken back that day (returns, negative
    /// adjustments).
    pub points_taken_back: i64,
    /// Points redeemed that day.
    pub points_redeemed: i64,
    /// Points that lapsed that day (their lot's expiry), breakage.
    pub points_lapsed: i64,
    /// Redeemed points given back that day by returns of the orders they
    /// paid for: already netted out of `points_redeemed`, kept apart so
    /// that reports can show redemptions before them.
    pub points_given_back: i64,
    /// Redemptions of catalogue rewards that day, by reward id: what their
    /// limits count, and what reports show by reward.
    pub rewards: BTreeMap<String, Redeemed>,
}

/// Redemptions of one reward (in a day, or in a report's period).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Redeemed {
    /// How many times.
    pub count: i64,
    /// Points they cost.
    pub points: i64,
}

impl Redeemed {
    /// Both sums, with `other`'s added.
    pub fn add(&mut self, other: Redeemed) {
        self.count = self.count.saturating_add(other.count);
        self.points = self.points.saturating_add(other.points);
    }
}

impl DayTotals {
    /// Adds `other`'s totals of the same day to these (two members'
    /// days, when they merge).
    pub fn add(&mut self, other: &DayTotals) {
        let sum = |a: &mut i64, b: i64| *a = a.saturating_add(b);
        sum(&mut self.spend_minor, other.spend_minor);
        sum(&mut self.purchases, other.purchases);
        sum(&mut self.qualifying_points, other.qualifying_points);
        sum(&mut self.activities, other.activities);
        for (kind, count) in &other.activity_kinds {
            sum(self.activity_kinds.entry(kind.clone()).or_default(), *count);
        }
        sum(&mut self.purchased_minor, other.purchased_minor);
        sum(&mut self.refunded_minor, other.refunded_minor);
        sum(&mut self.points_earned, other.points_earned);
        sum(&mut self.points_taken_back, other.points_taken_back);
        sum(&mut self.points_redeemed, other.points_redeemed);
        sum(&mut self.points_lapsed, other.points_lapsed);
        sum(&mut self.points_given_back, other.points_given_back);
        for (reward, redeemed) in &other.rewards {
            self.rewards
                .entry(reward.clone())
                .or_default()
                .add(*redeemed);
        }
    }

    /// How the redeemable balance moved that day. Summed over the days
    /// after a date, it takes today's balance back to that date's.
    pub fn points_moved(&self) -> i64 {
        self.points_earned
            .saturating_sub(self.points_taken_back)
            .saturating_sub(self.points_redeemed)
            .saturating_sub(self.points_lapsed)
    }
}

/// Points earned together, expiring together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointsLot {
    /// The transaction that earned them.
    pub source: String,
    /// When the points were earned.
    pub earned_at: DateTime<Utc>,
    /// When they lapse; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// Points not yet redeemed, expired or taken back.
    pub remaining: i64,
}

/// Points of one lot that expired unredeemed (breakage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lapse {
    /// The transaction that had earned them.
    pub source: String,
    /// How many lapsed.
    pub points: i64,
}

/// Everything tierd keeps about one member. Serialized (for a member's
/// export) as it is, its days keyed by their date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberState {
    /// The id the till sends.
    pub member_id: String,
    /// When the member joined (anchors the anniversary year).
    pub enrolled_at: DateTime<Utc>,
    /// Descriptive attributes set with `UpsertMember`.
    pub attributes: BTreeMap<String, String>,
    /// Standing on the ladder.
    pub tier: TierState,
    /// Day number (days since 0001-01-01) -> totals of that day.
    #[serde(serialize_with = "by_date")]
    pub days: BTreeMap<i32, DayTotals>,
    /// Net spend since the first event, minor units.
    pub lifetime_value_minor: i64,
    /// In expiry order (never-expiring lots last).
    pub lots: VecDeque<PointsLot>,
    /// Points owed after returns took back more than the lots held.
    pub points_debt: i64,
    /// Points that expired unredeemed (breakage), all time.
    pub points_expired: i64,
    /// Points redeemed, all time.
    pub points_redeemed: i64,
    /// Redemptions of each catalogue reward, all time (what a limit over
    /// the membership counts; day totals are pruned, these are not).
    pub rewards_redeemed: BTreeMap<String, i64>,
    /// Set while the account is closed (`CloseMember`): it earns and
    /// redeems nothing and its tier stands still until it is reopened.
    pub closed: Option<Closure>,
}

/// Why and when an account was closed, and what it gave up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closure {
    /// When it was closed.
    pub at: DateTime<Utc>,
    /// Why, as customer service wrote it.
    pub reason: String,
    /// Points forfeited on closing (breakage that day); 0 when they were
    /// kept for a re-open.
    pub points_forfeited: i64,
}

/// A redemption asked for more than the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("insufficient points: the balance is {balance}")]
pub struct InsufficientPoints {
    /// The balance at the time of the request.
    pub balance: i64,
}

/// What a return takes back of one line of its purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineBack {
    /// The line's position in the purchase's basket.
    pub index: usize,
    /// Units back.
    pub quantity: i64,
    /// Money back, minor units.
    pub amount_minor: i64,
    /// Status points taken back.
    pub points: i64,
}

/// What of a purchase counts toward the tier, on the rules' `qualifying`
/// basis: its spend (and lifetime value, and the reports' spend), its
/// status points, and whether it counts as a purchase at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qualified {
    /// Spend that counts, minor units.
    pub amount_minor: i64,
    /// Status points.
    pub points: i64,
    /// False for a purchase none of whose lines count (a gift card).
    pub counts: bool,
}

/// What a return takes back from the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeBack {
    /// Money refunded, minor units.
    pub amount_minor: i64,
    /// Of it, what counted toward the tier (the rules' `qualifying`
    /// basis): off the purchase's day and lifetime value, and the refund
    /// the reports count.
    pub qualifying_minor: i64,
    /// Points of the purchase taken back, whatever lines earned them.
    pub points: i64,
    /// Of them, the status points taken off the purchase's day (those of
    /// lines that count toward the tier).
    pub qualifying_points: i64,
    /// Redeemable points taken back: from the purchase's own lot first,
    /// then oldest first, then as debt.
    pub redeemable_points: i64,
    /// True when nothing of a purchase that counted is left: it no longer
    /// counts as one.
    pub fully_returned: bool,
    /// Line by line, for a purchase with a basket (the lines that moved).
    pub lines: Vec<LineBack>,
}

/// Day totals keyed by their date (`YYYY-MM-DD`) rather than their number.
fn by_date<S: serde::Serializer>(
    days: &BTreeMap<i32, DayTotals>,
    out: S,
) -> Result<S::Ok, S::Error> {
    out.collect_map(days.iter().map(|(day, totals)| {
        let date = chrono::NaiveDate::from_num_days_from_ce_opt(*day)
            .map_or_else(|| day.to_string(), |d| d.to_string());
        (date, totals)
    }))
}

/// The key of `at`'s day in [`MemberState::days`]: days since 0001-01-01 (UTC).
pub fn day_number(at: DateTime<Utc>) -> i32 {
    // The UTC date itself: `date_naive` would add the (zero) offset first,
    // which the reports, calling this for every member on every day they
    // look at, paid for.
    at.naive_utc().date().num_days_from_ce()
}

impl MemberState {
    /// A new member in `entry_tier`, enrolled at `at`.
    pub fn new(member_id: &str, entry_tier: &str, at: DateTime<Utc>) -> Self {
        Self {
            member_id: member_id.to_owned(),
            enrolled_at: at,
            attributes: BTreeMap::new(),
            tier: TierState {
                tier_id: entry_tier.to_owned(),
                since: at,
                retain_failing_since: None,
                tier_override: None,
                warned: false,
            },
            days: BTreeMap::new(),
            lifetime_value_minor: 0,
            lots: VecDeque::new(),
            points_debt: 0,
            points_expired: 0,
            points_redeemed: 0,
            rewards_redeemed: BTreeMap::new(),
            closed: None,
        }
    }

    /// Metrics over `[window_start, as_of]`, with the balance as of `as_of`.
    pub fn metrics(&self, window_start: DateTime<Utc>, as_of: DateTime<Utc>) -> Metrics {
        Metrics {
            lifetime_value_minor: self.lifetime_value_minor,
            points_balance: self.points_balance(as_of),
            ..self.window_metrics(window_start, as_of)
        }
    }

    /// The window's figures alone (spend, purchases, qualifying points,
    /// activities), for callers that take the lifetime value and balance
    /// from elsewhere (the reports, as of a past day).
    pub fn window_metrics(&self, window_start: DateTime<Utc>, as_of: DateTime<Utc>) -> Metrics {
        let mut metrics = Metrics::default();
        if window_start > as_of {
            return metrics;
        }
        let range = day_number(window_start)..=day_number(as_of);
        for totals in self.days.range(range).map(|(_, t)| t) {
            metrics.purchase_volume_minor = metrics
                .purchase_volume_minor
                .saturating_add(totals.spend_minor);
            metrics.purchase_count = metrics.purchase_count.saturating_add(totals.purchases);
            metrics.qualifying_points = metrics
                .qualifying_points
                .saturating_add(totals.qualifying_points);
            metrics.activity_count = metrics.activity_count.saturating_add(totals.activities);
        }
        metrics
    }

    /// Redeemable points as of `as_of` (lots expired by then excluded).
    pub fn points_balance(&self, as_of: DateTime<Utc>) -> i64 {
        let live = self
            .lots
            .iter()
            .filter(|lot| lot.expires_at.is_none_or(|e| e > as_of))
            .fold(0_i64, |sum, lot| sum.saturating_add(lot.remaining));
        live.saturating_sub(self.points_debt)
    }

    fn day(&mut self, at: DateTime<Utc>) -> &mut DayTotals {
        self.days.entry(day_number(at)).or_default()
    }

    /// Records a purchase of `amount_minor` that earned `points` (status
    /// and redeemable), expiring at `expires_at`, all of it counting
    /// toward the tier: the tests' shorthand for
    /// [`MemberState::record_qualified_purchase`].
    #[cfg(test)]
    pub fn record_purchase(
        &mut self,
        source: &str,
        amount_minor: i64,
        points: i64,
        occurred_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let qualified = Qualified {
            amount_minor,
            points,
            counts: true,
        };
        self.record_qualified_purchase(source, qualified, points, occurred_at, expires_at);
    }

    /// Records a purchase that earned `points` (redeemable, expiring at
    /// `expires_at`), of which `qualified` counts toward the tier.
    pub fn record_qualified_purchase(
        &mut self,
        source: &str,
        qualified: Qualified,
        points: i64,
        occurred_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let day = self.day(occurred_at);
        day.spend_minor = day.spend_minor.saturating_add(qualified.amount_minor);
        day.purchased_minor = day.purchased_minor.saturating_add(qualified.amount_minor);
        day.purchases = day.purchases.saturating_add(i64::from(qualified.counts));
        day.qualifying_points = day.qualifying_points.saturating_add(qualified.points);
        day.points_earned = day.points_earned.saturating_add(points);
        self.lifetime_value_minor = self
            .lifetime_value_minor
            .saturating_add(qualified.amount_minor);
        self.earn(source, points, occurred_at, expires_at);
    }

    /// Takes back part of the purchase `original` made at `original_at`: its
    /// spend and status points on the purchase's day (what tiers count),
    /// its redeemable points as [`TakeBack`] says. The refund and the points
    /// taken back are also booked on the day of the return, `returned_at`
    /// (what reports count).
    pub fn record_return(
        &mut self,
        original: &str,
        original_at: DateTime<Utc>,
        returned_at: DateTime<Utc>,
        back: &TakeBack,
    ) {
        let day = self.day(original_at);
        day.spend_minor = day.spend_minor.saturating_sub(back.qualifying_minor);
        day.qualifying_points = day.qualifying_points.saturating_sub(back.qualifying_points);
        if back.fully_returned {
            day.purchases = day.purchases.saturating_sub(1);
        }
        let day = self.day(returned_at);
        day.refunded_minor = day.refunded_minor.saturating_add(back.qualifying_minor);
        day.points_taken_back = day.points_taken_back.saturating_add(back.redeemable_points);
        self.lifetime_value_minor = self
            .lifetime_value_minor
            .saturating_sub(back.qualifying_minor);
        let mut owed = back.redeemable_points;
        if let Some(lot) = self.lots.iter_mut().find(|lot| lot.source == original) {
            let taken = owed.min(lot.remaining);
            lot.remaining = lot.remaining.saturating_sub(taken);
            owed = owed.saturating_sub(taken);
        }
        self.take_back(owed);
    }

    /// Gives back `points` that were redeemed against an order refunded at
    /// `at`: they are redeemable again (expiring at `expires_at`) and no
    /// longer count as redeemed, that day and all time; they are not
    /// qualifying points (they were earned once already).
    pub fn recredit(
        &mut self,
        source: &str,
        points: i64,
        at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let day = self.day(at);
        day.points_redeemed = day.points_redeemed.saturating_sub(points);
        day.points_given_back = day.points_given_back.saturating_add(points);
        self.points_redeemed = self.points_redeemed.saturating_sub(points);
        self.earn(source, points, at, expires_at);
    }

    /// A staff adjustment at `at`: positive points are earned (and expire
    /// at `expires_at` like any others), negative ones are taken back; both
    /// count toward qualifying points on that day.
    pub fn adjust(
        &mut self,
        source: &str,
        points: i64,
        at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let day = self.day(at);
        day.qualifying_points = day.qualifying_points.saturating_add(points);
        if points >= 0 {
            day.points_earned = day.points_earned.saturating_add(points);
            self.earn(source, points, at, expires_at);
        } else {
            day.points_taken_back = day
                .points_taken_back
                .saturating_add(points.saturating_neg());
            self.take_back(points.saturating_neg());
        }
    }

    /// Spends `points` of the balance as of `at`, oldest lots first, for
    /// the catalogue's `reward` if one is named (counted that day and all
    /// time).
    ///
    /// # Errors
    /// [`InsufficientPoints`] when the balance is smaller; nothing changes.
    pub fn redeem(
        &mut self,
        points: i64,
        reward: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), InsufficientPoints> {
        let balance = self.points_balance(at);
        if points > balance {
            return Err(InsufficientPoints { balance });
        }
        let taken = self.take_oldest_first(points, Some(at));
        debug_assert_eq!(taken, points);
        self.points_redeemed = self.points_redeemed.saturating_add(points);
        let day = self.day(at);
        day.points_redeemed = day.points_redeemed.saturating_add(points);
        if let Some(reward) = reward {
            let one = Redeemed { count: 1, points };
            day.rewards.entry(reward.to_owned()).or_default().add(one);
            let all_time = self.rewards_redeemed.entry(reward.to_owned()).or_default();
            *all_time = all_time.saturating_add(1);
        }
        self.drop_empty_lots();
        Ok(())
    }

    /// Redemptions of `reward` in the `period` holding `at`'s day (all
    /// time for the membership): what the reward's limit in that period
    /// counts.
    pub fn rewards_had(&self, reward: &str, period: Period, at: DateTime<Utc>) -> i64 {
        let Some(start) = period.start(at.date_naive()) else {
            return self.rewards_redeemed.get(reward).copied().unwrap_or(0);
        };
        self.days
            .range(start.num_days_from_ce()..=day_number(at))
            .filter_map(|(_, t)| t.rewards.get(reward))
            .fold(0_i64, |sum, r| sum.saturating_add(r.count))
    }

    /// Expires every lot whose time has come by `as_of`; returns what lapsed,
    /// lot by lot.
    pub fn expire(&mut self, as_of: DateTime<Utc>) -> Vec<Lapse> {
        let mut lapsed = Vec::new();
        while let Some(lot) = self.lots.front() {
            if lot.expires_at.is_none_or(|at| at > as_of) {
                break;
            }
            if let Some(lot) = self.lots.pop_front() {
                self.points_expired = self.points_expired.saturating_add(lot.remaining);
                if let Some(expired_at) = lot.expires_at {
                    let day = self.day(expired_at);
                    day.points_lapsed = day.points_lapsed.saturating_add(lot.remaining);
                }
                lapsed.push(Lapse {
                    source: lot.source,
                    points: lot.remaining,
                });
            }
        }
        lapsed
    }

    /// Activities of `kind` already recorded on `at`'s day and in its
    /// calendar month.
    pub fn activities_of(&self, kind: &str, at: DateTime<Utc>) -> (i64, i64) {
        let day = day_number(at);
        let first = day_number(at.with_day(1).unwrap_or(at));
        let of_kind = |t: &DayTotals| t.activity_kinds.get(kind).copied().unwrap_or(0);
        let today = self.days.get(&day).map_or(0, of_kind);
        let month = self
            .days
            .range(first..=day)
            .fold(0_i64, |sum, (_, t)| sum.saturating_add(of_kind(t)));
        (today, month)
    }

    /// Records an activity on `at`'s day, earning `points` (status and
    /// redeemable; 0 when a cap was reached: it still counts as engagement).
    pub fn record_activity(
        &mut self,
        source: &str,
        kind: &str,
        points: i64,
        at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let day = self.day(at);
        day.activities = day.activities.saturating_add(1);
        let of_kind = day.activity_kinds.entry(kind.to_owned()).or_default();
        *of_kind = of_kind.saturating_add(1);
        day.qualifying_points = day.qualifying_points.saturating_add(points);
        day.points_earned = day.points_earned.saturating_add(points);
        if points > 0 {
            self.earn(source, points, at, expires_at);
        }
    }

    /// Forfeits the whole balance at `at`: what returns made the member owe
    /// is settled from the lots first, then every point left lapses that
    /// day (breakage, reported lot by lot). Returns what lapsed.
    pub fn forfeit(&mut self, at: DateTime<Utc>) -> Vec<Lapse> {
        let repaid = self.take_oldest_first(self.points_debt, None);
        self.points_debt = self.points_debt.saturating_sub(repaid);
        self.drop_empty_lots();
        let lapsed: Vec<Lapse> = self
            .lots
            .drain(..)
            .map(|lot| Lapse {
                source: lot.source,
                points: lot.remaining,
            })
            .collect();
        let points = lapsed
            .iter()
            .fold(0_i64, |sum, lapse| sum.saturating_add(lapse.points));
        self.points_expired = self.points_expired.saturating_add(points);
        let day = self.day(at);
        day.points_lapsed = day.points_lapsed.saturating_add(points);
        lapsed
    }

    /// Takes in everything `other` holds, as if one member had done what
    /// both did: day totals added day by day, points lots kept with their
    /// earning and expiry dates (never-expiring ones in the one lot), what
    /// `other` owed settled from the lots together, the all-time figures
    /// summed, the earlier enrolment, and `other`'s attributes where these
    /// have none of the same name. The tier and the account's state are
    /// the merge's to decide ([`super::merge`]).
    pub fn absorb(&mut self, other: MemberState) {
        for (day, totals) in &other.days {
            self.days.entry(*day).or_default().add(totals);
        }
        for lot in other.lots {
            self.insert_lot(lot);
        }
        self.points_debt = self.points_debt.saturating_add(other.points_debt);
        let repaid = self.take_oldest_first(self.points_debt, None);
        self.points_debt = self.points_debt.saturating_sub(repaid);
        self.drop_empty_lots();
        self.lifetime_value_minor = self
            .lifetime_value_minor
            .saturating_add(other.lifetime_value_minor);
        self.points_expired = self.points_expired.saturating_add(other.points_expired);
        self.points_redeemed = self.points_redeemed.saturating_add(other.points_redeemed);
        for (reward, count) in other.rewards_redeemed {
            let had = self.rewards_redeemed.entry(reward).or_default();
            *had = had.saturating_add(count);
        }
        self.enrolled_at = self.enrolled_at.min(other.enrolled_at);
        for (name, value) in other.attributes {
            self.attributes.entry(name).or_insert(value);
        }
    }

    /// Drops day totals too old for any window ending at or after `now`.
    pub fn prune_days(&mut self, now: DateTime<Utc>) {
        let keep_from = day_number(now - DAY_RETENTION);
        self.days = self.days.split_off(&keep_from);
    }

    fn earn(
        &mut self,
        source: &str,
        points: i64,
        earned_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let repaid = points.min(self.points_debt).max(0);
        self.points_debt = self.points_debt.saturating_sub(repaid);
        let remaining = points.saturating_sub(repaid);
        if remaining <= 0 {
            return;
        }
        self.insert_lot(PointsLot {
            source: source.to_owned(),
            earned_at,
            expires_at,
            remaining,
        });
    }

    /// Keeps `lot` among the lots in expiry order (a late-synced purchase
    /// may expire before others).
    fn insert_lot(&mut self, lot: PointsLot) {
        if lot.expires_at.is_none() {
            // Points that never expire are interchangeable: one lot holds
            // them all, so the lots never grow with a member's history.
            if let Some(forever) = self.lots.back_mut().filter(|l| l.expires_at.is_none()) {
                forever.remaining = forever.remaining.saturating_add(lot.remaining);
                return;
            }
        }
        let position = self
            .lots
            .iter()
            .position(|l| expires_before(lot.expires_at, l.expires_at))
            .unwrap_or(self.lots.len());
        self.lots.insert(position, lot);
    }

    /// Takes `points` back from the lots, oldest first, and what they do not
    /// hold as debt.
    fn take_back(&mut self, points: i64) {
        let taken = self.take_oldest_first(points, None);
        self.points_debt = self
            .points_debt
            .saturating_add(points.saturating_sub(taken));
        self.drop_empty_lots();
    }

    /// Takes up to `points` from the lots (those still live at `live_at`,
    /// when given), oldest expiry first; returns what was taken.
    fn take_oldest_first(&mut self, points: i64, live_at: Option<DateTime<Utc>>) -> i64 {
        let mut left = points.max(0);
        for lot in self.lots.iter_mut() {
            if left == 0 {
                break;
            }
            if live_at.is_some_and(|at| lot.expires_at.is_some_and(|e| e <= at)) {
                continue;
            }
            let taken = left.min(lot.remaining);
            lot.remaining = lot.remaining.saturating_sub(taken);
            left = left.saturating_sub(taken);
        }
        points.max(0).saturating_sub(left)
    }

    fn drop_empty_lots(&mut self) {
        self.lots.retain(|lot| lot.remaining > 0);
    }
}

/// True when expiry `a` comes strictly before `b` (`None` = never).
fn expires_before(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(month: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, 12, 0, 0)
            .single()
            .expect("valid date")
    }

    fn member() -> MemberState {
        MemberState::new("m1", "bronze", at(1, 1))
    }

    /// When points earned at `earned_at` lapse after `months`.
    pub(super) fn expiry_after(
        earned_at: DateTime<Utc>,
        months: Option<u32>,
    ) -> Option<DateTime<Utc>> {
        months.and_then(|m| earned_at.checked_add_months(chrono::Months::new(m)))
    }

    fn in_months(earned_at: DateTime<Utc>, months: u32) -> Option<DateTime<Utc>> {
        expiry_after(earned_at, Some(months))
    }

    fn full_return(amount_minor: i64, points: i64) -> TakeBack {
        TakeBack {
            amount_minor,
            qualifying_minor: amount_minor,
            points,
            qualifying_points: points,
            redeemable_points: points,
            fully_returned: true,
            lines: Vec::new(),
        }
    }

    #[test]
    fn metrics_count_only_the_window() {
        let mut m = member();
        m.record_purchase("t1", 10_000, 100, at(1, 10), None);
        m.record_purchase("t2", 5_000, 50, at(3, 10), None);
        let metrics = m.metrics(at(2, 1), at(6, 1));
        assert_eq!(metrics.purchase_volume_minor, 5_000);
        assert_eq!(metrics.purchase_count, 1);
        assert_eq!(metrics.qualifying_points, 50);
        assert_eq!(metrics.lifetime_value_minor, 15_000);
        assert_eq!(metrics.points_balance, 150);
    }

    #[test]
    fn redemption_is_oldest_first_and_bounded() {
        let mut m = member();
        m.record_purchase("t1", 10_000, 100, at(1, 10), in_months(at(1, 10), 12));
        m.record_purchase("t2", 5_000, 50, at(2, 10), in_months(at(2, 10), 12));
        assert_eq!(m.redeem(120, None, at(3, 1)), Ok(()));
        assert_eq!(m.lots.len(), 1);
        assert_eq!(m.lots[0].source, "t2");
        assert_eq!(m.lots[0].remaining, 30);
        assert_eq!(
            m.redeem(31, None, at(3, 1)),
            Err(InsufficientPoints { balance: 30 })
        );
        assert_eq!(m.points_balance(at(3, 1)), 30);
        // Redeeming never lowers status points.
        assert_eq!(m.metrics(at(1, 1), at(3, 1)).qualifying_points, 150);
    }

    #[test]
    fn returns_take_back_from_their_own_lot_then_run_into_debt() {
        let mut m = member();
        m.record_purchase("t1", 10_000, 100, at(1, 10), None);
        m.record_purchase("t2", 10_000, 100, at(1, 11), None);
        m.redeem(150, None, at(1, 12)).expect("enough points");
        // One never-expiring lot holds 50: the return of t1 takes those 50
        // and owes 50.
        m.record_return("t1", at(1, 10), at(1, 12), &full_return(10_000, 100));
        assert_eq!(m.points_balance(at(1, 12)), -50);
        assert_eq!(m.points_debt, 50);
        assert_eq!(m.lifetime_value_minor, 10_000);
        assert_eq!(m.metrics(at(1, 1), at(1, 12)).purchase_count, 1);
        // The next earning repays the debt first.
        m.record_purchase("t3", 8_000, 80, at(1, 13), None);
        assert_eq!(m.points_debt, 0);
        assert_eq!(m.points_balance(at(1, 13)), 30);
    }

    #[test]
    fn points_expire_in_order_and_each_lapse_names_its_lot() {
        let mut m = member();
        m.record_purchase("late", 1_000, 10, at(3, 1), in_months(at(3, 1), 1));
        m.record_purchase("early", 1_000, 20, at(1, 1), in_months(at(1, 1), 1));
        assert_eq!(m.lots[0].source, "early");
        assert_eq!(m.points_balance(at(2, 15)), 10);
        let lapse = |source: &str, points| Lapse {
            source: source.into(),
            points,
        };
        assert_eq!(m.expire(at(2, 15)), [lapse("early", 20)]);
        assert_eq!(m.expire(at(4, 15)), [lapse("late", 10)]);
        assert_eq!(m.points_expired, 30);
        assert!(m.lots.is_empty());
    }

    #[test]
    fn redemption_never_spends_points_past_their_expiry() {
        let mut m = member();
        m.record_purchase("old", 1_000, 100, at(1, 1), in_months(at(1, 1), 1));
        m.record_purchase("new", 1_000, 10, at(3, 1), None);
        // "old" is due but not yet expired: it is not part of the balance.
        assert_eq!(
            m.redeem(20, None, at(3, 2)),
            Err(InsufficientPoints { balance: 10 })
        );
        assert_eq!(m.redeem(10, None, at(3, 2)), Ok(()));
        assert_eq!(m.lots[0].remaining, 100, "the due lot is left to lapse");
    }

    #[test]
    fn points_that_never_expire_share_one_lot() {
        let mut m = member();
        for i in 0..100 {
            m.record_purchase(&format!("t{i}"), 1_000, 10, at(1, 1), None);
        }
        assert_eq!(m.lots.len(), 1);
        assert_eq!(m.points_balance(at(12, 1)), 1_000);
        m.record_return("t5", at(1, 1), at(2, 1), &full_return(1_000, 10));
        assert_eq!(m.points_balance(at(12, 1)), 990);
    }

    #[test]
    fn old_days_are_pruned_but_lifetime_value_stays() {
        let mut m = member();
        m.record_purchase("t1", 1_000, 10, at(1, 1), None);
        m.prune_days(at(1, 1) + TimeDelta::days(3 * 365));
        assert!(m.days.is_empty());
        assert_eq!(m.lifetime_value_minor, 1_000);
    }

    #[test]
    fn sums_saturate_at_the_extremes_instead_of_overflowing() {
        let mut m = member();
        m.record_purchase("t1", i64::MAX, i64::MAX, at(1, 1), None);
        m.record_purchase("t2", i64::MAX, i64::MAX, at(1, 1), None);
        assert_eq!(m.lifetime_value_minor, i64::MAX);
        assert_eq!(m.points_balance(at(1, 1)), i64::MAX);
        let metrics = m.metrics(at(1, 1), at(1, 1));
        assert_eq!(metrics.purchase_volume_minor, i64::MAX);
        assert_eq!(metrics.qualifying_points, i64::MAX);
        // Returns beyond anything recorded, on a day with nothing on it.
        for _ in 0..3 {
            m.record_return("t9", at(2, 1), at(2, 1), &full_return(i64::MAX, i64::MAX));
        }
        assert_eq!(m.lifetime_value_minor, i64::MIN);
        let day = &m.days[&day_number(at(2, 1))];
        assert_eq!(day.spend_minor, i64::MIN);
        assert_eq!(day.purchases, -3);
        assert_eq!(m.points_debt, i64::MAX);
        m.adjust("a1", i64::MIN, at(3, 1), None);
        assert_eq!(m.points_debt, i64::MAX);
        assert_eq!(m.points_balance(at(3, 1)), i64::MIN + 1);
        m.adjust("a2", i64::MAX, at(3, 1), None);
        assert_eq!(m.points_debt, 0);
    }
}

#[cfg(test)]
mod properties {
    //! Points are conserved: whatever mix of earning, returns, redemptions,
    //! adjustments and expiry, the balance is what went in minus what went out.

    use chrono::{TimeDelta, TimeZone};
    use proptest::prelude::*;

    use super::tests::expiry_after;
    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Purchase { points: i64, day: i64 },
        Return { share: i64 },
        Redeem { points: i64 },
        Adjust { points: i64 },
        Expire { day: i64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..500_i64, 0..400_i64).prop_map(|(points, day)| Op::Purchase { points, day }),
            (1..=100_i64).prop_map(|share| Op::Return { share }),
            (1..300_i64).prop_map(|points| Op::Redeem { points }),
            (-300..300_i64).prop_map(|points| Op::Adjust { points }),
            (0..800_i64).prop_map(|day| Op::Expire { day }),
        ]
    }

    proptest! {
        #[test]
        fn points_are_conserved(ops in proptest::collection::vec(op(), 1..60)) {
            let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("valid date");
            let at = |day: i64| start + TimeDelta::days(day);
            let mut m = MemberState::new("m", "bronze", start);
            let (mut put_in, mut taken_out) = (0_i64, 0_i64);
            let mut purchases: Vec<(String, DateTime<Utc>, i64, i64)> = Vec::new();
            let mut now = start;
            for (i, op) in ops.into_iter().enumerate() {
                let source = format!("t{i}");
                match op {
                    Op::Purchase { points, day } => {
                        m.record_purchase(&source, 1_000, points, at(day), expiry_after(at(day), Some(12)));
                        put_in += points;
                        purchases.push((source, at(day), points, 0));
                    }
                    Op::Return { share } => {
                        if let Some((original, when, points, taken)) = purchases.last_mut() {
                            let back = (*points - *taken) * share / 100;
                            let take = TakeBack {
                                amount_minor: 0,
                                qualifying_minor: 0,
                                points: back,
                                qualifying_points: back,
                                redeemable_points: back,
                                fully_returned: false,
                                lines: Vec::new(),
                            };
                            m.record_return(original, *when, now, &take);
                            *taken += back;
                            taken_out += back;
                        }
                    }
                    Op::Redeem { points } => {
                        m.expire(now);
                        if m.redeem(points, None, now).is_ok() {
                            taken_out += points;
                        }
                    }
                    Op::Adjust { points } => {
                        m.adjust(&source, points, now, expiry_after(now, Some(12)));
                        if points >= 0 { put_in += points } else { taken_out -= points }
                    }
                    Op::Expire { day } => {
                        now = now.max(at(day));
                        let lapsed: i64 = m.expire(now).iter().map(|l| l.points).sum();
                        prop_assert!(lapsed >= 0);
                    }
                }
                let expired = m.points_expired;
                let balance = m.points_balance(now);
                prop_assert!(balance == put_in - taken_out - expired - unexpired_but_due(&m, now));
                // The day totals account for every point that moved.
                let moved: i64 = m.days.values().map(DayTotals::points_moved).sum();
                prop_assert_eq!(balance, moved - unexpired_but_due(&m, now));
            }
        }
    }

    /// Points past their expiry that `expire` has not run for yet: the
    /// balance already leaves them out.
    fn unexpired_but_due(m: &MemberState, now: DateTime<Utc>) -> i64 {
        m.lots
            .iter()
            .filter(|lot| lot.expires_at.is_some_and(|e| e <= now))
            .map(|lot| lot.remaining)
            .sum()
    }
}
