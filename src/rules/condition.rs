//! Tier conditions as marketing staff write them:
//!
//! ```yaml
//! qualify:
//!   any:
//!     - qualifying_points: 2000
//!     - purchase_volume: "1500.00"
//!     - script: 'purchase_count >= 20 && attributes.region == "north"'
//! ```
//!
//! A condition is a map with exactly one key: a metric (a threshold the
//! metric must reach), `all` or `any` (a list of conditions), or `script` (a
//! rhai expression). Each is checked while it is read, so that a mistake is
//! reported at its own line and column.
//!
//! Reporting segments use the same language with two lifecycle measures
//! more, in whole days, bounded from either side:
//!
//! ```yaml
//! when:
//!   days_since_last_purchase: { at_least: 91, at_most: 180 }
//! ```
//!
//! Tiers cannot use them: a tier follows what members do, not the calendar
//! alone, and the decision must be the same however late it is evaluated.

use std::{cell::Cell, fmt};

use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::values::{Count, Money};
use crate::script::{Script, ScriptKind, did_you_mean};

/// A number the tier rules can put a threshold on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Status points earned in the qualification window.
    QualifyingPoints,
    /// Spend in the window, minor units.
    PurchaseVolume,
    /// Purchases in the window.
    PurchaseCount,
    /// Net spend since the first event, minor units.
    LifetimeValue,
    /// Activities (reviews, referrals, visits...) in the window: engagement.
    ActivityCount,
}

impl Metric {
    /// Every metric, in the order the docs list them.
    pub const ALL: [Metric; 5] = [
        Metric::QualifyingPoints,
        Metric::PurchaseVolume,
        Metric::PurchaseCount,
        Metric::LifetimeValue,
        Metric::ActivityCount,
    ];

    /// The name used in rules files and scripts.
    pub fn name(self) -> &'static str {
        match self {
            Metric::QualifyingPoints => "qualifying_points",
            Metric::PurchaseVolume => "purchase_volume",
            Metric::PurchaseCount => "purchase_count",
            Metric::LifetimeValue => "lifetime_value",
            Metric::ActivityCount => "activity_count",
        }
    }

    /// True when the metric is an amount of money (written in major units).
    pub fn is_money(self) -> bool {
        matches!(self, Metric::PurchaseVolume | Metric::LifetimeValue)
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A measure of where a member is in its lifecycle, in whole days as of
/// the day a report looks at. Known to reporting segments only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// Days since the last purchase (since enrolment when none is kept).
    DaysSinceLastPurchase,
    /// Days since the member enrolled.
    DaysSinceEnrolment,
}

impl Lifecycle {
    /// Both measures.
    pub const ALL: [Lifecycle; 2] = [
        Lifecycle::DaysSinceLastPurchase,
        Lifecycle::DaysSinceEnrolment,
    ];

