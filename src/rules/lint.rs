//! Warnings about rules that are valid but probably not what was meant:
//! a ladder whose thresholds do not rise, a `retain` bar above the
//! `qualify` bar of the same tier, a tier nobody can stay in because a
//! higher tier asks for no more, a tier nobody can reach because it counts
//! activities the rules never record, a line multiplier its own rule
//! excludes, a line rule that a `final` rule before it always stops. They
//! never stop a file from going live.

use std::{collections::BTreeMap, path::Path};

use super::{
    Condition, Diagnostic, LineMatch, LineMultipliers, LinePay, LineRule, Metric, RuleSet,
    Severity, find_nth,
};

/// The least value of each metric that a condition certainly requires:
/// thresholds, and thresholds under `all`. `any` and scripts require no
/// single metric, so they add nothing.
fn requirements(condition: &Condition, out: &mut BTreeMap<&'static str, (Metric, i64)>) {
    match condition {
        Condition::AtLeast { metric, threshold } => {
            let entry = out.entry(metric.name()).or_insert((*metric, *threshold));
            entry.1 = entry.1.max(*threshold);
        }
        Condition::All(list) => list.iter().for_each(|c| requirements(c, out)),
        Condition::Any(_) | Condition::Script(_) | Condition::Within { .. } => {}
    }
}

fn required(condition: Option<&Condition>) -> BTreeMap<&'static str, (Metric, i64)> {
    let mut out = BTreeMap::new();
    if let Some(condition) = condition {
        requirements(condition, &mut out);
    }
    out
}

fn shown(rules: &RuleSet, metric: Metric, value: i64) -> String {
    if metric.is_money() {
        rules.currency.format_minor(value)
    } else {
        value.to_string()
    }
}

/// Warnings for a valid rules set, located at the tier they concern.
pub fn lint(rules: &RuleSet, file: &Path) -> Vec<Diagnostic> {
    let at_tier =
        |id: &str, message: String| warning_at(rules, file, &format!("id: {id}"), message);
    let mut warnings = Vec::new();
    for pair in rules.tiers.windows(2).skip(1) {
        let (lower, upper) = (&pair[0], &pair[1]);
        let below = required(lower.qualify.as_ref());
        for (name, (metric, threshold)) in required(upper.qualify.as_ref()) {
            if let Some((_, lower_threshold)) = below.get(name).filter(|(_, t)| *t >= threshold) {
                warnings.push(at_tier(
                    &upper.id,
                    format!(
                        "thresholds do not rise: {} qualifies at {name} {}, not above {}'s {}",
                        upper.id,
                        shown(rules, metric, threshold),
                        lower.id,
                        shown(rules, metric, *lower_threshold)
                    ),
                ));
            }
        }
    }
    for tier in &rules.tiers {
        let qualify = required(tier.qualify.as_ref());
        for (name, (metric, retain)) in required(tier.retain.as_ref()) {
            if let Some((_, qualify_at)) = qualify.get(name).filter(|(_, q)| retain > *q) {
                warnings.push(at_tier(
                    &tier.id,
                    format!(
                        "retain is stricter than qualify: {} keeps {name} at {}, above the {} it takes to get in",
                        tier.id,
                        shown(rules, metric, retain),
                        shown(rules, metric, *qualify_at)
                    ),
                ));
            }
        }
    }
    warnings.extend(unused_scripts(rules, file));
    warnings.extend(line_rule_warnings(rules, file));
    for (index, tier) in rules.tiers.iter().enumerate().skip(1) {
        if let Some(above) = rules.tiers[index + 1..]
            .iter()
            .find(|above| implied_by(above, tier))
        {
            warnings.push(at_tier(
                &tier.id,
                format!(
                    "no member can stay in {}: whoever meets its qualify also meets {}'s, and promotion goes to the highest tier",
                    tier.id, above.id
                ),
            ));
        }
    }
    if rules.activities.is_empty() {
        for tier in &rules.tiers {
            let needs = required(tier.qualify.as_ref());
            if let Some((_, count)) = needs
                .get(Metric::ActivityCount.name())
                .filter(|(_, n)| *n > 0)
            {
                warnings.push(at_tier(
                    &tier.id,
                    format!(
                        "no member can reach {}: it needs activity_count {count}, but the rules define no `activities` to count",
                        tier.id
                    ),
                ));
            }
        }
    }
    warnings
}

