//! The points liability: redeemable points outstanding today and their
//! money worth (`reporting.point_value`), per tier; when the points still
//! held will lapse over the next 12 months (from the lots); and, for the
//! 12 months up to today, what was redeemed and what lapsed unredeemed
//! (breakage), from the day totals, and what was redeemed by reward of the
//! catalogue (rows that add up to the months' redemptions exactly).
//!
//! A lot whose expiry has passed but that no event has expired yet is
//! breakage in its expiry month, not a liability: the balance already
//! leaves it out.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::{Header, Making, Report, Reporter, figures};
use crate::{
    domain::member::{DayTotals, MemberState, Redeemed},
    rules::RuleSet,
};

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
    /// Redemptions over the same 12 months by reward: the catalogue's
    /// rewards in its order, rewards no longer in it, then the points
    /// redeemed without a reward and, negative, those returns gave back.
    /// The points add up to the sum of `past`'s `points_redeemed`.
    pub rewards: Vec<RewardRedemptions>,
}

/// Redemptions of one reward (or one of the rows that complete them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RewardRedemptions {
    /// The reward's id; empty on the two rows that complete the table.
    pub reward_id: String,
    /// Its name in the catalogue (its id when it is no longer there), or
    /// "without a reward", or "given back by returns".
    pub name: String,
    /// Redemptions of it (0 on the two rows that complete the table: only
    /// rewards are counted).
    pub redemptions: i64,
    /// Points they cost (negative for what returns gave back).
    pub points: i64,
    /// Their worth, minor units.
    pub value_minor: i64,
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
    /// Over the months the report shows back: redemptions by reward, all
    /// points redeemed before returns gave some back, and what they gave.
    by_reward: BTreeMap<String, Redeemed>,
    redeemed_before_returns: i64,
    given_back: i64,
}

impl Sums {
    fn add(&mut self, m: &MemberState, today: NaiveDate) {
        let end = figures::end_of(today);
        let shown = shown_back(today);
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
            if totals.points_redeemed == 0
                && totals.points_lapsed == 0
                && totals.points_given_back == 0
            {
                continue;
            }
            let month = month_of(date);
            let past = self.past.entry(month).or_default();
            past.0 = past.0.saturating_add(totals.points_redeemed);
            past.1 = past.1.saturating_add(totals.points_lapsed);
            if shown.contains(&month) {
                self.add_redemptions(totals);
            }
        }
    }

    /// A day's redemptions, by reward and before returns.
    fn add_redemptions(&mut self, totals: &DayTotals) {
        for (reward, redeemed) in &totals.rewards {
            self.by_reward
                .entry(reward.clone())
                .or_default()
                .add(*redeemed);
        }
        self.redeemed_before_returns = self
            .redeemed_before_returns
            .saturating_add(totals.points_redeemed)
            .saturating_add(totals.points_given_back);
        self.given_back = self.given_back.saturating_add(totals.points_given_back);
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
        for (reward, redeemed) in part.by_reward {
            self.by_reward.entry(reward).or_default().add(redeemed);
        }
        self.redeemed_before_returns = self
            .redeemed_before_returns
            .saturating_add(part.redeemed_before_returns);
        self.given_back = self.given_back.saturating_add(part.given_back);
    }

    /// The rows by reward (see [`Liability::rewards`]), each point worth
    /// `worth` minor units.
    fn reward_rows(&self, rules: &RuleSet, worth: i64) -> Vec<RewardRedemptions> {
        let row = |reward_id: &str, name: &str, r: Redeemed| RewardRedemptions {
            reward_id: reward_id.to_owned(),
            name: name.to_owned(),
            redemptions: r.count,
            points: r.points,
            value_minor: r.points.saturating_mul(worth),
        };
        let of = |id: &str| self.by_reward.get(id).copied().unwrap_or_default();
        let mut rows: Vec<RewardRedemptions> = rules
            .rewards
            .iter()
            .map(|reward| row(&reward.id, &reward.name, of(&reward.id)))
            .collect();
        rows.extend(
            self.by_reward
                .iter()
                .filter(|(id, _)| rules.reward(id).is_none())
                .map(|(id, r)| row(id, id, *r)),
        );
        let for_rewards = self
            .by_reward
            .values()
            .fold(0_i64, |sum, r| sum.saturating_add(r.points));
        let without = Redeemed {
            count: 0,
            points: self.redeemed_before_returns.saturating_sub(for_rewards),
        };
        let given_back = Redeemed {
            count: 0,
            points: self.given_back.saturating_neg(),
        };
        rows.push(row("", "without a reward", without));
        rows.push(row("", "given back by returns", given_back));
        rows
    }
}

/// The months the report shows back: the 12 up to `today`'s.
fn shown_back(today: NaiveDate) -> std::ops::RangeInclusive<i32> {
    let this_month = month_of(today);
    this_month - MONTHS + 1..=this_month
}

impl Reporter<'_> {
    /// The points liability today.
    pub(super) fn liability(&self) -> Making<'_> {
        let today = self.today();
        Making::new(
            Sums::default,
            move |sums: &mut Sums, m| {
                sums.add(m, today);
                Ok(())
            },
            Sums::merge,
            move |sums| Ok(Report::Liability(self.liability_of(&sums))),
        )
    }

    /// The liability from its sums.
    fn liability_of(&self, sums: &Sums) -> Liability {
        let today = self.today();
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
        let past = shown_back(today)
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
        Liability {
            header: self.header("liability", Some(today), None),
            point_value_minor: worth,
            tiers,
            total,
            expiring,
            past,
            rewards: sums.reward_rows(self.rules(), worth),
        }
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