    /// The name used in rules files and scripts.
    pub fn name(self) -> &'static str {
        match self {
            Lifecycle::DaysSinceLastPurchase => "days_since_last_purchase",
            Lifecycle::DaysSinceEnrolment => "days_since_enrolment",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A condition, compiled.
#[derive(Debug, Clone)]
pub enum Condition {
    /// `metric >= threshold` (money in minor units).
    AtLeast {
        /// The metric compared.
        metric: Metric,
        /// The least value that meets the condition.
        threshold: i64,
    },
    /// Every condition holds.
    All(Vec<Condition>),
    /// At least one condition holds.
    Any(Vec<Condition>),
    /// A rhai expression yielding a bool.
    Script(Script),
    /// A lifecycle measure within bounds (segments only).
    Within {
        /// The measure compared.
        measure: Lifecycle,
        /// The least number of days, if bounded below.
        at_least: Option<i64>,
        /// The most days, if bounded above.
        at_most: Option<i64>,
    },
}

impl Condition {
    /// Adds the scripts of this condition, at any depth, to `scripts`,
    /// each named `at` (where the condition is written).
    pub fn scripts<'a>(&'a self, at: &str, scripts: &mut Vec<(String, &'a Script)>) {
        match self {
            Condition::Script(script) => scripts.push((at.to_owned(), script)),
            Condition::All(all) | Condition::Any(all) => {
                for condition in all {
                    condition.scripts(at, scripts);
                }
            }
            Condition::AtLeast { .. } | Condition::Within { .. } => {}
        }
    }
}

thread_local! {
    /// Set while a segment's condition is read: only then are lifecycle
    /// measures and segment scripts accepted.
    static IN_SEGMENT: Cell<bool> = const { Cell::new(false) };
}

/// A reporting segment's condition: the tier language plus the lifecycle
/// measures ([`Lifecycle`]) and scripts that may read them.
#[derive(Debug, Clone)]
pub struct SegmentCondition(pub Condition);

impl<'de> serde::Deserialize<'de> for SegmentCondition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Leave;
        impl Drop for Leave {
            fn drop(&mut self) {
                IN_SEGMENT.with(|s| s.set(false));
            }
        }
        IN_SEGMENT.with(|s| s.set(true));
        let _leave = Leave;
        Condition::deserialize(deserializer).map(SegmentCondition)
    }
}

fn in_segment() -> bool {
    IN_SEGMENT.with(Cell::get)
}

fn script_kind() -> ScriptKind {
    if in_segment() {
        ScriptKind::Segment
    } else {
        ScriptKind::Condition
    }
}

/// `{ at_least: N, at_most: N }`, either or both, as written in a segment.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Bounds {
    #[serde(default)]
    at_least: Option<Count>,
    #[serde(default)]
    at_most: Option<Count>,
}

const COMBINATORS: [&str; 4] = ["all", "any", "script", "script_file"];

/// The keys a condition may have, for error messages.
fn condition_keys() -> Vec<&'static str> {
    let lifecycle = Lifecycle::ALL.iter().filter(|_| in_segment());
    Metric::ALL
        .iter()
        .map(|m| m.name())
        .chain(lifecycle.map(|l| l.name()))
        .chain(COMBINATORS)
        .collect()
}

impl<'de> serde::Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ConditionVisitor)
    }
}

struct ConditionVisitor;

impl<'de> Visitor<'de> for ConditionVisitor {
    type Value = Condition;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a condition: a map with one key among {}",
            condition_keys().join(", ")
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Condition, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "empty condition: name a metric, `all`, `any` or `script`",
            ));
        };
        let condition = match key.as_str() {
            "all" => Condition::All(non_empty(map.next_value()?, "all")?),
            "any" => Condition::Any(non_empty(map.next_value()?, "any")?),
            "script_file" => {
                let name: String = map.next_value()?;
                let script = super::values::load_script_file(&name, script_kind())
                    .map_err(de::Error::custom)?;
                Condition::Script(script)
            }
            "script" => {
                let source: String = map.next_value()?;
                let script = Script::compile(&source, script_kind()).map_err(de::Error::custom)?;
                Condition::Script(script)
            }
            name if Lifecycle::from_name(name).is_some() => lifecycle(name, &mut map)?,
            name => {
                let metric = Metric::from_name(name).ok_or_else(|| {
                    de::Error::custom(format!(
                        "unknown condition `{name}`, expected one of {}{}",
                        condition_keys().join(", "),
                        did_you_mean(name, &condition_keys())
                    ))
                })?;
                let threshold = if metric.is_money() {
                    map.next_value::<Money>()?.0
                } else {
                    map.next_value::<Count>()?.0
                };
                Condition::AtLeast { metric, threshold }
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a condition has exactly one key, but `{key}` is followed by `{extra}`; \
                 combine conditions with `all:` or `any:`"
            )));
        }
        Ok(condition)
    }
}

