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
//!     - name: coffee earns double again
//!       points_per_unit: 2
//!       only: { categories: [coffee] }   # no other line earns here
//!       multipliers: { labels: { organic: 2, fairtrade: 2 } }
//!       combine: multiply                 # organic and fairtrade: x4
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
    /// What the lines it matches must come to for it to pay at all.
    pub minimum: Option<Minimum>,
    /// Whether a rule that pays anything stops the rules after it.
    pub stops: bool,
}

/// A rule's minimum over the lines it matches (Odoo's `minimum_qty` and
/// `minimum_amount`): both, when both are given. A return that takes the
/// matched lines below it takes back what the rule paid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Minimum {
    /// Units, all matched lines together (0: no minimum).
    pub quantity: i64,
    /// Money paid for them, minor units (0: no minimum).
    pub amount_minor: i64,
}

impl Minimum {
    /// Whether lines of `quantity` units for `amount_minor` meet it.
    pub fn met_by(self, quantity: i64, amount_minor: i64) -> bool {
        quantity >= self.quantity && amount_minor >= self.amount_minor
    }
}

impl LineRule {
    /// Whether `line` is one of the lines this rule pays on, and so one its
    /// minimum counts: in `only` (if given), not excluded, its multiplier
    /// not 0, for a per-unit rule; bought, for a product bonus.
    pub fn matches(&self, line: LineView<'_>) -> bool {
        match &self.pays {
            LinePay::PerUnit {
                multipliers,
                combine,
                exclude,
                only,
                ..
            } => {
                only.as_ref().is_none_or(|only| only.matches(line))
                    && !exclude.matches(line)
                    && multipliers.of(line, *combine).is_some()
            }
            LinePay::Product { buy, .. } => buy.matches(line),
        }
    }
}

/// What a line rule pays.
#[derive(Debug, Clone)]
pub enum LinePay {
    /// `points_per_unit` per major unit of each line it pays on (those in
    /// `only`, if given, and not in `exclude`), times the line's multiplier.
    PerUnit {
        /// Points per major unit.
        points_per_unit: Rate,
        /// Multipliers by what a line is.
        multipliers: LineMultipliers,
        /// How a line's several multipliers make one.
        combine: Combine,
        /// Lines that earn nothing under this rule.
        exclude: LineMatch,
        /// When given, the only lines that earn under this rule (Odoo's
        /// "points per unit spent on a category"): a line outside it earns
        /// nothing here, so a return of it takes back nothing of this rule.
        only: Option<LineMatch>,
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

/// How the several multipliers that match one line make its multiplier
/// (a 0 among them excludes the line either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// The largest applies (blue x2 and xxl x2: x2).
    #[default]
    Largest,
    /// They multiply, as Open Loyalty's label multipliers do (blue x2 and
    /// xxl x2: x4); the product is kept to a rate's 4 decimals, rounded
    /// down.
    Multiply,
}

/// Multipliers of a line by its labels, category and SKU. When several
/// match, a 0 among them excludes the line; otherwise they make one as the
/// rule's [`Combine`] says.
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
    /// Its labels, categories and SKUs, in that order.
    pub fn by_kind(&self) -> [&BTreeSet<String>; 3] {
        [&self.labels, &self.categories, &self.skus]
    }

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
    /// Its multipliers by label, by category and by SKU, in that order.
    pub fn by_kind(&self) -> [&BTreeMap<String, Rate>; 3] {
        [&self.labels, &self.categories, &self.skus]
    }

    /// The line's multiplier: `None` when a matching one is 0 (excluded),
    /// else the matching ones combined by `combine`, 1 when none matches.
    pub fn of(&self, line: LineView<'_>, combine: Combine) -> Option<Rate> {
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
        Some(match combine {
            Combine::Largest => Rate::largest(matching.into_iter()),
            Combine::Multiply => Rate::product(matching.into_iter()),
        })
    }
}

