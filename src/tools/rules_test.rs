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
//!   - name: a big return drops her back after the grace period
//!     events:
//!       - at: 2026-03-02
//!         purchase: { amount: "450.00", channel: pos }
//!         expect_tier: silver
//!       - at: 2026-03-10
//!         return: { amount: "300.00" }
//!       - at: 2026-04-10
//!         expect_tier: bronze
//! ```
//!
//! A case either gives a member's metrics (money in major units, as in
//! rules) and attributes, and expects the tier a member with those metrics
//! qualifies for and/or the points a purchase earns; or it plays a member's
//! dated `events` (purchases, returns, activities, adjustments, redemptions,
//! and steps where nothing happens but time passes) through the same code
//! as the service ([`crate::domain::apply`]), checking the tier, the
//! points each event moved and the balance after any step.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{
    domain::{
        apply::{self, Effect},
        books::{self, Books, ReturnError},
        decide::{self, Metrics, Subject, TierState},
        earn::{self, PurchaseFacts},
        member::MemberState,
        receipt::{LineSize, OrderRedemptions, Receipt, ReturnLine, ReturnRefused, Returned},
    },
    rules::{
        self, Count, Diagnostic, LineMatch, LinePay, LineRule, Moment, Money, Rate, Rejected,
        RuleSet, Severity,
    },
    tools::simulate::SlowScript,
};

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
    #[serde(default)]
    expect_balance: Option<i64>,
    #[serde(default)]
    events: Vec<Step>,
}

/// One dated step of a member's story: at most one event, then what the
/// member should look like.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    at: Moment,
    #[serde(default)]
    purchase: Option<PurchaseSpec>,
    #[serde(default, rename = "return")]
    return_of: Option<ReturnSpec>,
    #[serde(default)]
    activity: Option<ActivitySpec>,
    #[serde(default)]
    adjust: Option<i64>,
    #[serde(default)]
    redeem: Option<Count>,
    /// A reward of the catalogue redeemed at its cost, as `RedeemPoints`
    /// with a `reward_id` is.
    #[serde(default)]
    reward: Option<String>,
    /// The tier after the step.
    #[serde(default)]
    expect_tier: Option<String>,
    /// Points the step's event moved (negative for returns, redemptions).
    #[serde(default)]
    expect_points: Option<i64>,
    /// The points balance after the step.
    #[serde(default)]
    expect_balance: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnSpec {
    /// The refund; with `lines`, optional (then what the lines come to).
    #[serde(default)]
    amount: Option<Money>,
    /// The `id` of the purchase returned; default: the latest purchase.
    #[serde(default)]
    of: Option<String>,
    /// The lines returned, by SKU.
    #[serde(default)]
    lines: Vec<ReturnLineSpec>,
}

/// A returned line: a SKU of the purchase and its units or money back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnLineSpec {
    sku: String,
    #[serde(default)]
    quantity: Option<Count>,
    #[serde(default)]
    amount: Option<Money>,
}

impl ReturnSpec {
    /// The lines as the domain takes them.
    fn lines(&self) -> Result<Vec<ReturnLine>, String> {
        self.lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let size = match (line.quantity, line.amount) {
                    (Some(Count(units)), None) => LineSize::Units(units),
                    (None, Some(Money(money))) => LineSize::Amount(money),
                    _ => {
                        return Err(format!(
                            "return lines[{i}]: give quantity or amount, one of them"
                        ));
                    }
                };
                Ok(ReturnLine {
                    sku: line.sku.clone(),
                    size,
                })
            })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivitySpec {
    kind: String,
    #[serde(default)]
    details: BTreeMap<String, String>,
}

#[derive(Deserialize, Default, PartialEq, Eq)]
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
    /// When it happened (campaigns are time-boxed); default: long ago, or
    /// in a step, the step's `at` (an earlier `at` is a late-synced purchase).
    #[serde(default)]
    at: Option<Moment>,
    /// Names the purchase for a later `return: { of: ... }`.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    store_id: String,
    #[serde(default)]
    tags: Vec<String>,
    /// The basket, for the rules' `line_rules`; its amounts must add up
    /// to `amount`.
    #[serde(default)]
    lines: Vec<LineSpec>,
}

/// A basket line in a test case, money in major units.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineSpec {
    #[serde(default)]
    sku: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    quantity: Option<Count>,
    amount: Money,
    #[serde(default)]
    labels: Vec<String>,
}

impl PurchaseSpec {
    /// What is wrong with the basket, if its lines do not add up.
    fn basket_problem(&self) -> Option<String> {
        let total: i64 = self.lines.iter().map(|l| l.amount.0).sum();
        (!self.lines.is_empty() && total != self.amount.0).then(|| {
            format!(
                "the purchase's lines add up to {total} cents, its amount is {} cents",
                self.amount.0
            )
        })
    }

