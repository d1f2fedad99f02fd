//! Test cases that marketers write next to their rules, so a change that
//! breaks an intended outcome is caught before it goes live.
//!
//! A rules file `program.yaml` may have a sibling `program.test.yaml`:
//!
//! ```yaml
//! tests:
//!   - name: a big spender in the flagship region is platinum
//!     metrics: { purchase_volume: "5000.00", qualifying_points: 100 }
//!     attributes: { region: flagship }
//!     expect_tier: platinum
//!   - name: 200.00 at the till earns the bonus
//!     purchase: { amount: "200.00", channel: pos }
//!     expect_points: 225
//! ```
//!
//! Each case gives a member's metrics (money in major units, as in rules)
//! and attributes, and expects the tier a member with those metrics
//! qualifies for and/or the points a purchase earns (made by a member in
//! that tier, at `at` if given, so campaigns can be tested). Cases run through the
//! same engine as the service.

use std::{collections::BTreeMap, path::Path};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{
    Diagnostic, RuleSet, Severity,
    values::{Count, LoadContext, Money},
};
use crate::engine::{self, Metrics, PurchaseFacts, Subject, TierState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    tests: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    metrics: MetricsSpec,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    purchase: Option<PurchaseSpec>,
    #[serde(default)]
    expect_tier: Option<String>,
    #[serde(default)]
    expect_points: Option<Count>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MetricsSpec {
    #[serde(default)]
    qualifying_points: Option<Count>,
    #[serde(default)]
    purchase_volume: Option<Money>,
    #[serde(default)]
    purchase_count: Option<Count>,
    #[serde(default)]
    lifetime_value: Option<Money>,
    #[serde(default)]
    points_balance: Option<Count>,
    #[serde(default)]
    activity_count: Option<Count>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurchaseSpec {
    amount: Money,
    /// When it happens (campaigns are time-boxed); default: long ago.
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    store_id: String,
    #[serde(default)]
    tags: Vec<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's name as written.
    pub name: String,
    /// `None` when it passed; otherwise what differed.
    pub failure: Option<String>,
}

/// The file holding the cases of `rules_file` (`x.yaml` -> `x.test.yaml`).
pub fn cases_file(rules_file: &Path) -> std::path::PathBuf {
    rules_file.with_extension("test.yaml")
}

/// Runs the cases in `file` against `rules`.
///
/// # Errors
/// A [`Diagnostic`] when the cases file cannot be read or parsed.
pub fn run_cases(rules: &RuleSet, file: &Path) -> Result<Vec<CaseResult>, Diagnostic> {
    let diagnostic = |line, column, message: String| Diagnostic {
        file: file.to_owned(),
        line,
        column,
        severity: Severity::Error,
        message,
    };
    let text = std::fs::read_to_string(file)
        .map_err(|err| diagnostic(0, 0, format!("cannot read the test cases: {err}")))?;
    let parsed = {
        let _context = LoadContext::enter(Some(rules.currency));
        serde_yaml::from_str::<CasesFile>(&text)
    };
    let cases = parsed.map_err(|err| {
        let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
        diagnostic(line, column, err.to_string())
    })?;
    Ok(cases.tests.iter().map(|case| run(rules, case)).collect())
}

fn run(rules: &RuleSet, case: &Case) -> CaseResult {
    let spec = &case.metrics;
    let metrics = Metrics {
        qualifying_points: spec.qualifying_points.map_or(0, |c| c.0),
        purchase_volume_minor: spec.purchase_volume.map_or(0, |m| m.0),
        purchase_count: spec.purchase_count.map_or(0, |c| c.0),
        lifetime_value_minor: spec.lifetime_value.map_or(0, |m| m.0),
        points_balance: spec.points_balance.map_or(0, |c| c.0),
        activity_count: spec.activity_count.map_or(0, |c| c.0),
    };
    let subject = Subject {
        metrics: &metrics,
        attributes: &case.attributes,
    };
    let mut problems = Vec::new();
    if let Some(expected) = &case.expect_tier {
        let tier = qualified_tier(rules, subject);
        if &tier != expected {
            problems.push(format!("expected tier {expected}, got {tier}"));
        }
    }
    if let Some(expected) = case.expect_points {
        match &case.purchase {
            None => problems.push("expect_points needs a purchase".to_owned()),
            Some(purchase) => {
                let tier = qualified_tier(rules, subject);
                let facts = PurchaseFacts {
                    amount_minor: purchase.amount.0,
                    channel: &purchase.channel,
                    store_id: &purchase.store_id,
                    tags: &purchase.tags,
                    occurred_at: purchase.at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                    tier_id: &tier,
                };
                let points = engine::points_for_purchase(rules, facts, subject);
                if points != expected.0 {
                    problems.push(format!("expected {} points, got {points}", expected.0));
                }
            }
        }
    }
    if case.expect_tier.is_none() && case.expect_points.is_none() {
        problems.push("the case expects nothing: add expect_tier or expect_points".to_owned());
    }
    CaseResult {
        name: case.name.clone(),
        failure: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

/// The tier a member with these metrics qualifies for, from the entry tier.
fn qualified_tier(rules: &RuleSet, subject: Subject<'_>) -> String {
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let entry = TierState {
        tier_id: rules.entry_tier().id.clone(),
        since: at,
        retain_failing_since: None,
        tier_override: None,
    };
    engine::evaluate(rules, &entry, subject, at).state.tier_id
}
