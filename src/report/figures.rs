//! What one member contributes to the reports, read from its day totals and
//! lots: pure arithmetic on a [`MemberState`], no I/O.
//!
//! Reports are day-granular: "as of D" means at the end of UTC day D, and
//! a period is a range of whole days, both ends included. Figures of a
//! past day are taken back from today's state by the day totals after it
//! (`DayTotals::points_moved`, purchases and refunds), so they are exact
//! as far back as day totals are kept ([`DAY_RETENTION`]).

use chrono::{DateTime, Datelike as _, NaiveDate, NaiveTime, TimeDelta, Utc};

use crate::{
    domain::{
        decide::{Metrics, window_start},
        member::{DAY_RETENTION, DayTotals, MemberState, day_number},
    },
    rules::RuleSet,
    script::LifecycleDays,
};

/// A range of whole UTC days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The first day.
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
}

/// The last instant of `day`: what "as of `day`" means.
pub fn end_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(LAST_MICROSECOND).and_utc()
}

/// 23:59:59.999999, the last instant of a day at the micros tierd keeps.
const LAST_MICROSECOND: NaiveTime = match NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999) {
    Some(time) => time,
    None => NaiveTime::MIN,
};

/// The earliest day a report may look at when today is `today`: older day
/// totals may already be pruned.
pub fn earliest_day(today: NaiveDate) -> NaiveDate {
    today - DAY_RETENTION + TimeDelta::days(1)
}

fn key(day: NaiveDate) -> i32 {
    day.num_days_from_ce()
}

impl Period {
    /// The 12 whole months up to `to`: from the day after the same date a
    /// year before (the reports' default period).
    pub fn year_to(to: NaiveDate) -> Self {
        let from = to
            .checked_sub_months(chrono::Months::new(12))
            .and_then(|d| d.succ_opt())
            .unwrap_or(to);
        Self { from, to }
    }

    fn days<'a>(&self, m: &'a MemberState) -> impl Iterator<Item = &'a DayTotals> + use<'a> {
        m.days.range(key(self.from)..=key(self.to)).map(|(_, t)| t)
    }

    /// Net spend in the period: purchases made in it minus refunds made in
    /// it, minor units.
    pub fn net_spend(&self, m: &MemberState) -> i64 {
        self.days(m).fold(0_i64, |sum, t| {
            sum.saturating_add(t.purchased_minor)
                .saturating_sub(t.refunded_minor)
        })
    }

    /// Purchases made in the period (fully returned ones not counted).
    pub fn purchases(&self, m: &MemberState) -> i64 {
        self.days(m)
            .fold(0_i64, |sum, t| sum.saturating_add(t.purchases))
    }

    /// Points redeemed in the period.
    pub fn points_redeemed(&self, m: &MemberState) -> i64 {
        self.days(m)
            .fold(0_i64, |sum, t| sum.saturating_add(t.points_redeemed))
    }

    /// Activities in the period (engagement).
    pub fn activities(&self, m: &MemberState) -> i64 {
        self.days(m)
            .fold(0_i64, |sum, t| sum.saturating_add(t.activities))
    }

    /// A member's value in the period, as value ranks count it: net spend
    /// minus what the points redeemed in it cost (`point_value_minor` each).
    pub fn value(&self, m: &MemberState, point_value_minor: i64) -> i64 {
        self.net_spend(m)
            .saturating_sub(self.points_redeemed(m).saturating_mul(point_value_minor))
    }
}

/// Whether the member had joined by the end of `day`.
pub fn enrolled_by(m: &MemberState, day: NaiveDate) -> bool {
    m.enrolled_at <= end_of(day)
}

/// Days from the member's last purchase on or before `day` to `day`;
/// `None` when no purchase is in the day totals kept.
pub fn days_since_last_purchase(m: &MemberState, day: NaiveDate) -> Option<i64> {
    m.days
        .range(..=key(day))
        .rev()
        .find(|(_, t)| t.purchases > 0)
        .map(|(last, _)| i64::from(key(day) - last))
}

/// Lifetime value at the end of `day`: today's, less the net spend of the
/// days after it.
pub fn lifetime_value_at(m: &MemberState, day: NaiveDate) -> i64 {
    m.days
        .range(key(day).saturating_add(1)..)
        .fold(m.lifetime_value_minor, |ltv, (_, t)| {
            ltv.saturating_sub(t.purchased_minor)
                .saturating_add(t.refunded_minor)
        })
}

/// Redeemable points outstanding at the end of `day`: the points in the
/// lots and debt today, less what moved after `day`, less lots that were
/// due by then but have not been expired yet (no event has come since).
pub fn points_outstanding_at(m: &MemberState, day: NaiveDate) -> i64 {
    let end = end_of(day);
    let booked_today = m
        .lots
        .iter()
        .fold(0_i64, |sum, lot| sum.saturating_add(lot.remaining))
        .saturating_sub(m.points_debt);
    let moved_since = m
        .days
        .range(key(day).saturating_add(1)..)
        .fold(0_i64, |sum, (_, t)| sum.saturating_add(t.points_moved()));
    let due_unexpired = m
        .lots
        .iter()
        .filter(|lot| lot.expires_at.is_some_and(|e| e <= end))
        .fold(0_i64, |sum, lot| sum.saturating_add(lot.remaining));
    booked_today
        .saturating_sub(moved_since)
        .saturating_sub(due_unexpired)
}

