//! Earning: how many points a purchase or an activity gives, under the
//! rules. Pure: no I/O, no clock; exact integer arithmetic throughout.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    decide::Subject,
    receipt::{MinimumLine, MinimumTrack},
    share,
};
use crate::{
    rules::{Activity, LinePay, LineRule, LineView, Minimum, Rate, RuleSet},
    script::{Bonus, Inputs, PurchaseInputs},
};

/// One line of a basket, as the till sent it (checked at the boundary:
/// quantity at least 1, amount not negative, the lines adding up to the
/// purchase's amount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The product's SKU.
    pub sku: String,
    /// Its category ("coffee", "gift-card", "delivery").
    pub category: String,
    /// Units bought.
    pub quantity: i64,
    /// Paid for the line after discounts, minor units.
    pub amount_minor: i64,
    /// Free labels ("organic", "new").
    pub labels: Vec<String>,
}

impl Line {
    /// The line as the earning rules read it.
    pub fn view(&self) -> LineView<'_> {
        LineView {
            sku: &self.sku,
            category: &self.category,
            quantity: self.quantity,
            amount_minor: self.amount_minor,
            labels: &self.labels,
        }
    }
}

/// A purchase as the till reports it: the one shape every layer below the
/// service borrows (the service's validated command lends its fields).
#[derive(Debug, Clone, Copy)]
pub struct Purchase<'a> {
    /// Its transaction id: the points lot is named after it.
    pub transaction_id: &'a str,
    /// Amount paid, minor units.
    pub amount_minor: i64,
    /// Sales channel ("pos", "web", ...).
    pub channel: &'a str,
    /// Store.
    pub store_id: &'a str,
    /// Tags (for tag multipliers and campaigns).
    pub tags: &'a [String],
    /// When it happened (campaigns are time-boxed).
    pub occurred_at: DateTime<Utc>,
    /// The basket's lines; empty when the till sent a sum only.
    pub lines: &'a [Line],
}

/// A purchase as the earning rules see it: the purchase, and the tiers
/// that decide its rates.
#[derive(Debug, Clone, Copy)]
pub struct PurchaseFacts<'a> {
    /// The purchase.
    pub purchase: &'a Purchase<'a>,
    /// The member's tier before the purchase (campaigns may target tiers).
    pub tier_id: &'a str,
    /// The tier whose `tier_multipliers` entry applies (see
    /// `tier_rate_applies`); `None`: no tier multiplier.
    pub rate_tier: Option<&'a str>,
}

/// What a purchase earned: in total, and line by line when the till sent
/// a basket (empty otherwise). The lines' points add up to the total
/// exactly, so a return that names lines takes back exactly what they
/// earned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Earned {
    /// Points earned in all.
    pub points: i64,
    /// Each line's part of `points`, in the order of the basket: its rate
    /// part (rounded so that the parts add up to the purchase's, largest
    /// remainder first), its product bonuses, and its share of the bonus
    /// script's points by amount.
    pub per_line: Vec<i64>,
    /// What each line rule with a minimum paid, line by line (part of
    /// `per_line`): a return that takes its lines below the minimum takes
    /// it back.
    pub minimums: Vec<MinimumTrack>,
    /// Why the bonus script gave nothing, when it failed: the service
    /// logs it, `rules test` shows it beside the event it spoiled.
    pub script_failure: Option<String>,
}

/// An event the rules would pay more than `earning.max_points_per_event`:
/// refused whole, so that every sum of points stays exact (before this
/// ceiling, a bonus script answering `i64::MAX` saturated a member's
/// balance and one purchase's points vanished).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the rules would earn {points} points on this event through {rule}, over \
     earning.max_points_per_event ({ceiling}); the event was not recorded: fix the rule, or \
     raise the ceiling if such an event is real"
)]
pub struct Overearned {
    /// The rule that pays the most of it: `earning.bonus`, the rate, the
    /// product bonuses, `activities.KIND`.
    pub rule: String,
    /// What the event would earn in all (before any rounding to `i64`).
    pub points: i128,
    /// The ceiling in force.
    pub ceiling: i64,
}