/// A warning located at the line rule named `name`.
pub fn at_line_rule(rules: &RuleSet, file: &Path, name: &str, message: String) -> Diagnostic {
    warning_at(rules, file, &format!("name: {name}"), message)
}

/// A warning located at the first `needle` of the rules' text.
fn warning_at(rules: &RuleSet, file: &Path, needle: &str, message: String) -> Diagnostic {
    let (line, column) = find_nth(&rules.source, needle, 0).unwrap_or((0, 0));
    Diagnostic {
        file: file.to_owned(),
        line,
        column,
        severity: Severity::Warning,
        message,
    }
}

/// Line rules that cannot do what they say: a multiplier for lines the
/// same rule excludes, and rules after a `final` rule that pays on every
/// line (it always stops them).
fn line_rule_warnings(rules: &RuleSet, file: &Path) -> Vec<Diagnostic> {
    let line_rules = &rules.earning.line_rules;
    let mut warnings = Vec::new();
    for rule in line_rules {
        if let LinePay::PerUnit {
            multipliers,
            exclude,
            ..
        } = &rule.pays
        {
            for (kind, key) in excluded_multipliers(multipliers, exclude) {
                let message = format!(
                    "line rule `{}`: the multiplier for {kind} `{key}` never applies, the rule excludes those lines",
                    rule.name
                );
                warnings.push(at_line_rule(rules, file, &rule.name, message));
            }
        }
    }
    if let Some(stopper) = line_rules.iter().position(pays_on_every_line) {
        for later in &line_rules[stopper + 1..] {
            let message = format!(
                "line rule `{}` never runs: `{}` before it is final and pays on every line",
                later.name, line_rules[stopper].name
            );
            warnings.push(at_line_rule(rules, file, &later.name, message));
        }
    }
    warnings
}

/// The (kind, key) of each multiplier that `exclude` also names.
fn excluded_multipliers<'a>(
    multipliers: &'a LineMultipliers,
    exclude: &LineMatch,
) -> Vec<(&'static str, &'a str)> {
    let by = [
        ("label", &multipliers.labels, &exclude.labels),
        ("category", &multipliers.categories, &exclude.categories),
        ("sku", &multipliers.skus, &exclude.skus),
    ];
    by.into_iter()
        .flat_map(|(kind, rates, excluded)| {
            rates
                .keys()
                .filter(|key| excluded.contains(*key))
                .map(move |key| (kind, key.as_str()))
        })
        .collect()
}

/// A `final` per-unit rule that excludes nothing and multiplies nothing by
/// 0: it pays on every line that costs something, so it always stops the
/// rules after it.
fn pays_on_every_line(rule: &LineRule) -> bool {
    let LinePay::PerUnit {
        points_per_unit,
        multipliers,
        exclude,
        only: None,
        ..
    } = &rule.pays
    else {
        return false;
    };
    let zero = [
        &multipliers.labels,
        &multipliers.categories,
        &multipliers.skus,
    ]
    .iter()
    .any(|rates| rates.values().any(|r| r.numerator == 0));
    rule.stops && points_per_unit.numerator > 0 && exclude.is_empty() && !zero
}

/// `.rhai` files next to the rules that no rule uses.
fn unused_scripts(rules: &RuleSet, file: &Path) -> Vec<Diagnostic> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut unused: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .filter(|p| !rules.script_files.iter().any(|used| same_file(used, p)))
        .collect();
    unused.sort();
    unused
        .into_iter()
        .map(|path| {
            let message = "unused script: no rule in this directory refers to it";
            Diagnostic::about_file(path, Severity::Warning, message)
        })
        .collect()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// True when everyone who meets `lower`'s `qualify` also meets `upper`'s:
