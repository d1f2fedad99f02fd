//! Earning per basket line, as tills send baskets: rules that pay points
//! per unit of money on the lines they match, multiplied by label,
//! category or SKU (a multiplier of 0 excludes the line), and product
//! bonuses that pay fixed points for buying something.
//!
//! ```yaml
//! earning:
//!   points_per_unit: 1
//!   minimum_order: "5.00"        # below this a purchase earns nothing
//!   line_rules:
//!     - name: everything but gift cards and delivery
//!       points_per_unit: 1
//!       multipliers: { categories: { coffee: 2 } }
//!       exclude: { categories: [gift-card, delivery] }
//!     - name: the new blend
//!       buy: { sku: BLEND-7 }
//!       points: 100
//!       per: purchase             # or unit
//! ```
//!
//! Rules add up, in order; a rule marked `final` that pays anything stops
//! the rules after it (Open Loyalty's "last executed rule"). A purchase sent
//! without lines earns by `points_per_unit` on its amount, as before.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Problem, values::Rate};
pub use crate::script::LineView;

/// One earning rule over basket lines.
#[derive(Debug, Clone)]
pub struct LineRule {
    /// Shown in `rules check` and the docs.
    pub name: String,
    /// What it pays.
    pub pays: LinePay,
    /// Whether a rule that pays anything stops the rules after it.
    pub stops: bool,
}

/// What a line rule pays.
#[derive(Debug, Clone)]
pub enum LinePay {
    /// `points_per_unit` per major unit of each matching line's amount,
    /// times the line's multiplier.
    PerUnit {
        /// Points per major unit.
        points_per_unit: Rate,
        /// Multipliers by what a line is.
        multipliers: LineMultipliers,
        /// Lines that earn nothing under this rule.
        exclude: LineMatch,
    },
    /// Fixed points for buying a matching line.
    Product {
        /// Which lines.
        buy: LineMatch,
        /// Points paid.
        points: i64,
        /// Once per purchase, or per unit bought.
        per_unit: bool,
    },
}

/// Multipliers of a line by its labels, category and SKU. When several
/// match, a 0 among them excludes the line; otherwise the largest applies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineMultipliers {
    /// By label.
    #[serde(default)]
    pub labels: BTreeMap<String, Rate>,
    /// By category.
    #[serde(default)]
    pub categories: BTreeMap<String, Rate>,
    /// By SKU.
    #[serde(default)]
    pub skus: BTreeMap<String, Rate>,
}

/// Lines named by label, category or SKU: a line matches when any of its
/// labels, its category or its SKU is listed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineMatch {
    /// Labels.
    #[serde(default, alias = "label", deserialize_with = "one_or_many")]
    pub labels: BTreeSet<String>,
    /// Categories.
    #[serde(default, alias = "category", deserialize_with = "one_or_many")]
    pub categories: BTreeSet<String>,
    /// SKUs.
    #[serde(default, alias = "sku", deserialize_with = "one_or_many")]
    pub skus: BTreeSet<String>,
}

/// `sku: X` or `skus: [X, Y]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(BTreeSet<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => BTreeSet::from([one]),
        OneOrMany::Many(many) => many,
    })
}

impl LineMatch {
    pub(super) fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.categories.is_empty() && self.skus.is_empty()
    }

    /// Whether `line` is one of these.
    pub fn matches(&self, line: LineView<'_>) -> bool {
        self.skus.contains(line.sku)
            || self.categories.contains(line.category)
            || line.labels.iter().any(|l| self.labels.contains(l))
    }
}

impl LineMultipliers {
    /// The line's multiplier: `None` when a matching one is 0 (excluded),
    /// else the largest matching one, 1 when none matches.
    pub fn of(&self, line: LineView<'_>) -> Option<Rate> {
        let matching: Vec<Rate> = line
            .labels
            .iter()
            .filter_map(|l| self.labels.get(l))
            .chain(self.categories.get(line.category))
            .chain(self.skus.get(line.sku))
            .copied()
            .collect();
        if matching.iter().any(|r| r.numerator == 0) {
            return None;
        }
        Some(Rate::largest(matching.into_iter()))
    }
}

/// A line rule as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LineRuleFile {
    name: String,
    #[serde(default)]
    points_per_unit: Option<Rate>,
    #[serde(default)]
    multipliers: LineMultipliers,
    #[serde(default)]
    exclude: LineMatch,
    #[serde(default)]
    buy: Option<LineMatch>,
    #[serde(default)]
    points: Option<super::values::Count>,
    #[serde(default)]
    per: Option<Per>,
    #[serde(default, rename = "final")]
    stops: bool,
}

/// How often a product bonus pays.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Per {
    Purchase,
    Unit,
}

/// Checks each rule is one kind or the other, completely.
pub(super) fn compile(raw: Vec<LineRuleFile>, problems: &mut Vec<Problem>) -> Vec<LineRule> {
    raw.into_iter()
        .filter_map(|r| {
            let at = format!("name: {}", r.name);
            let problem = |problems: &mut Vec<Problem>, message: String| {
                problems.push(Problem::at(at.clone(), 0, message));
            };
            let pays = match (r.points_per_unit, r.buy) {
                (Some(points_per_unit), None) => {
                    if r.points.is_some() || r.per.is_some() {
                        problem(
                            problems,
                            format!(
                                "line rule `{}` pays per unit spent: `points` and `per` belong to a product bonus (`buy:`)",
                                r.name
                            ),
                        );
                    }
                    LinePay::PerUnit {
                        points_per_unit,
                        multipliers: r.multipliers,
                        exclude: r.exclude,
                    }
                }
                (None, Some(buy)) => {
                    if buy.is_empty() {
                        problem(
                            problems,
                            format!("line rule `{}`: `buy` names no sku, category or label", r.name),
                        );
                    }
                    let Some(points) = r.points else {
                        problem(
                            problems,
                            format!("line rule `{}` buys something but gives no `points`", r.name),
                        );
                        return None;
                    };
                    LinePay::Product {
                        buy,
                        points: points.0,
                        per_unit: matches!(r.per, Some(Per::Unit)),
                    }
                }
                (Some(_), Some(_)) => {
                    problem(
                        problems,
                        format!(
                            "line rule `{}` has both `points_per_unit` and `buy`: make them two rules",
                            r.name
                        ),
                    );
                    return None;
                }
                (None, None) => {
                    problem(
                        problems,
                        format!(
                            "line rule `{}` pays nothing: give `points_per_unit`, or `buy` and `points`",
                            r.name
                        ),
                    );
                    return None;
                }
            };
            Some(LineRule {
                name: r.name,
                pays,
                stops: r.stops,
            })
        })
        .collect()
}