/// Reads the bounds of lifecycle measure `name`, in a segment only.
fn lifecycle<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Condition, A::Error> {
    let measure = Lifecycle::from_name(name).ok_or_else(|| de::Error::custom(name))?;
    if !in_segment() {
        return Err(de::Error::custom(format!(
            "`{name}` is for reporting segments only: a tier cannot depend on the calendar alone"
        )));
    }
    let bounds: Bounds = map.next_value()?;
    let (at_least, at_most) = (bounds.at_least.map(|c| c.0), bounds.at_most.map(|c| c.0));
    match (at_least, at_most) {
        (None, None) => Err(de::Error::custom(format!(
            "`{name}` needs `at_least`, `at_most` or both, e.g. {{ at_most: 30 }}"
        ))),
        (Some(low), Some(high)) if low > high => Err(de::Error::custom(format!(
            "`{name}`: at_least ({low}) is above at_most ({high}), so no member could match"
        ))),
        _ => Ok(Condition::Within {
            measure,
            at_least,
            at_most,
        }),
    }
}

fn non_empty<E: de::Error>(list: Vec<Condition>, key: &str) -> Result<Vec<Condition>, E> {
    if list.is_empty() {
        return Err(E::custom(format!("`{key}` needs at least one condition")));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Condition, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_thresholds_and_combinators() {
        let c = parse("any:\n  - qualifying_points: 500\n  - purchase_volume: \"120.50\"\n")
            .expect("valid");
        let Condition::Any(list) = c else {
            panic!("expected any, got {c:?}")
        };
        assert!(matches!(
            list[1],
            Condition::AtLeast {
                metric: Metric::PurchaseVolume,
                threshold: 12_050
            }
        ));
    }

    #[test]
    fn explains_mistakes() {
        let err = parse("qualifying_pionts: 5").expect_err("misspelt");
        assert!(err.contains("did you mean `qualifying_points`"), "{err}");
        let err = parse("qualifying_points: -5").expect_err("negative");
        assert!(err.contains("negative"), "{err}");
        let err = parse("qualifying_points: 5\npurchase_count: 2").expect_err("two keys");
        assert!(err.contains("exactly one key"), "{err}");
        let err = parse("purchase_volume: 1.005").expect_err("too precise");
        assert!(err.contains("decimals"), "{err}");
        let err = parse("script: 'nonsense_var > 1'").expect_err("bad script");
        assert!(err.contains("script line 1"), "{err}");
    }

    fn parse_segment(yaml: &str) -> Result<Condition, String> {
        serde_yaml::from_str::<SegmentCondition>(yaml)
            .map(|s| s.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn lifecycle_measures_are_for_segments_only() {
        let c = parse_segment("days_since_last_purchase: { at_least: 91, at_most: 180 }")
            .expect("valid in a segment");
        assert!(matches!(
            c,
            Condition::Within {
                measure: Lifecycle::DaysSinceLastPurchase,
                at_least: Some(91),
                at_most: Some(180)
            }
        ));
        let err = parse("days_since_enrolment: { at_most: 90 }").expect_err("not in a tier");
        assert!(err.contains("reporting segments only"), "{err}");
        // The flag does not outlive the segment.
        assert!(parse("days_since_enrolment: { at_most: 90 }").is_err());
        let err = parse_segment("days_since_enrolment: {}").expect_err("no bound");
        assert!(err.contains("at_least"), "{err}");
        let err = parse_segment("days_since_enrolment: { at_least: 9, at_most: 3 }")
            .expect_err("empty range");
        assert!(err.contains("no member could match"), "{err}");
        let err = parse_segment("days_since_enrolment: { at_mots: 9 }").expect_err("misspelt");
        assert!(err.contains("at_most"), "{err}");
        assert!(parse_segment("script: 'days_since_enrolment < 30'").is_ok());
        assert!(parse("script: 'days_since_enrolment < 30'").is_err());
    }
}