/// The points of `parts` (each a rule and what it pays), within `ceiling`
/// each and in all, or the rule that pays most over it.
fn within_ceiling(parts: &[(&str, i128)], ceiling: i64) -> Result<i64, Overearned> {
    let total = parts
        .iter()
        .fold(0_i128, |sum, (_, p)| sum.saturating_add(*p));
    if total <= i128::from(ceiling) {
        // Each part is at least 0, so the total bounds each of them.
        return Ok(i64::try_from(total).unwrap_or(ceiling));
    }
    let largest = parts
        .iter()
        .max_by_key(|(_, points)| *points)
        .map_or("the earning rules", |(rule, _)| rule);
    Err(Overearned {
        rule: largest.to_owned(),
        points: total,
        ceiling,
    })
}

/// Points earned by a purchase: the rate part (spend x `points_per_unit`,
/// or the line rules' per-unit pay when the basket has lines) x channel
/// multiplier x the largest tag multiplier x the largest active campaign
/// multiplier x the tier multiplier, rounded down once, plus product
/// bonuses and the bonus script (which counts as 0 if it fails or is
/// negative). Nothing below the minimum order. Exact integer arithmetic
/// throughout.
///
/// # Errors
/// [`Overearned`] when that is more than `earning.max_points_per_event`.
pub fn points_for_purchase(
    rules: &RuleSet,
    facts: PurchaseFacts<'_>,
    subject: Subject<'_>,
) -> Result<i64, Overearned> {
    purchase_earnings(rules, facts, subject).map(|earned| earned.points)
}

/// [`points_for_purchase`], line by line.
///
/// # Errors
/// [`Overearned`] when the purchase would earn more than
/// `earning.max_points_per_event`.
pub fn purchase_earnings(
    rules: &RuleSet,
    facts: PurchaseFacts<'_>,
    subject: Subject<'_>,
) -> Result<Earned, Overearned> {
    let earning = &rules.earning;
    let purchase = facts.purchase;
    if purchase.amount_minor < earning.minimum_order_minor {
        return Ok(Earned {
            points: 0,
            per_line: vec![0; purchase.lines.len()],
            minimums: Vec::new(),
            script_failure: None,
        });
    }
    let multiplier = purchase_multipliers(rules, &facts)
        .iter()
        .fold(1_i128, |n, r| n.saturating_mul(scaled(*r)));
    let (spend, products, conditional) =
        if purchase.lines.is_empty() || earning.line_rules.is_empty() {
            // Each line (or the whole sum) as a line with multiplier 1, to
            // share the line rules' scale.
            let amounts: Vec<i64> = if purchase.lines.is_empty() {
                vec![purchase.amount_minor]
            } else {
                purchase.lines.iter().map(|l| l.amount_minor).collect()
            };
            let spend = amounts
                .iter()
                .map(|a| {
                    i128::from(*a)
                        .saturating_mul(scaled(earning.points_per_unit))
                        .saturating_mul(SCALE)
                })
                .collect();
            (spend, vec![0; purchase.lines.len()], Vec::new())
        } else {
            line_earnings(&earning.line_rules, purchase.lines)
        };
    let numerators: Vec<i128> = spend.iter().map(|s| s.saturating_mul(multiplier)).collect();
    let denominator = i128::from(rules.currency.minor_per_major()) * SCALE.pow(6);
    let (bonus, script_failure) = bonus_points(rules, purchase, subject);
    let bonus_total = bonus.total();
    let rate_total = numerators
        .iter()
        .fold(0_i128, |sum, n| sum.saturating_add(*n))
        / denominator;
    let products_total = products.iter().map(|p| i128::from(*p)).sum::<i128>();
    let points = within_ceiling(
        &[
            (
                "the earning rate (points_per_unit or line_rules, with multipliers)",
                rate_total,
            ),
            ("the product bonuses of line_rules", products_total),
            ("the bonus script (earning.bonus)", i128::from(bonus_total)),
        ],
        earning.max_points_per_event,
    )?;
    // Within the ceiling every part and every sum below fits an i64.
    let rate_parts = share::split_quotients(&numerators, denominator);
    if purchase.lines.is_empty() {
        return Ok(Earned {
            points,
            per_line: Vec::new(),
            minimums: Vec::new(),
            script_failure,
        });
    }
    // Each minimum's rate part of a line, rounded down on its own: never
    // more than the line's rate part, which was rounded with every rule.
    let minimums = conditional
        .into_iter()
        .map(|paid| MinimumTrack {
            minimum: paid.minimum,
            lines: paid
                .lines
                .into_iter()
                .map(|(index, spend, products)| MinimumLine {
                    index,
                    points: i64::try_from(spend.saturating_mul(multiplier) / denominator)
                        .unwrap_or(0)
                        .saturating_add(products),
                })
                .collect(),
        })
        .collect();
    let bonus_parts = match bonus {
        Bonus::PerLine(per_line) => per_line,
        Bonus::Total(points) => {
            let amounts: Vec<i64> = purchase.lines.iter().map(|l| l.amount_minor).collect();
            share::split(points, &amounts)
        }
    };
    let per_line: Vec<i64> = (0..purchase.lines.len())
        .map(|i| {
            rate_parts[i]
                .saturating_add(products[i])
                .saturating_add(bonus_parts[i])
        })
        .collect();
    Ok(Earned {
        points,
        per_line,
        minimums,
        script_failure,
    })
}

