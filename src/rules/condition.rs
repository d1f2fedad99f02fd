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

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::values::{Count, Money};
use crate::script::{Script, ScriptKind};

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

/// A tier condition, compiled.
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
}

const COMBINATORS: [&str; 4] = ["all", "any", "script", "script_file"];

/// The keys a condition may have, for error messages.
fn condition_keys() -> Vec<&'static str> {
    Metric::ALL
        .iter()
        .map(|m| m.name())
        .chain(COMBINATORS)
        .collect()
}

/// "; did you mean `x`?" for a name close to a known one, else nothing.
pub fn did_you_mean(unknown: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
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
                let script = super::values::load_script_file(&name, ScriptKind::Condition)
                    .map_err(de::Error::custom)?;
                Condition::Script(script)
            }
            "script" => {
                let source: String = map.next_value()?;
                let script =
                    Script::compile(&source, ScriptKind::Condition).map_err(de::Error::custom)?;
                Condition::Script(script)
            }
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
}
