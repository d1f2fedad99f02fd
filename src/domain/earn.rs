//! Earning: how many points a purchase or an activity gives, under the
//! rules. Pure: no I/O, no clock; exact integer arithmetic throughout.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::decide::Subject;
use crate::{
    rules::{Activity, LinePay, LineRule, LineView, Rate, RuleSet},
    script::{Inputs, PurchaseInputs},
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

/// A purchase as the earning rules see it.
#[derive(Debug, Clone, Copy)]
pub struct PurchaseFacts<'a> {
    /// Amount paid, minor units.
    pub amount_minor: i64,
    /// Channel the till sent ("pos", "web", ...).
    pub channel: &'a str,
    /// Store the till sent.
    pub store_id: &'a str,
    /// Purchase tags.
    pub tags: &'a [String],
    /// When the purchase happened (campaigns are time-boxed).
    pub occurred_at: DateTime<Utc>,
    /// The member's tier before the purchase (campaigns may target tiers).
    pub tier_id: &'a str,
    /// The tier whose `tier_multipliers` entry applies (see
    /// `tier_rate_applies`); `None`: no tier multiplier.
    pub rate_tier: Option<&'a str>,
    /// The basket's lines; empty when the till sent a sum only.
    pub lines: &'a [Line],
}

/// Points earned by a purchase: the rate part (spend x `points_per_unit`,
/// or the line rules' per-unit pay when the basket has lines) x channel
/// multiplier x the largest tag multiplier x the largest active campaign
/// multiplier x the tier multiplier, rounded down once, plus product bonuses and the bonus
/// script (which counts as 0 if it fails or is negative). Nothing below
/// the minimum order. Exact integer arithmetic throughout.
pub fn points_for_purchase(
    rules: &RuleSet,
    purchase: PurchaseFacts<'_>,
    subject: Subject<'_>,
) -> i64 {
    let earning = &rules.earning;
    if purchase.amount_minor < earning.minimum_order_minor {
        return 0;
    }
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
                    purchase.tier_id,
                )
            })
            .map(|c| c.multiplier),
    );
    let tier = purchase
        .rate_tier
        .and_then(|t| earning.tier_multipliers.get(t))
        .copied()
        .unwrap_or(Rate::ONE);
    let (spend, products) = if purchase.lines.is_empty() || earning.line_rules.is_empty() {
        let spend =
            i128::from(purchase.amount_minor).saturating_mul(scaled(earning.points_per_unit));
        // As a line with multiplier 1, to share the line rules' scale.
        (spend.saturating_mul(SCALE), 0)
    } else {
        line_earnings(&earning.line_rules, purchase.lines)
    };
    let numerator = [channel, tag, campaign, tier]
        .iter()
        .fold(spend, |n, r| n.saturating_mul(scaled(*r)));
    let denominator = i128::from(rules.currency.minor_per_major()) * SCALE.pow(6);
    let base = i64::try_from(numerator / denominator.max(1)).unwrap_or(i64::MAX);
    base.saturating_add(products)
        .saturating_add(bonus_points(rules, purchase, subject))
}

/// What a rate is scaled by in the sums: rates have at most 4 decimals.
const SCALE: i128 = 10_000;

/// A rate times [`SCALE`], exactly.
fn scaled(rate: Rate) -> i128 {
    i128::from(rate.numerator) * SCALE / i128::from(rate.denominator.max(1))
}

/// The line rules' pay for a basket: the per-unit part (money x points per
/// unit x multiplier, in minor units x [`SCALE`]^2, not yet rounded) and
/// the product bonuses' points.
fn line_earnings(rules: &[LineRule], lines: &[Line]) -> (i128, i64) {
    let mut spend: i128 = 0;
    let mut products: i64 = 0;
    for rule in rules {
        let (rule_spend, rule_points) = rule_earnings(rule, lines);
        spend = spend.saturating_add(rule_spend);
        products = products.saturating_add(rule_points);
        if rule.stops && (rule_spend > 0 || rule_points > 0) {
            break;
        }
    }
    (spend, products)
}

fn rule_earnings(rule: &LineRule, lines: &[Line]) -> (i128, i64) {
    match &rule.pays {
        LinePay::PerUnit {
            points_per_unit,
            multipliers,
            exclude,
        } => {
            let spend = lines
                .iter()
                .map(Line::view)
                .filter(|line| !exclude.matches(*line))
                .filter_map(|line| {
                    let multiplier = multipliers.of(line)?;
                    Some(
                        i128::from(line.amount_minor)
                            .saturating_mul(scaled(*points_per_unit))
                            .saturating_mul(scaled(multiplier)),
                    )
                })
                .fold(0_i128, i128::saturating_add);
            (spend, 0)
        }
        LinePay::Product {
            buy,
            points,
            per_unit,
        } => {
            let bought = lines.iter().map(Line::view).filter(|l| buy.matches(*l));
            let times = if *per_unit {
                bought.map(|l| l.quantity).fold(0_i64, i64::saturating_add)
            } else {
                i64::from(bought.count() > 0)
            };
            (0, points.saturating_mul(times))
        }
    }
}

fn bonus_points(rules: &RuleSet, purchase: PurchaseFacts<'_>, subject: Subject<'_>) -> i64 {
    let Some(script) = &rules.earning.bonus else {
        return 0;
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
    match script.eval_points(&inputs) {
        Ok(points) => points.max(0),
        Err(err) => {
            tracing::warn!(error = %err, "bonus script failed; no bonus awarded");
            0
        }
    }
}

/// Points an activity earns before caps: its fixed points plus its script
/// (which counts as 0 if it fails or is negative).
pub fn points_for_activity(
    activity: &Activity,
    kind: &str,
    details: &BTreeMap<String, String>,
    subject: Subject<'_>,
) -> i64 {
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
    activity.points.saturating_add(extra.max(0))
}