/// The multipliers of the whole purchase: channel, the largest tag one,
/// the largest active campaign's, the tier's.
fn purchase_multipliers(rules: &RuleSet, facts: &PurchaseFacts<'_>) -> [Rate; 4] {
    let earning = &rules.earning;
    let purchase = facts.purchase;
    let channel = earning
        .channel_multipliers
        .get(purchase.channel)
        .copied()
        .unwrap_or(Rate::ONE);
    let tag = Rate::largest(
        purchase
            .tags
            .iter()
            .filter_map(|t| earning.tag_multipliers.get(t))
            .copied(),
    );
    let campaign = Rate::largest(
        rules
            .campaigns
            .iter()
            .filter(|c| {
                c.applies(
                    purchase.occurred_at,
                    purchase.channel,
                    purchase.tags,
                    facts.tier_id,
                )
            })
            .map(|c| c.multiplier),
    );
    let tier = facts
        .rate_tier
        .and_then(|t| earning.tier_multipliers.get(t))
        .copied()
        .unwrap_or(Rate::ONE);
    [channel, tag, campaign, tier]
}

/// What a rate is scaled by in the sums: rates have at most 4 decimals.
const SCALE: i128 = 10_000;

/// A rate times [`SCALE`], exactly.
fn scaled(rate: Rate) -> i128 {
    i128::from(rate.numerator) * SCALE / i128::from(rate.denominator.max(1))
}

/// What a line rule with a minimum paid the lines it matched, before the
/// purchase's multipliers and rounding: (line index, per-unit pay scaled
/// as [`line_earnings`] scales it, product bonus points).
struct Conditional {
    minimum: Minimum,
    lines: Vec<(usize, i128, i64)>,
}

/// The line rules' pay for a basket, line by line: the per-unit part
/// (money x points per unit x multiplier, in minor units x [`SCALE`]^2,
/// not yet rounded), the product bonuses' points, and what each rule with
/// a minimum paid of them. A rule whose matched lines miss its minimum
/// pays nothing (and so does not stop the rules after it).
fn line_earnings(rules: &[LineRule], lines: &[Line]) -> (Vec<i128>, Vec<i64>, Vec<Conditional>) {
    let mut spend = vec![0_i128; lines.len()];
    let mut products = vec![0_i64; lines.len()];
    let mut conditional = Vec::new();
    for rule in rules {
        // Only a rule with a minimum needs to know which lines it matches.
        let mut held = match rule.minimum {
            None => None,
            Some(minimum) => {
                let matched: Vec<bool> = lines.iter().map(|l| rule.matches(l.view())).collect();
                if !meets(minimum, lines, &matched) {
                    continue;
                }
                let held = Conditional {
                    minimum,
                    lines: Vec::new(),
                };
                Some((held, matched))
            }
        };
        let mut paid = false;
        let mut bought = false;
        for (i, line) in lines.iter().enumerate() {
            let (line_spend, line_points) = rule_earnings(rule, line.view(), &mut bought);
            spend[i] = spend[i].saturating_add(line_spend);
            products[i] = products[i].saturating_add(line_points);
            paid |= line_spend > 0 || line_points > 0;
            if let Some((held, matched)) = held.as_mut()
                && matched[i]
            {
                held.lines.push((i, line_spend, line_points));
            }
        }
        conditional.extend(held.map(|(held, _)| held));
        if rule.stops && paid {
            break;
        }
    }
    (spend, products, conditional)
}