    /// The purchase as the domain takes it, under `transaction_id`, with
    /// `lines` (its [`PurchaseSpec::basket`]), at its time or `default_at`.
    fn as_purchase<'a>(
        &'a self,
        transaction_id: &'a str,
        lines: &'a [earn::Line],
        at: impl FnOnce(Option<DateTime<Utc>>) -> DateTime<Utc>,
    ) -> earn::Purchase<'a> {
        earn::Purchase {
            transaction_id,
            amount_minor: self.amount.0,
            channel: &self.channel,
            store_id: &self.store_id,
            tags: &self.tags,
            lines,
            occurred_at: at(self.at.map(|at| at.0)),
        }
    }

    /// The basket as the domain takes it.
    fn basket(&self) -> Vec<earn::Line> {
        self.lines
            .iter()
            .map(|l| earn::Line {
                sku: l.sku.clone(),
                category: l.category.clone(),
                quantity: l.quantity.map_or(1, |q| q.0),
                amount_minor: l.amount.0,
                labels: l.labels.clone(),
            })
            .collect()
    }
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
/// [`Rejected`] with every problem of the cases file when it cannot be read
/// or parsed.
pub fn run_cases(rules: &RuleSet, file: &Path) -> Result<Vec<CaseResult>, Rejected> {
    let text = std::fs::read_to_string(file).map_err(|err| {
        let message = format!("cannot read the test cases: {err}");
        Rejected::one(Diagnostic::about_file(file, Severity::Error, message))
    })?;
    let cases: CasesFile = rules::read_document(file, &text, rules.currency)?;
    Ok(cases
        .tests
        .iter()
        .map(|case| {
            let before = SlowScript::of(rules);
            let mut result = run(rules, case);
            let slow = slower_since(&before, SlowScript::of(rules));
            if !slow.is_empty() {
                let mut failure = result.failure.take().into_iter().collect::<Vec<_>>();
                failure.extend(slow.iter().map(ToString::to_string));
                result.failure = Some(failure.join("; "));
            }
            result
        })
        .collect())
}

/// The scripts of `now` that ran over their budget since `before`, with
/// the runs of this stretch only.
fn slower_since(before: &[SlowScript], now: Vec<SlowScript>) -> Vec<SlowScript> {
    now.into_iter()
        .filter_map(|mut slow| {
            let earlier = before
                .iter()
                .find(|b| b.at == slow.at)
                .map_or(0, |b| b.runs);
            slow.runs -= earlier;
            (slow.runs > 0).then_some(slow)
        })
        .collect()
}

/// Warnings, for `rules check`, about line rules that no basket of the
/// cases next to `rules_file` could match: a `buy` that no line buys, a
/// multiplier for a label, category or SKU that no line has (a typo, most
/// likely). Only when the cases have baskets, so it can tell: without the
/// cases file, or with no basket in it, nothing is said.
pub fn line_rules_no_case_matches(rules: &RuleSet, rules_file: &Path) -> Vec<Diagnostic> {
    let file = cases_file(rules_file);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Vec::new();
    };
    let Ok(cases) = rules::read_document::<CasesFile>(&file, &text, rules.currency) else {
        return Vec::new();
    };
    let lines: Vec<earn::Line> = cases
        .tests
        .iter()
        .flat_map(|case| {
            case.purchase
                .iter()
                .chain(case.events.iter().filter_map(|s| s.purchase.as_ref()))
        })
        .flat_map(PurchaseSpec::basket)
        .collect();
    if lines.is_empty() {
        return Vec::new();
    }
    let named = file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut warnings = Vec::new();
    for rule in &rules.earning.line_rules {
        for (kind, key, known) in unmatched_keys(rule, &lines) {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            let message = format!(
                "line rule `{}`: no basket in {named} has the {kind} `{key}`{}",
                rule.name,
                rules::did_you_mean(&key, &known)
            );
            warnings.push(rules::at_line_rule(rules, rules_file, &rule.name, message));
        }
    }
    warnings
}

