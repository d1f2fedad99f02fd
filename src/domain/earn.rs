//! Earning: how many points a purchase or an activity gives, under the
//! rules. Pure: no I/O, no clock; exact integer arithmetic throughout.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::decide::Subject;
use crate::{
    rules::{Activity, Rate, RuleSet},
    script::{Inputs, PurchaseInputs},
};

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
}

/// Points earned by a purchase: spend x rate x channel multiplier x the
/// largest tag multiplier x the largest active campaign multiplier,
/// rounded down, plus the bonus script (which counts
/// as 0 if it fails or is negative). Exact integer arithmetic throughout.
pub fn points_for_purchase(
    rules: &RuleSet,
    purchase: PurchaseFacts<'_>,
    subject: Subject<'_>,
) -> i64 {
    let earning = &rules.earning;
    let channel = earning
        .channel_multipliers
        .get(purchase.channel)
        .copied()
        .unwrap_or(Rate::ONE);
    let tag = largest(
        purchase
            .tags
            .iter()
            .filter_map(|t| earning.tag_multipliers.get(t))
            .copied(),
    );
    let campaign = largest(
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
    let rates = [earning.points_per_unit, channel, tag, campaign];
    let numerator = rates
        .iter()
        .fold(i128::from(purchase.amount_minor), |n, r| {
            n * i128::from(r.numerator)
        });
    let denominator = rates
        .iter()
        .fold(i128::from(rules.currency.minor_per_major()), |d, r| {
            d * i128::from(r.denominator)
        });
    let base = i64::try_from(numerator / denominator.max(1)).unwrap_or(i64::MAX);
    base.saturating_add(bonus_points(rules, purchase, subject))
}

/// The largest of some rates, compared exactly; 1 when there are none.
fn largest(rates: impl Iterator<Item = Rate>) -> Rate {
    rates
        .max_by(|a, b| {
            (i128::from(a.numerator) * i128::from(b.denominator))
                .cmp(&(i128::from(b.numerator) * i128::from(a.denominator)))
        })
        .unwrap_or(Rate::ONE)
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
