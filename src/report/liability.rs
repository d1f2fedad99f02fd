//! The points liability: redeemable points outstanding today and their
//! money worth (`reporting.point_value`), per tier; when the points still
//! held will lapse over the next 12 months (from the lots); and, for the
//! 12 months up to today, what was redeemed and what lapsed unredeemed
//! (breakage), from the day totals.
//!
//! A lot whose expiry has passed but that no event has expired yet is
//! breakage in its expiry month, not a liability: the balance already
//! leaves it out.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::{Header, ReportError, Reporter, figures};
use crate::domain::member::MemberState;

/// Months shown ahead and back.
const MONTHS: i32 = 12;

/// What the outstanding points are worth, and how they come and go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Liability {
    /// Today and the rules.
    #[serde(flatten)]
    pub header: Header,
    /// The worth of one point, minor units.
    pub point_value_minor: i64,
    /// Outstanding points per tier (members' current tiers), ladder order.
    pub tiers: Vec<LiabilityRow>,
    /// Every member: the sum of the rows, and of the members' balances.
    pub total: LiabilityRow,
    /// Points held in lots that lapse in each of the next 12 months
    /// (this month first, from tomorrow on).
    pub expiring: Vec<MonthPoints>,
    /// Redemptions and breakage in each of the 12 months up to this one
    /// (this month to date last).
    pub past: Vec<MonthHistory>,
}

/// Outstanding points of one tier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiabilityRow {
    /// The tier (`total` for the sum row).
    pub tier: String,
    /// Members in it.
    pub members: i64,
    /// Their redeemable balance (negative balances, owed points, netted).
    pub points_outstanding: i64,
    /// `points_outstanding * point_value`, minor units.
    pub value_minor: i64,
}

/// Points lapsing in one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthPoints {
    /// `YYYY-MM`.
    pub month: String,
    /// Points of lots expiring in it.
    pub points: i64,
    /// Their worth, minor units.
    pub value_minor: i64,
}

/// One past month's redemptions and breakage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthHistory {
    /// `YYYY-MM`.
    pub month: String,
    /// Points redeemed in it.
    pub points_redeemed: i64,
    /// Their worth, minor units.
    pub redeemed_value_minor: i64,
    /// Points that lapsed unredeemed in it (breakage).
    pub points_lapsed: i64,
    /// Their worth, minor units.
    pub lapsed_value_minor: i64,
}

/// A month as a number: `year * 12 + month0`.
fn month_of(day: NaiveDate) -> i32 {
    day.year() * 12 + i32::try_from(day.month0()).unwrap_or(0)
}

fn month_name(month: i32) -> String {
    format!(
        "{:04}-{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

/// One fold's sums.
#[derive(Default)]
struct Sums {
    tiers: BTreeMap<String, (i64, i64)>,
    /// month -> points expiring (ahead) or (redeemed, lapsed) (back).
    expiring: BTreeMap<i32, i64>,
    past: BTreeMap<i32, (i64, i64)>,
}

impl Sums {
    fn add(&mut self, m: &MemberState, today: NaiveDate) {
        let end = figures::end_of(today);
        let tier = self.tiers.entry(m.tier.tier_id.clone()).or_default();
        tier.0 += 1;
        tier.1 = tier.1.saturating_add(m.points_balance(end));
        for lot in &m.lots {
            let Some(expires) = lot.expires_at else {
                continue;
            };
            let month = month_of(expires.date_naive());
            if expires > end {
                let points = self.expiring.entry(month).or_default();
                *points = points.saturating_add(lot.remaining);
            } else {
                let past = self.past.entry(month).or_default();
                past.1 = past.1.saturating_add(lot.remaining);
            }
        }
        for (day, totals) in &m.days {
            let Some(date) = NaiveDate::from_num_days_from_ce_opt(*day) else {
                continue;
            };
            if totals.points_redeemed == 0 && totals.points_lapsed == 0 {
                continue;
            }
            let past = self.past.entry(month_of(date)).or_default();
            past.0 = past.0.saturating_add(totals.points_redeemed);
            past.1 = past.1.saturating_add(totals.points_lapsed);
        }
    }

    fn merge(&mut self, part: Sums) {
        for (tier, (n, points)) in part.tiers {
            let t = self.tiers.entry(tier).or_default();
            t.0 += n;
            t.1 = t.1.saturating_add(points);
        }
        for (month, points) in part.expiring {
            let e = self.expiring.entry(month).or_default();
            *e = e.saturating_add(points);
        }
        for (month, (redeemed, lapsed)) in part.past {
            let p = self.past.entry(month).or_default();
            p.0 = p.0.saturating_add(redeemed);
            p.1 = p.1.saturating_add(lapsed);
        }
    }
}

impl Reporter<'_> {
    /// The points liability today.
    ///
    /// # Errors
    /// A storage failure.
    pub fn liability(&self) -> Result<Liability, ReportError> {
        let today = self.today();
        let sums = self.fold(
            Sums::default,
            |sums, m| {
                sums.add(&m, today);
                Ok(())
            },
            Sums::merge,
        )?;
        let worth = self.rules().reporting.point_value_minor;
        let value = |points: i64| points.saturating_mul(worth);
        let row = |tier: String, (members, points): (i64, i64)| LiabilityRow {
            tier,
            members,
            points_outstanding: points,
            value_minor: value(points),
        };
        let tiers: Vec<LiabilityRow> = self
            .ladder_with(sums.tiers.keys())
            .into_iter()
            .map(|tier| {
                let figures = sums.tiers.get(&tier).copied().unwrap_or_default();
                row(tier, figures)
            })
            .collect();
        let total = row(
            "total".into(),
            sums.tiers
                .values()
                .fold((0, 0), |(n, p), (tn, tp)| (n + tn, p.saturating_add(*tp))),
        );
        let this_month = month_of(today);
        let expiring = (this_month..this_month + MONTHS)
            .map(|month| {
                let points = sums.expiring.get(&month).copied().unwrap_or(0);
                MonthPoints {
                    month: month_name(month),
                    points,
                    value_minor: value(points),
                }
            })
            .collect();
        let past = (this_month - MONTHS + 1..=this_month)
            .map(|month| {
                let (redeemed, lapsed) = sums.past.get(&month).copied().unwrap_or_default();
                MonthHistory {
                    month: month_name(month),
                    points_redeemed: redeemed,
                    redeemed_value_minor: value(redeemed),
                    points_lapsed: lapsed,
                    lapsed_value_minor: value(lapsed),
                }
            })
            .collect();
        Ok(Liability {
            header: self.header("liability", Some(today), None),
            point_value_minor: worth,
            tiers,
            total,
            expiring,
            past,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_named_and_counted_across_years() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 15).expect("valid");
        let month = month_of(day);
        assert_eq!(month_name(month), "2026-01");
        assert_eq!(month_name(month - 1), "2025-12");
        assert_eq!(month_name(month + 11), "2026-12");
    }
}