/// The tier metrics at the end of `day`, over the rules' window ending
/// then, with the lifetime value and points balance of that day.
pub fn metrics_at(rules: &RuleSet, m: &MemberState, day: NaiveDate) -> Metrics {
    let end = end_of(day);
    Metrics {
        lifetime_value_minor: lifetime_value_at(m, day),
        points_balance: points_outstanding_at(m, day),
        ..m.window_metrics(window_start(rules.window, end, m.enrolled_at), end)
    }
}

/// Where the member stands in its lifecycle at the end of `day`; a member
/// with no purchase in the day totals kept counts from its enrolment.
pub fn lifecycle_at(m: &MemberState, day: NaiveDate) -> LifecycleDays {
    let since_enrolment = i64::from(key(day) - day_number(m.enrolled_at)).max(0);
    LifecycleDays {
        since_last_purchase: days_since_last_purchase(m, day).unwrap_or(since_enrolment),
        since_enrolment,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(month: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, 15, 0, 0)
            .single()
            .expect("valid")
    }

    fn date(month: u32, day: u32) -> NaiveDate {
        at(month, day).date_naive()
    }

    /// A member who bought, returned, redeemed and let points lapse.
    fn member() -> MemberState {
        let mut m = MemberState::new("m", "bronze", at(1, 1));
        let expiry = Some(at(3, 1));
        m.record_purchase("p1", 10_000, 100, at(1, 10), expiry);
        m.record_purchase("p2", 5_000, 50, at(2, 10), None);
        m.redeem(30, None, at(2, 11)).expect("enough");
        m.record_return(
            "p2",
            at(2, 10),
            at(3, 5),
            &crate::domain::member::TakeBack {
                amount_minor: 2_000,
                qualifying_minor: 2_000,
                points: 20,
                qualifying_points: 20,
                redeemable_points: 20,
                fully_returned: false,
                lines: Vec::new(),
            },
        );
        m.expire(at(3, 6));
        m
    }

    #[test]
    fn a_period_counts_purchases_where_made_and_refunds_where_paid() {
        let m = member();
        let feb = Period {
            from: date(2, 1),
            to: date(2, 28),
        };
        assert_eq!(feb.net_spend(&m), 5_000);
        assert_eq!(feb.purchases(&m), 1);
        assert_eq!(feb.points_redeemed(&m), 30);
        assert_eq!(feb.value(&m, 2), 5_000 - 60);
        let march = Period {
            from: date(3, 1),
            to: date(3, 31),
        };
        assert_eq!(march.net_spend(&m), -2_000);
    }

    #[test]
    fn figures_of_a_past_day_are_taken_back_from_today() {
        let m = member();
        assert_eq!(lifetime_value_at(&m, date(1, 31)), 10_000);
        assert_eq!(lifetime_value_at(&m, date(2, 28)), 15_000);
        assert_eq!(lifetime_value_at(&m, date(3, 31)), 13_000);
        // 100 + 50 earned; 30 redeemed on 2-11 (from p1's lot); 70 of p1
        // lapse on 3-1; 20 taken back on 3-5.
        assert_eq!(points_outstanding_at(&m, date(1, 31)), 100);
        assert_eq!(points_outstanding_at(&m, date(2, 11)), 120);
        assert_eq!(points_outstanding_at(&m, date(3, 1)), 50);
        assert_eq!(points_outstanding_at(&m, date(3, 31)), 30);
        assert_eq!(
            points_outstanding_at(&m, date(3, 31)),
            m.points_balance(at(3, 31))
        );
        assert_eq!(days_since_last_purchase(&m, date(2, 20)), Some(10));
        assert_eq!(days_since_last_purchase(&m, date(1, 5)), None);
        assert!(enrolled_by(&m, date(1, 1)));
        let new_years_eve = NaiveDate::from_ymd_opt(2025, 12, 31).expect("valid");
        assert!(!enrolled_by(&m, new_years_eve));
    }

    #[test]
    fn a_day_ends_a_microsecond_before_the_next_begins() {
        for day in [date(1, 1), date(2, 28), date(12, 31)] {
            let next = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0));
            let next = next.expect("a next day").and_utc();
            assert_eq!(end_of(day), next - TimeDelta::microseconds(1));
            assert_eq!(key(day), day_number(end_of(day)));
        }
    }

    #[test]
    fn a_lot_due_but_not_yet_expired_is_not_outstanding() {
        let mut m = MemberState::new("m", "bronze", at(1, 1));
        m.record_purchase("p1", 1_000, 10, at(1, 10), Some(at(2, 1)));
        // No event since: the lot is still there, but it lapsed on 2-1.
        assert_eq!(points_outstanding_at(&m, date(1, 31)), 10);
        assert_eq!(points_outstanding_at(&m, date(2, 1)), 0);
        assert_eq!(points_outstanding_at(&m, date(5, 1)), 0);
    }
}