/// `upper` is plain thresholds (`all` of them, no `any` or script) and each
/// of them is required by `lower` at least as high.
fn implied_by(upper: &super::Tier, lower: &super::Tier) -> bool {
    fn plain(condition: &Condition) -> bool {
        match condition {
            Condition::AtLeast { .. } => true,
            Condition::All(list) => list.iter().all(plain),
            Condition::Any(_) | Condition::Script(_) | Condition::Within { .. } => false,
        }
    }
    let Some(upper_qualify) = upper.qualify.as_ref().filter(|c| plain(c)) else {
        return false;
    };
    let needs = required(Some(upper_qualify));
    let has = required(lower.qualify.as_ref());
    !needs.is_empty()
        && needs
            .iter()
            .all(|(name, (_, threshold))| has.get(name).is_some_and(|(_, t)| t >= threshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LADDER: &str = "\
program: p
version: v1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
tiers:
  - id: bronze
  - id: silver
    qualify: { purchase_volume: \"500.00\" }
    retain: { purchase_volume: \"600.00\" }
  - id: gold
    qualify: { all: [ { purchase_volume: \"400.00\" }, { purchase_count: 3 } ] }
";

    /// The warnings for `text`, read as `ladder.yaml`, as printed.
    fn warnings(text: &str) -> Vec<String> {
        let file = Path::new("ladder.yaml");
        let rules = super::super::load(&super::super::Candidate::new(file, text)).expect("valid");
        lint(&rules, file).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn warns_about_a_ladder_that_does_not_rise_and_a_strict_retain() {
        let text = warnings(LADDER);
        assert_eq!(text.len(), 2, "{text:#?}");
        let unreachable = LADDER.replace(
            "purchase_volume: \"400.00\" }, { purchase_count: 3 }",
            "purchase_volume: \"400.00\" }",
        );
        let text = warnings(&unreachable);
        assert!(
            text.iter().any(|w| w.contains(
                "no member can stay in silver: whoever meets its qualify also meets gold's"
            )),
            "{text:#?}"
        );
        assert!(text.iter().any(|w| w.starts_with("ladder.yaml:12:5: warning: thresholds do not rise: gold qualifies at purchase_volume 400.00, not above silver's 500.00")), "{text:#?}");
        assert!(text.iter().any(|w| w.starts_with("ladder.yaml:9:5: warning: retain is stricter than qualify")), "{text:#?}");
    }

    #[test]
    fn warns_about_line_rules_that_cannot_do_what_they_say() {
        let about_lines = |text: &str| -> Vec<String> {
            warnings(text)
                .into_iter()
                .filter(|w| w.contains("line rule"))
                .collect()
        };
        let text = LADDER.replace(
            "  points_per_unit: 1\n",
            "  points_per_unit: 1\n  line_rules:\n    - name: all\n      points_per_unit: 1\n      multipliers: { categories: { coffee: 2 } }\n      exclude: { categories: [coffee] }\n      final: true\n    - { name: bonus, buy: { sku: X }, points: 5 }\n",
        );
        assert_eq!(
            about_lines(&text),
            [
                "ladder.yaml:8:7: warning: line rule `all`: the multiplier for category `coffee` never applies, the rule excludes those lines",
            ]
        );
        let text = text.replace("      exclude: { categories: [coffee] }\n", "");
        assert_eq!(
            about_lines(&text),
            [
                "ladder.yaml:12:9: warning: line rule `bonus` never runs: `all` before it is final and pays on every line"
            ]
        );
    }

    #[test]
    fn warns_about_engagement_that_nothing_records() {
        let text = LADDER.replace(
            "{ purchase_count: 3 }",
            "{ purchase_count: 3 }, { activity_count: 2 }",
        );
        let found = warnings(&text);
        assert!(
            found.iter().any(|w| w.starts_with(
                "ladder.yaml:12:5: warning: no member can reach gold: it needs activity_count 2"
            )),
            "{found:#?}"
        );
        let with_activities = format!("{text}activities:\n  review: {{ points: 10 }}\n");
        let found = warnings(&with_activities);
        assert!(
            !found.iter().any(|w| w.contains("no member can reach")),
            "{found:#?}"
        );
    }

    #[test]
    fn the_example_rules_have_no_warnings() {
        let file = Path::new("rules/example.yaml");
        let rules = super::super::load(file).expect("valid");
        assert_eq!(lint(&rules, file), Vec::new());
    }
}