/// The (kind, key, keys the lines have) of each label, category or SKU
/// that `rule` pays on and no line of `lines` has: its `buy`, or its
/// `only` and multipliers above 0 (a 0 excludes, and excluding what no
/// case buys is normal).
fn unmatched_keys(
    rule: &LineRule,
    lines: &[earn::Line],
) -> Vec<(&'static str, String, BTreeSet<String>)> {
    let have: [BTreeSet<String>; 3] = [
        lines
            .iter()
            .flat_map(|l| l.labels.iter().cloned())
            .collect(),
        lines.iter().map(|l| l.category.clone()).collect(),
        lines.iter().map(|l| l.sku.clone()).collect(),
    ];
    let wanted: [Vec<&String>; 3] = match &rule.pays {
        LinePay::Product { buy, .. } => buy.by_kind().map(|keys| keys.iter().collect()),
        LinePay::PerUnit {
            multipliers, only, ..
        } => {
            let rates = multipliers.by_kind();
            let only = only.as_ref().map(LineMatch::by_kind);
            std::array::from_fn(|kind| {
                paying(rates[kind])
                    .into_iter()
                    .chain(only.iter().flat_map(|only| only[kind]))
                    .collect()
            })
        }
    };
    ["label", "category", "sku"]
        .into_iter()
        .zip(wanted)
        .zip(have)
        .flat_map(|((kind, wanted), have)| {
            wanted
                .into_iter()
                .filter(|key| !have.contains(*key))
                .map(|key| (kind, key.clone(), have.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The keys of the multipliers above 0.
fn paying(rates: &BTreeMap<String, Rate>) -> Vec<&String> {
    rates
        .iter()
        .filter(|(_, r)| r.numerator > 0)
        .map(|(k, _)| k)
        .collect()
}

fn run(rules: &RuleSet, case: &Case) -> CaseResult {
    let problems = if case.events.is_empty() {
        run_metrics(rules, case)
    } else {
        run_events(rules, case)
    };
    CaseResult {
        name: case.name.clone(),
        failure: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

/// A case on given metrics: the tier they qualify for, the points of one
/// purchase.
fn run_metrics(rules: &RuleSet, case: &Case) -> Vec<String> {
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
        lifecycle: None,
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
                problems.extend(purchase.basket_problem());
                let tier = qualified_tier(rules, subject);
                let lines = purchase.basket();
                let bought = purchase.as_purchase("expect_points", &lines, |at| {
                    at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
                });
                let facts = PurchaseFacts {
                    purchase: &bought,
                    tier_id: &tier,
                    rate_tier: Some(&tier),
                };
                match earn::points_for_purchase(rules, facts, subject) {
                    Ok(points) if points == expected.0 => {}
                    Ok(points) => {
                        problems.push(format!("expected {} points, got {points}", expected.0));
                    }
                    Err(refused) => problems.push(refused.to_string()),
                }
            }
        }
    }
    if case.expect_balance.is_some() {
        problems.push("expect_balance needs events".to_owned());
    }
    if case.expect_tier.is_none() && case.expect_points.is_none() {
        problems.push("the case expects nothing: add expect_tier or expect_points".to_owned());
    }
    problems
}

/// A case told as dated events: each step is applied to one member the way
/// the service would (received at its `at`), then its expectations are
/// checked; the case's own `expect_tier` / `expect_balance` apply after the
/// last step.
/// What one event of a story did, as its expectations read it.
struct Played {
    /// The points it moved (earned, or spent and taken back: negative).
    points: i64,
    /// Why the bonus script gave a purchase nothing, when it failed.
    script_failure: Option<String>,
}

fn run_events(rules: &RuleSet, case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    if case.metrics != MetricsSpec::default() || case.purchase.is_some() {
        problems.push("give `events` or `metrics`/`purchase`, not both".to_owned());
    }
    if case.expect_points.is_some() {
        problems.push("with events, put expect_points on the event it belongs to".to_owned());
    }
    let mut story = Story::default();
    let mut last_at = None;
    for (index, step) in case.events.iter().enumerate() {
        let label = format!(
            "event {} ({})",
            index + 1,
            step.at.0.format("%Y-%m-%d %H:%M")
        );
        if last_at.is_some_and(|last| step.at < last) {
            problems.push(format!("{label}: events must be in date order"));
            return problems;
        }
        last_at = Some(step.at);
        let member = story
            .member
            .get_or_insert_with(|| enrol(rules, case, step.at.0));
        match story.purchases.apply(rules, member, step, index) {
            Ok(played) => {
                let expected = Expected {
                    tier: step.expect_tier.as_deref(),
                    points: step.expect_points,
                    balance: step.expect_balance,
                };
                let why = played
                    .script_failure
                    .map(|why| format!(" (earning.bonus gave nothing: {why})"))
                    .unwrap_or_default();
                problems.extend(
                    expected
                        .differences(member, played.points, step.at.0)
                        .into_iter()
                        .map(|d| format!("{label}: {d}{why}")),
                );
            }
            Err(why) => {
                problems.push(format!("{label}: {why}"));
                return problems;
            }
        }
    }
    let (Some(member), Some(at)) = (story.member.as_ref(), last_at) else {
        return problems;
    };
    let expected = Expected {
        tier: case.expect_tier.as_deref(),
        points: None,
        balance: case.expect_balance,
    };
    problems.extend(
        expected
            .differences(member, 0, at.0)
            .into_iter()
            .map(|d| format!("at the end: {d}")),
    );
    if case.events.iter().all(Step::expects_nothing) && expected.is_empty() {
        problems.push(
            "the case expects nothing: add expect_tier, expect_points or expect_balance".to_owned(),
        );
    }
    problems
}

impl Step {
    fn expects_nothing(&self) -> bool {
        self.expect_tier.is_none() && self.expect_points.is_none() && self.expect_balance.is_none()
    }
}

/// What a step or case expects of the member.
struct Expected<'a> {
    tier: Option<&'a str>,
    points: Option<i64>,
    balance: Option<i64>,
}

impl Expected<'_> {
    fn is_empty(&self) -> bool {
        self.tier.is_none() && self.points.is_none() && self.balance.is_none()
    }

    /// What differs from the member after an event that moved `points`.
    fn differences(&self, member: &MemberState, points: i64, at: DateTime<Utc>) -> Vec<String> {
        let mut differences = Vec::new();
        if let Some(tier) = self.tier.filter(|t| *t != member.tier.tier_id) {
            differences.push(format!("expected tier {tier}, got {}", member.tier.tier_id));
        }
        if let Some(expected) = self.points.filter(|p| *p != points) {
            differences.push(format!("expected {expected} points, got {points}"));
        }
        let balance = member.points_balance(at);
        if let Some(expected) = self.balance.filter(|b| *b != balance) {
            differences.push(format!("expected a balance of {expected}, got {balance}"));
        }
        differences
    }
}

/// The member a case follows, and the purchases a return may name.
#[derive(Default)]
struct Story {
    member: Option<MemberState>,
    purchases: Purchases,
}

/// The member of a case, enrolled at its first step with its attributes.
fn enrol(rules: &RuleSet, case: &Case, at: DateTime<Utc>) -> MemberState {
    let (mut member, _) = apply::member_or_new(rules, None, "test-member", at);
    member.attributes.clone_from(&case.attributes);
    member
}

/// The books of a case's story, kept as the service keeps its own: a
/// receipt per purchase (under its transaction id, which its points lot is
/// named after), with the `id` the case's returns name it by. A case
/// redeems against no order, so it has no order redemptions.
#[derive(Default)]
struct Purchases {
    /// A purchase's `id` in the case, and its transaction id, in order.
    named: Vec<(String, String)>,
    receipts: BTreeMap<String, Receipt>,
}

impl Books for Purchases {
    type Error = std::convert::Infallible;

    fn receipt(&self, transaction_id: &str) -> Result<Option<Receipt>, Self::Error> {
        Ok(self.receipts.get(transaction_id).cloned())
    }

    fn order(&self, _: &str, _: &str) -> Result<Option<OrderRedemptions>, Self::Error> {
        Ok(None)
    }
}

impl Purchases {
    /// Applies the step's event (or, with none, the periodic sweep), and
    /// settles the books as the service does; returns the points moved.
    fn apply(
        &mut self,
        rules: &RuleSet,
        member: &mut MemberState,
        step: &Step,
        index: usize,
    ) -> Result<Played, String> {
        let now = step.at.0;
        let transaction_id = format!("event-{}", index + 1);
        let given = [
            step.purchase.is_some(),
            step.return_of.is_some(),
            step.activity.is_some(),
            step.adjust.is_some(),
            step.redeem.is_some(),
            step.reward.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(
                "one event per step: purchase, return, activity, adjust, redeem or reward".into(),
            );
        }
        let effect = if let Some(purchase) = &step.purchase {
            self.purchase(rules, member, purchase, transaction_id, now)?
        } else if let Some(spec) = &step.return_of {
            let mut effect = self.return_of(rules, member, spec, now)?;
            effect.points = -effect.points;
            effect
        } else if let Some(spec) = &step.activity {
            activity(rules, member, spec, &transaction_id, now)?
        } else if let Some(points) = step.adjust {
            apply::adjust(rules, member, &transaction_id, points, now, now)
        } else if let Some(Count(points)) = step.redeem {
            redeem(member, points, None, now)?
        } else if let Some(reward) = &step.reward {
            let points =
                apply::reward_cost(rules, member, reward, None, now).map_err(|e| e.to_string())?;
            redeem(member, points, Some(reward), now)?
        } else {
            apply::sweep(rules, member, now)
        };
        let mut changed = Vec::new();
        let Ok(()) = books::settle(self, member, &effect.lapsed, now, &mut changed);
        self.receipts.extend(changed);
        Ok(Played {
            points: effect.points,
            script_failure: effect.script_failure,
        })
    }

    /// Records the purchase (under its `id`, else its transaction id).
    fn purchase(
        &mut self,
        rules: &RuleSet,
        member: &mut MemberState,
        purchase: &PurchaseSpec,
        transaction_id: String,
        now: DateTime<Utc>,
    ) -> Result<Effect, String> {
        let lines = purchase.basket();
        let facts = purchase.as_purchase(&transaction_id, &lines, |at| {
            at.map_or(now, |at| at.min(now))
        });
        let (track, effect) =
            apply::purchase(rules, member, &facts, now).map_err(|e| e.to_string())?;
        let receipt = Receipt::of_booked_purchase(&member.member_id, "rules test", track);
        let id = purchase
            .id
            .clone()
            .unwrap_or_else(|| transaction_id.clone());
        self.named.push((id, transaction_id.clone()));
        self.receipts.insert(transaction_id, receipt);
        Ok(effect)
    }

    /// Takes back part of the purchase named by `of` (else the latest).
    fn return_of(
        &mut self,
        rules: &RuleSet,
        member: &mut MemberState,
        spec: &ReturnSpec,
        now: DateTime<Utc>,
    ) -> Result<Effect, String> {
        let found = match &spec.of {
            Some(id) => self.named.iter().rev().find(|(named, _)| named == id),
            None => self.named.last(),
        };
        let Some((_, transaction_id)) = found.cloned() else {
            return Err(match &spec.of {
                Some(id) => format!("no purchase with id {id} before this return"),
                None => "a return needs a purchase before it".to_owned(),
            });
        };
        let lines = spec.lines()?;
        let amount = spec.amount.map(|Money(a)| a);
        let what = match (lines.is_empty(), amount) {
            (true, Some(amount)) => Returned::Amount(amount),
            (true, None) => return Err("a return needs an amount or lines".to_owned()),
            (false, amount_minor) => Returned::Lines {
                lines: &lines,
                amount_minor,
            },
        };
        let (effect, entries) =
            books::return_purchase(self, rules, member, &transaction_id, what, None, now).map_err(
                |error| match error {
                    ReturnError::Refused(ReturnRefused::TooLarge { returnable_minor }) => {
                        let left = rules.currency.format_minor(returnable_minor);
                        format!("only {left} is left to return")
                    }
                    ReturnError::Refused(other) => other.to_string(),
                    ReturnError::NotFound | ReturnError::BeforePurchase { .. } => {
                        format!("no purchase {transaction_id} to return")
                    }
                    ReturnError::Books(never) => match never {},
                },
            )?;
        self.receipts.extend(entries.receipts);
        Ok(effect)
    }
}

/// Records an activity of a kind the rules know.
fn activity(
    rules: &RuleSet,
    member: &mut MemberState,
    spec: &ActivitySpec,
    transaction_id: &str,
    now: DateTime<Utc>,
) -> Result<Effect, String> {
    let Some(activity) = rules.activities.get(&spec.kind) else {
        let known: Vec<&str> = rules.activities.keys().map(String::as_str).collect();
        return Err(format!(
            "the rules have no activity `{}`{}",
            spec.kind,
            rules::did_you_mean(&spec.kind, &known)
        ));
    };
    let facts = apply::ActivityFacts {
        transaction_id,
        kind: &spec.kind,
        details: &spec.details,
        occurred_at: now,
    };
    apply::activity(rules, member, activity, &facts, now).map_err(|e| e.to_string())
}

/// The tier a member with these metrics qualifies for, from the entry tier.
fn qualified_tier(rules: &RuleSet, subject: Subject<'_>) -> String {
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let entry = TierState {
        tier_id: rules.entry_tier().id.clone(),
        since: at,
        retain_failing_since: None,
        tier_override: None,
        warned: false,
    };
    decide::evaluate(rules, &entry, subject, at).state.tier_id
}

/// Redeems `points` (for `reward`, if named) as a step of a story (its
/// effect counts them spent).
fn redeem(
    member: &mut MemberState,
    points: i64,
    reward: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Effect, String> {
    let mut effect = apply::redeem(member, points, reward, now).map_err(|e| {
        format!(
            "cannot redeem {points} points, the balance is {}",
            e.balance
        )
    })?;
    effect.points = -points;
    Ok(effect)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rules;

    /// Runs `cases` (the text of a cases file) against the example rules;
    /// each case's failure, `None` for a pass.
    fn outcomes(cases: &str) -> Vec<Option<String>> {
        let rules = rules::load(Path::new("rules/example.yaml")).expect("example rules");
        let dir = tempfile::TempDir::new().expect("temp dir");
        let file = dir.path().join("example.test.yaml");
        std::fs::write(&file, cases).expect("write cases");
        run_cases(&rules, &file)
            .expect("cases parse")
            .into_iter()
            .map(|r| r.failure)
            .collect()
    }

    #[test]
    fn a_case_that_runs_a_script_over_its_budget_fails_naming_the_script() {
        let text = std::fs::read_to_string("rules/example.yaml").expect("example rules");
        let slow = format!("{text}\nscript_time_limit: 2ms\n").replace(
            "bonus: |",
            &format!(
                "bonus: |\n    if amount > 1000000 {{ return {{ {} }}; }}",
                crate::script::tests::SLOW_BONUS
            ),
        );
        let rules = rules::load(&rules::Candidate::new("slow.yaml", slow)).expect("valid rules");
        let dir = tempfile::TempDir::new().expect("temp dir");
        let file = dir.path().join("slow.test.yaml");
        let cases = "tests:
  - name: a small purchase
    purchase: { amount: \"123.45\", channel: pos }
    expect_points: 123
  - name: a large one
    purchase: { amount: \"20000.00\", channel: pos }
    expect_points: 20000
";
        std::fs::write(&file, cases).expect("write cases");
        let results = run_cases(&rules, &file).expect("cases parse");
        assert_eq!(results[0].failure, None);
        let failure = results[1].failure.as_deref().unwrap_or_default();
        assert!(
            failure.contains("earning.bonus: 1 runs over its time budget of 2000 µs"),
            "{failure}"
        );
    }

    /// Rules for the peers' basket: `earning` (its lines, indented two
    /// spaces; top-level keys may follow), and silver at 150.00 of spend.
    fn basket_rules(earning: &str) -> String {
        format!(
            "program: p\nversion: v1\ncurrency: EUR\nwindow: rolling 12 months\n\
             earning:\n{earning}tiers:\n  - id: member\n  - id: silver\n    \
             qualify: {{ purchase_volume: \"150.00\" }}\n"
        )
    }

    /// A story: the peers' basket bought, expecting `points`, then one
    /// unit of each SKU of `returns` given back, expecting what it takes.
    fn basket_story(points: i64, returns: &[(&str, i64)]) -> String {
        let mut story = format!(
            "tests:
  - name: the peers' basket
    events:
      - at: 2026-03-01
        purchase:
          amount: \"152.00\"
          id: b1
          lines:
            - {{ sku: \"123\", category: shirts, amount: \"12.00\", labels: [red] }}
            - {{ sku: \"456\", category: shirts, quantity: 2, amount: \"100.00\", labels: [blue, xxl] }}
            - {{ sku: ship, category: delivery, amount: \"40.00\" }}
        expect_points: {points}
"
        );
        for (day, (sku, back)) in returns.iter().enumerate() {
            story.push_str(&format!(
                "      - at: 2026-03-{:02}
        return: {{ of: b1, lines: [{{ sku: \"{sku}\", quantity: 1 }}] }}
        expect_points: {}
",
                day + 2,
                -back
            ));
        }
        story
    }

    #[test]
    fn the_peers_line_rules_play_in_stories_as_the_service_earns() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let file = dir.path().join("peers.yaml");
        let run = |earning: &str, cases: String| {
            std::fs::write(&file, basket_rules(earning)).expect("write rules");
            let rules = rules::load(&file).expect("valid rules");
            let cases_file = dir.path().join("peers.test.yaml");
            std::fs::write(&cases_file, cases).expect("write cases");
            let failures: Vec<Option<String>> = run_cases(&rules, &cases_file)
                .expect("cases parse")
                .into_iter()
                .map(|r| r.failure)
                .collect();
            let warned: Vec<String> = line_rules_no_case_matches(&rules, &file)
                .iter()
                .map(|d| d.message.clone())
                .collect();
            (failures, warned)
        };
        let passes = (vec![None], Vec::<String>::new());
        let only_red = "  points_per_unit: 1\n  line_rules:\n    - { name: red, points_per_unit: 4, only: { labels: [red] } }\n";
        let only_story = basket_story(48, &[("ship", 0), ("123", 48)]);
        assert_eq!(run(only_red, only_story.clone()), passes);
        let typo = only_red.replace("[red]", "[rd]");
        let (failures, warned) = run(&typo, only_story);
        assert!(
            failures[0]
                .as_deref()
                .is_some_and(|f| f.contains("expected 48 points, got 0")),
            "{failures:?}"
        );
        assert_eq!(
            warned,
            [
                "line rule `red`: no basket in peers.test.yaml has the label `rd`; did you mean `red`?"
            ]
        );
        let multiply = "  points_per_unit: 1\n  line_rules:\n    - name: labels\n      points_per_unit: 4\n      multipliers: { labels: { red: 0, blue: 2, xxl: 2 } }\n      combine: multiply\n";
        assert_eq!(run(multiply, basket_story(1_760, &[])), passes);
        let largest = multiply.replace("multiply", "largest");
        assert_eq!(run(&largest, basket_story(960, &[])), passes);
        let per_line = "  points_per_unit: 0\n  bonus: |\n    lines.map(|l| if \"xxl\" in l.labels { l.quantity * 7 } else { 0 })\nscript_time_limit: 100ms\n";
        let per_line_story = basket_story(14, &[("ship", 0), ("456", 7)]);
        assert_eq!(run(per_line, per_line_story), passes);
        // A list that does not fit the basket gives nothing, and the case's
        // failure says why beside the points it missed.
        let short_list = "  points_per_unit: 0\n  bonus: '[7, 7]'\n";
        let (failures, _) = run(short_list, basket_story(14, &[]));
        assert!(
            failures[0].as_deref().is_some_and(|f| f.contains(
                "expected 14 points, got 0 (earning.bonus gave nothing: script failed: \
                 the bonus gave a list of 2 numbers for a basket of 3 lines: give one per line)"
            )),
            "{failures:?}"
        );
        let minimum = "  points_per_unit: 1\n  line_rules:\n    - { name: shirts, points_per_unit: 4, only: { categories: [shirts] }, minimum: { amount: \"100.00\" } }\n";
        let below_it = basket_story(448, &[("123", 48), ("456", 400)]);
        assert_eq!(run(minimum, below_it), passes);
        // Silver at 150.00 of spend: the basket's 152.00 makes it, unless
        // delivery does not count toward the tier.
        let everything = "  points_per_unit: 4\n";
        let basis = "  points_per_unit: 4\nqualifying:\n  exclude: { categories: [delivery] }\n";
        let story = basket_story(608, &[]).replace(
            "        expect_points: 608\n",
            "        expect_points: 608\n        expect_tier: member\n",
        );
        assert_eq!(run(basis, story.clone()), passes);
        let (failures, _) = run(everything, story);
        assert!(
            failures[0]
                .as_deref()
                .is_some_and(|f| f.contains("expected tier member, got silver")),
            "{failures:?}"
        );
    }

    #[test]
    fn a_story_redeems_rewards_at_their_cost_and_says_why_one_is_refused() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let file = dir.path().join("rewards.yaml");
        let rules_text = basket_rules("  points_per_unit: 1\n")
            + "rewards:\n  - { id: tote, name: A tote bag, cost: 5, max_per_month: 2 }\n  \
               - { id: lounge, name: Lounge access, cost: 50, min_tier: silver }\n";
        std::fs::write(&file, rules_text).expect("write rules");
        let rules = rules::load(&file).expect("valid rules");
        let cases = dir.path().join("rewards.test.yaml");
        std::fs::write(
            &cases,
            "tests:
  - name: a tote at its cost
    events:
      - { at: 2026-03-01, purchase: { amount: \"60.00\" } }
      - { at: 2026-03-02, reward: tote, expect_points: -5, expect_balance: 55 }
  - name: the lounge is for silver
    events:
      - { at: 2026-03-01, purchase: { amount: \"60.00\" } }
      - { at: 2026-03-02, reward: lounge }
  - name: two totes a month
    events:
      - { at: 2026-03-01, purchase: { amount: \"60.00\" } }
      - { at: 2026-03-02, reward: tote }
      - { at: 2026-03-31, reward: tote }
      - { at: 2026-04-01, reward: tote, expect_balance: 45 }
      - { at: 2026-04-02, reward: tote }
      - { at: 2026-04-03, reward: tote }
",
        )
        .expect("write cases");
        let failures: Vec<Option<String>> = run_cases(&rules, &cases)
            .expect("cases parse")
            .into_iter()
            .map(|r| r.failure)
            .collect();
        assert_eq!(failures[0], None);
        assert!(
            failures[1].as_deref().is_some_and(|f| f.contains(
                "reward `lounge` is for silver and the tiers above it; the member is member"
            )),
            "{failures:?}"
        );
        assert!(
            failures[2].as_deref().is_some_and(|f| f.contains(
                "event 6 (2026-04-03 00:00): reward `tote` is limited to 2 per member a calendar month, \
                 and this member has had 2"
            )),
            "the fifth tote, the third in April: {failures:?}"
        );
    }

    #[test]
    fn a_story_reports_each_difference_at_its_event() {
        let found = outcomes(
            "tests:
  - name: wrong on purpose
    events:
      - at: 2026-03-02T10:30:00Z
        purchase: { amount: \"450.00\", channel: pos }
        expect_tier: gold
        expect_points: 10
      - at: 2026-03-03
        expect_balance: 475
    expect_tier: platinum
",
        );
        assert_eq!(
            found,
            [Some(
                "event 1 (2026-03-02 10:30): expected tier gold, got silver; \
                 event 1 (2026-03-02 10:30): expected 10 points, got 475; \
                 at the end: expected tier platinum, got silver"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn returns_name_their_purchase_and_late_purchases_count_on_their_day() {
        let found = outcomes(
            "tests:
  - name: a partial return of the first of two purchases
    events:
      - at: 2026-03-01
        purchase: { amount: \"100.00\", channel: pos, id: shoes }
      - at: 2026-03-02
        purchase: { amount: \"40.00\", channel: web }
        expect_points: 60
      - at: 2026-03-05
        return: { amount: \"50.00\", of: shoes }
        expect_points: -50
        expect_balance: 110
  - name: a purchase synced late still counts
    events:
      - at: 2026-03-10
        purchase: { amount: \"10.00\", channel: pos, at: 2026-03-01 }
        expect_balance: 10
",
        );
        assert_eq!(found, [None, None]);
    }

    #[test]
    fn impossible_steps_stop_the_story_with_a_reason() {
        let case = |steps: &str| format!("tests:\n  - name: c\n    events:\n{steps}");
        let cases = [
            (
                "      - { at: 2026-03-01, return: { amount: \"1.00\" } }\n",
                "event 1 (2026-03-01 00:00): a return needs a purchase before it",
            ),
            (
                "      - { at: 2026-03-02, expect_tier: bronze }\n      - { at: 2026-03-01, expect_tier: bronze }\n",
                "event 2 (2026-03-01 00:00): events must be in date order",
            ),
            (
                "      - { at: 2026-03-01, redeem: 5, adjust: 5 }\n",
                "one event per step",
            ),
            (
                "      - { at: 2026-03-01, activity: { kind: reveiw } }\n",
                "the rules have no activity `reveiw`; did you mean `review`?",
            ),
            (
                "      - { at: 2026-03-01, adjust: 20 }\n      - { at: 2026-03-02, redeem: 30 }\n",
                "event 2 (2026-03-02 00:00): cannot redeem 30 points, the balance is 20",
            ),
            (
                "      - { at: 2026-03-01, purchase: { amount: \"10.00\" } }\n      - { at: 2026-03-02, return: { amount: \"10.01\" } }\n",
                "only 10.00 is left to return",
            ),
            (
                "      - { at: 2026-03-01, adjust: 20 }\n",
                "the case expects nothing",
            ),
        ];
        for (steps, expected) in cases {
            let found = outcomes(&case(steps));
            let failure = found[0].clone().unwrap_or_default();
            assert!(failure.contains(expected), "{steps}: {failure}");
        }
    }

    #[test]
    fn every_mistake_of_a_cases_file_is_located() {
        let rules = rules::load(Path::new("rules/example.yaml")).expect("example rules");
        let dir = tempfile::TempDir::new().expect("temp dir");
        let file = dir.path().join("x.test.yaml");
        let text = "tests:\n  - name: c\n    events:\n      - at: 2026-13-01\n        expect_tier: bronze\n      - expect_teir: bronze\n";
        std::fs::write(&file, text).expect("write");
        let rejected = run_cases(&rules, &file).expect_err("bad date");
        let places: Vec<(usize, usize)> = rejected
            .diagnostics
            .iter()
            .map(|d| (d.line, d.column))
            .collect();
        assert_eq!(places, [(4, 13), (6, 9)], "{rejected}");
        assert!(
            rejected.diagnostics[0].message.contains("is not a date"),
            "{rejected}"
        );
        assert!(
            rejected.diagnostics[1]
                .message
                .contains("did you mean `expect_tier`?"),
            "{rejected}"
        );
    }

    #[test]
    fn a_line_rule_no_basket_matches_is_warned_about_only_when_baskets_tell() {
        let text = std::fs::read_to_string("rules/example.yaml")
            .expect("example rules")
            .replace("buy: { sku: BLEND-7 }", "buy: { sku: BLEND-8 }");
        let dir = tempfile::TempDir::new().expect("temp dir");
        let file = dir.path().join("x.yaml");
        std::fs::write(&file, &text).expect("write");
        let rules = rules::load(&file).expect("valid");
        assert!(
            line_rules_no_case_matches(&rules, &file).is_empty(),
            "no cases"
        );
        let cases = dir.path().join("x.test.yaml");
        std::fs::write(
            &cases,
            "tests:\n  - name: sum\n    purchase: { amount: \"5.00\" }\n",
        )
        .expect("write");
        assert!(
            line_rules_no_case_matches(&rules, &file).is_empty(),
            "no baskets"
        );
        std::fs::copy("rules/example.test.yaml", &cases).expect("copy");
        let warned: Vec<String> = line_rules_no_case_matches(&rules, &file)
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect();
        let line = text
            .lines()
            .position(|l| l.contains("name: the new house blend"))
            .expect("the rule")
            + 1;
        assert_eq!(
            warned,
            [format!(
                "{line}:7: line rule `the new house blend`: no basket in x.test.yaml has the sku `BLEND-8`; did you mean `BLEND-7`?"
            )]
        );
    }
}