/// Whether the `matched` lines of `lines` meet `minimum`.
fn meets(minimum: Minimum, lines: &[Line], matched: &[bool]) -> bool {
    let (quantity, amount) = lines
        .iter()
        .zip(matched)
        .filter(|(_, matched)| **matched)
        .fold((0_i64, 0_i64), |(q, a), (line, _)| {
            (
                q.saturating_add(line.quantity),
                a.saturating_add(line.amount_minor),
            )
        });
    minimum.met_by(quantity, amount)
}

/// What `rule` pays for `line`. `bought` says whether an earlier line of
/// the basket bought the rule's product (and is set when this one does):
/// a product bonus paid once per purchase goes to the first line that buys
/// the product.
fn rule_earnings(rule: &LineRule, line: LineView<'_>, bought: &mut bool) -> (i128, i64) {
    match &rule.pays {
        LinePay::PerUnit {
            points_per_unit,
            multipliers,
            combine,
            exclude,
            only,
        } => {
            let outside = only.as_ref().is_some_and(|only| !only.matches(line));
            if outside || exclude.matches(line) {
                return (0, 0);
            }
            let spend = multipliers.of(line, *combine).map_or(0, |multiplier| {
                i128::from(line.amount_minor)
                    .saturating_mul(scaled(*points_per_unit))
                    .saturating_mul(scaled(multiplier))
            });
            (spend, 0)
        }
        LinePay::Product {
            buy,
            points,
            per_unit,
        } => {
            if !buy.matches(line) {
                return (0, 0);
            }
            let first = !std::mem::replace(bought, true);
            let times = if *per_unit {
                line.quantity
            } else {
                i64::from(first)
            };
            (0, points.saturating_mul(times))
        }
    }
}

/// The bonus script's points, for the purchase or line by line; none when
/// the rules have no script, or it fails (then also why).
fn bonus_points(
    rules: &RuleSet,
    purchase: &Purchase<'_>,
    subject: Subject<'_>,
) -> (Bonus, Option<String>) {
    let Some(script) = &rules.earning.bonus else {
        return (Bonus::Total(0), None);
    };
    let inputs = Inputs {
        purchase: Some(PurchaseInputs {
            amount_minor: purchase.amount_minor,
            channel: purchase.channel,
            store_id: purchase.store_id,
            tags: purchase.tags,
            lines: purchase.lines.iter().map(Line::view).collect(),
        }),
        ..subject.inputs()
    };
    match script.eval_bonus(&inputs) {
        Ok(bonus) => (bonus, None),
        Err(err) => {
            tracing::warn!(error = %err, "bonus script failed; no bonus awarded");
            (Bonus::Total(0), Some(err.to_string()))
        }
    }
}

/// Points an activity earns before caps: its fixed points plus its script
/// (which counts as 0 if it fails or is negative).
///
/// # Errors
/// [`Overearned`] when that is more than `ceiling`
/// (`earning.max_points_per_event`).
pub fn points_for_activity(
    activity: &Activity,
    kind: &str,
    details: &BTreeMap<String, String>,
    subject: Subject<'_>,
    ceiling: i64,
) -> Result<i64, Overearned> {
    let extra = activity.script.as_ref().map_or(0, |script| {
        let inputs = Inputs {
            activity: Some((kind, details)),
            ..subject.inputs()
        };
        script.eval_points(&inputs).unwrap_or_else(|err| {
            tracing::warn!(error = %err, kind, "activity script failed; no extra points");
            0
        })
    });
    let rule = format!("activities.{kind}");
    within_ceiling(
        &[
            (&rule, i128::from(activity.points)),
            (&rule, i128::from(extra.max(0))),
        ],
        ceiling,
    )
}