/// Which basket lines count toward the tier (`qualifying:` in the rules):
/// their money toward spend, lifetime value and the reports' spend, their
/// points toward qualifying points. Gift cards and delivery fees raising a
/// member's tier is what programmes complain of most.
///
/// ```yaml
/// qualifying:
///   exclude: { categories: [gift-card, delivery] }
/// ```
///
/// An excluded line still earns its redeemable points, as the earning
/// rules say. A purchase sent without lines counts whole; one whose lines
/// are all excluded is no purchase for the tier.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "QualifyingFile")]
pub struct Qualifying {
    /// Lines that do not count.
    pub exclude: LineMatch,
    /// [`Qualifying::describe`], worded once when the rules are read:
    /// every member answer carries it.
    words: Option<String>,
}

/// `qualifying` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QualifyingFile {
    #[serde(default)]
    exclude: LineMatch,
}

impl From<QualifyingFile> for Qualifying {
    fn from(file: QualifyingFile) -> Self {
        Self {
            words: excluded_in_words(&file.exclude),
            exclude: file.exclude,
        }
    }
}

impl Qualifying {
    /// Whether `line` counts toward the tier.
    pub fn counts(&self, line: LineView<'_>) -> bool {
        !self.exclude.matches(line)
    }

    /// What does not count, in words for a till or a report ("lines of
    /// category gift-card or delivery do not count toward the tier");
    /// `None` when every line counts.
    pub fn describe(&self) -> Option<&str> {
        self.words.as_deref()
    }
}

/// The words of [`Qualifying::describe`] for lines `excluded`.
fn excluded_in_words(excluded: &LineMatch) -> Option<String> {
    let named: Vec<String> = ["label", "category", "sku"]
        .into_iter()
        .zip(excluded.by_kind())
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(kind, keys)| {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            format!("{kind} {}", keys.join(" or "))
        })
        .collect();
    (!named.is_empty()).then(|| {
        format!(
            "lines of {} do not count toward the tier (spend, lifetime value, qualifying points)",
            named.join(", or of ")
        )
    })
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
    combine: Option<Combine>,
    #[serde(default)]
    exclude: LineMatch,
    #[serde(default)]
    only: Option<LineMatch>,
    #[serde(default)]
    buy: Option<LineMatch>,
    #[serde(default)]
    points: Option<super::values::Count>,
    #[serde(default)]
    per: Option<Per>,
    #[serde(default)]
    minimum: Option<MinimumFile>,
    #[serde(default, rename = "final")]
    stops: bool,
}

/// `minimum` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MinimumFile {
    #[serde(default)]
    quantity: Option<super::values::Count>,
    #[serde(default)]
    amount: Option<super::values::Money>,
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
                    if r.only.as_ref().is_some_and(LineMatch::is_empty) {
                        problem(
                            problems,
                            format!(
                                "line rule `{}`: `only` names no sku, category or label (no line would earn)",
                                r.name
                            ),
                        );
                    }
                    LinePay::PerUnit {
                        points_per_unit,
                        multipliers: r.multipliers,
                        combine: r.combine.unwrap_or_default(),
                        exclude: r.exclude,
                        only: r.only,
                    }
                }
                (None, Some(buy)) => {
                    if r.only.is_some() || r.combine.is_some() {
                        problem(
                            problems,
                            format!(
                                "line rule `{}` buys something: `only` and `combine` belong to a rule paying `points_per_unit` (`buy` already names its lines)",
                                r.name
                            ),
                        );
                    }
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
            let minimum = r.minimum.map(|m| Minimum {
                quantity: m.quantity.map_or(0, |q| q.0),
                amount_minor: m.amount.map_or(0, |a| a.0),
            });
            if minimum.is_some_and(|m| m == Minimum::default()) {
                problem(
                    problems,
                    format!(
                        "line rule `{}`: `minimum` gives neither `quantity` nor `amount`",
                        r.name
                    ),
                );
            }
            Some(LineRule {
                name: r.name,
                pays,
                minimum,
                stops: r.stops,
            })
        })
        .collect()
}
