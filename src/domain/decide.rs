//! The decision engine: metrics + rules + time -> decision.
//!
//! Pure by design: no I/O, no clock, no gRPC, no storage. Every function
//! takes the time it decides at, so the same inputs always give the same
//! decision, and period-end runs, what-if simulations and tests can decide
//! "as of" any moment.
//!
//! Promotion is immediate (the highest tier whose `qualify` holds, several
//! rungs at once if need be). Demotion needs the current tier's `retain` to
//! fail without a break for `grace_days`, and then drops at most `max_drop`
//! tiers, to the highest tier whose `retain` still holds. A manual override
//! either locks the tier or puts a floor under it until it lapses.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};

use crate::{
    money::Currency,
    rules::{Condition, Lifecycle, Metric, RuleSet, Window},
    script::{Inputs, LifecycleDays},
};

/// The numbers tier conditions look at, computed for one evaluation time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Status points earned in the window (returns and corrections netted).
    pub qualifying_points: i64,
    /// Spend in the window, minor units (returns netted).
    pub purchase_volume_minor: i64,
    /// Purchases in the window (fully returned ones not counted).
    pub purchase_count: i64,
    /// Net spend since the first event, minor units.
    pub lifetime_value_minor: i64,
    /// Redeemable points (visible to scripts; never a tier threshold).
    pub points_balance: i64,
    /// Activities in the window (engagement).
    pub activity_count: i64,
}

impl Metrics {
    /// The value of one metric.
    pub fn get(&self, metric: Metric) -> i64 {
        match metric {
            Metric::QualifyingPoints => self.qualifying_points,
            Metric::PurchaseVolume => self.purchase_volume_minor,
            Metric::PurchaseCount => self.purchase_count,
            Metric::LifetimeValue => self.lifetime_value_minor,
            Metric::ActivityCount => self.activity_count,
        }
    }
}

/// A member as the engine sees it: metrics and descriptive attributes.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The metrics as of the evaluation time.
    pub metrics: &'a Metrics,
    /// Descriptive attributes, readable by scripts.
    pub attributes: &'a BTreeMap<String, String>,
    /// Lifecycle days, known when a report checks a segment; tiers never
    /// see them (the rules refuse lifecycle measures in tiers).
    pub lifecycle: Option<LifecycleDays>,
}

impl<'a> Subject<'a> {
    /// What scripts see of the member.
    pub(super) fn inputs(&self) -> Inputs<'a> {
        Inputs {
            qualifying_points: self.metrics.qualifying_points,
            purchase_volume: self.metrics.purchase_volume_minor,
            purchase_count: self.metrics.purchase_count,
            lifetime_value: self.metrics.lifetime_value_minor,
            points_balance: self.metrics.points_balance,
            activity_count: self.metrics.activity_count,
            attributes: Some(self.attributes),
            purchase: None,
            activity: None,
            lifecycle: self.lifecycle,
        }
    }
}

/// How a manual override holds a member's tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideMode {
    /// The member may rise above the tier but not fall below it.
    Floor,
    /// The member stays in the tier whatever the metrics say.
    Lock,
}

/// A tier placed by hand by customer service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TierOverride {
    /// The tier placed.
    pub tier_id: String,
    /// Floor or lock.
    pub mode: OverrideMode,
    /// When it lapses; `None` means until cleared.
    pub until: Option<DateTime<Utc>>,
    /// Why customer service set it, as they wrote it.
    pub reason: String,
}

impl TierOverride {
    fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| at < until)
    }
}

/// A member's standing on the ladder, as stored between evaluations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TierState {
    /// The current tier's id.
    pub tier_id: String,
    /// When the member entered it.
    pub since: DateTime<Utc>,
    /// Since when `retain` has failed without a break (the grace clock).
    pub retain_failing_since: Option<DateTime<Utc>>,
    /// A manual override, while one is set.
    pub tier_override: Option<TierOverride>,
    /// Whether the member at risk got the early warning
    /// (`demotion.warn_days_before`) of the grace period running now.
    pub warned: bool,
}

/// What kind of move a tier change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The first tier, on enrolment.
    Initial,
    /// Up, because a higher tier's `qualify` holds.
    Promotion,
    /// Down, after `retain` failed for the grace period.
    Demotion,
    /// Set by hand.
    Manual,
    /// Not a move: `retain` failed and the grace period started (or, with
    /// `warn_days_before`, the demotion is that close); the member drops
    /// on [`AtRisk::demotion_at`] unless it holds again by then.
    AtRisk,
    /// Not a move: a member at risk meets `retain` again before its
    /// demotion was due.
    Retained,
    /// Not a move: the account was closed (`CloseMember`); its tier stands
    /// still until it is reopened.
    Closed,
    /// Not a move: a closed account was reopened (`ReopenMember`).
    Reopened,
    /// Two members became one (`MergeMembers`): under the member merged
    /// away, its last entry; under the member it went into, the tier it
    /// takes (the better of the two) before the combined figures are
    /// decided.
    Merged,
}

impl ChangeKind {
    /// Every kind, in the contract's order.
    pub const ALL: [ChangeKind; 9] = [
        ChangeKind::Initial,
        ChangeKind::Promotion,
        ChangeKind::Demotion,
        ChangeKind::Manual,
        ChangeKind::AtRisk,
        ChangeKind::Retained,
        ChangeKind::Closed,
        ChangeKind::Reopened,
        ChangeKind::Merged,
    ];

    /// The kind's name in webhooks and configuration ("at_risk").
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Initial => "initial",
            ChangeKind::Promotion => "promotion",
            ChangeKind::Demotion => "demotion",
            ChangeKind::Manual => "manual",
            ChangeKind::AtRisk => "at_risk",
            ChangeKind::Retained => "retained",
            ChangeKind::Closed => "closed",
            ChangeKind::Reopened => "reopened",
            ChangeKind::Merged => "merged",
        }
    }

    /// Whether the member's tier moved (or was placed): false for the
    /// AT_RISK, RETAINED, CLOSED and REOPENED events, which keep the tier.
    pub fn moves_tier(self) -> bool {
        !matches!(
            self,
            ChangeKind::AtRisk | ChangeKind::Retained | ChangeKind::Closed | ChangeKind::Reopened
        )
    }
}

/// What an AT_RISK event tells: when the member drops, and what it takes
/// to stay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AtRisk {
    /// When the demotion is due, if `retain` still fails then.
    pub demotion_at: DateTime<Utc>,
    /// (metric, missing amount) for each `retain` threshold the member
    /// would still miss on that day if nothing more happened (older
    /// activity leaving the window counted).
    pub to_stay: Vec<(String, i64)>,
}

/// A tier change decided by the engine (the store numbers and keeps it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The tier before (empty for the initial placement).
    pub from_tier: String,
    /// The tier after.
    pub to_tier: String,
    /// What kind of move.
    pub kind: ChangeKind,
    /// When it was decided (the evaluation time).
    pub at: DateTime<Utc>,
    /// Which criterion was met or failed, in words.
    pub reason: String,
    /// For AT_RISK: the due date and what it takes to stay.
    pub at_risk: Option<AtRisk>,
}

impl Change {
    /// A change of `kind` from `from` to `to` at `at`, for `reason`.
    pub fn new(kind: ChangeKind, from: &str, to: &str, at: DateTime<Utc>, reason: String) -> Self {
        Self {
            from_tier: from.to_owned(),
            to_tier: to.to_owned(),
            kind,
            at,
            reason,
            at_risk: None,
        }
    }
}

/// A tier change as kept in the history: numbered and attributed. Part of
/// the audit trail, so its reason is kept as it was written at the time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// Global, gap-free, increasing (0 for a change that was not written).
    pub seq: u64,
    /// Whose tier changed.
    pub member_id: String,
    /// The move itself.
    pub change: Change,
    /// The rules version that decided it.
    pub rules_version: String,
}

/// The result of evaluating one member: the new state and, if the tier
/// moved, the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The member's tier state after the evaluation.
    pub state: TierState,
    /// The move, if the tier changed.
    pub change: Option<Change>,
}

/// Start of the qualification window that ends at `at`. `enrolled_at`
/// anchors the anniversary year.
pub fn window_start(
    window: Window,
    at: DateTime<Utc>,
    enrolled_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match window {
        Window::RollingMonths(months) => at
            .checked_sub_months(Months::new(months))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        Window::CalendarYear => start_of_day(NaiveDate::from_ymd_opt(at.year(), 1, 1)),
        Window::AnniversaryYear => {
            let this_year = anniversary_in(enrolled_at, at.year());
            if this_year <= at {
                this_year
            } else {
                anniversary_in(enrolled_at, at.year() - 1)
            }
        }
    }
}

/// The enrolment anniversary in `year` (29 February falls on the 28th).
fn anniversary_in(enrolled_at: DateTime<Utc>, year: i32) -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(year, enrolled_at.month(), enrolled_at.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, enrolled_at.month(), 28));
    start_of_day(day)
}

fn start_of_day(day: Option<NaiveDate>) -> DateTime<Utc> {
    day.and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc())
}

/// Decides a member's tier at `at`.
///
/// Promotion wins over everything but a lock; demotion follows the grace
/// period and soft landing of `rules.demotion` and never goes below a floor.
pub fn evaluate(
    rules: &RuleSet,
    state: &TierState,
    subject: Subject<'_>,
    at: DateTime<Utc>,
) -> Evaluation {
    let mut next = state.clone();
    if next.tier_override.as_ref().is_some_and(|o| !o.in_force(at)) {
        next.tier_override = None;
    }
    let current = rules.tier_index(&state.tier_id).unwrap_or(0);
    let floor = next.tier_override.as_ref().and_then(|o| {
        let index = rules.tier_index(&o.tier_id).unwrap_or(0);
        match o.mode {
            OverrideMode::Lock => None,
            OverrideMode::Floor => Some(index),
        }
    });
    if let Some(lock) = next
        .tier_override
        .as_ref()
        .filter(|o| o.mode == OverrideMode::Lock)
    {
        next.retain_failing_since = None;
        let change = (lock.tier_id != state.tier_id).then(|| {
            let reason = format!("locked by hand: {}", lock.reason);
            Change::new(
                ChangeKind::Manual,
                &state.tier_id,
                &lock.tier_id,
                at,
                reason,
            )
        });
        next.tier_id.clone_from(&lock.tier_id);
        return finish(next, change);
    }

    // Decide first; the words are built only for a change.
    let qualified = highest_qualified(rules, subject);
    if qualified > current {
        let to = &rules.tiers[qualified].id;
        let reason = qualify_reason(rules, qualified, subject);
        let change = Change::new(ChangeKind::Promotion, &state.tier_id, to, at, reason);
        return finish(moved(next, rules, qualified, at), Some(change));
    }
    let retained = retains(rules, current, subject);
    let retain_words = || retain_reason(rules, current, subject);
    let tier = &state.tier_id;
    if retained {
        next.warned = false;
        let was_at_risk = next.retain_failing_since.take().is_some();
        let change = was_at_risk.then(|| {
            let reason = format!("kept {tier}: {}", retain_words());
            Change::new(ChangeKind::Retained, tier, tier, at, reason)
        });
        return finish(next, change);
    }
    if floor.is_some_and(|f| f >= current) {
        // A floor holds the tier: nothing is at risk.
        next.retain_failing_since = None;
        return finish(next, None);
    }
    let first_failure = next.retain_failing_since.is_none();
    let failing_since = *next.retain_failing_since.get_or_insert(at);
    let grace = TimeDelta::days(i64::from(rules.demotion.grace_days));
    if at - failing_since < grace {
        let due = failing_since + grace;
        let warn_from = rules
            .demotion
            .warn_days_before
            .map(|days| due - TimeDelta::days(i64::from(days)));
        let warning_due = warn_from.is_some_and(|from| at >= from) && !next.warned;
        next.warned |= warning_due;
        let change = (first_failure || warning_due).then(|| {
            let days_left = (due - at).num_days();
            let reason = format!(
                "retain of {tier} failed: {}; demotion due on {} ({days_left} days) unless it holds again",
                retain_words(),
                due.date_naive()
            );
            Change {
                at_risk: Some(AtRisk {
                    demotion_at: due,
                    to_stay: Vec::new(),
                }),
                ..Change::new(ChangeKind::AtRisk, tier, tier, at, reason)
            }
        });
        return finish(next, change);
    }
    let lowest_allowed = current
        .saturating_sub(rules.demotion.max_drop as usize)
        .max(floor.unwrap_or(0));
    let target = (0..current)
        .rev()
        .find(|&t| retains(rules, t, subject))
        .unwrap_or(0)
        .max(lowest_allowed);
    if target >= current {
        return finish(next, None);
    }
    let days = (at - failing_since).num_days();
    let mut reason = format!(
        "retain of {} failed for {days} days (grace {}): {}",
        state.tier_id,
        rules.demotion.grace_days,
        retain_words()
    );
    if target == lowest_allowed && lowest_allowed > 0 {
        reason.push_str(&landing_note(rules, floor, target));
    }
    let mut next = moved(next, rules, target, at);
    if !retains(rules, target, subject) {
        // The grace clock starts again in the new tier.
        next.retain_failing_since = Some(at);
    }
    let to = rules.tiers[target].id.clone();
    finish(
        next,
        Some(Change::new(ChangeKind::Demotion, tier, &to, at, reason)),
    )
}

fn landing_note(rules: &RuleSet, floor: Option<usize>, target: usize) -> String {
    if floor == Some(target) {
        format!("; held at the manual floor {}", rules.tiers[target].id)
    } else {
        format!("; soft landing (max_drop {})", rules.demotion.max_drop)
    }
}

fn finish(state: TierState, change: Option<Change>) -> Evaluation {
    Evaluation { state, change }
}

fn moved(mut state: TierState, rules: &RuleSet, tier: usize, at: DateTime<Utc>) -> TierState {
    state.tier_id.clone_from(&rules.tiers[tier].id);
    state.since = at;
    state.retain_failing_since = None;
    state.warned = false;
    state
}

/// The highest tier whose `qualify` holds (0 when none does).
fn highest_qualified(rules: &RuleSet, subject: Subject<'_>) -> usize {
    rules
        .tiers
        .iter()
        .rposition(|tier| tier.qualify.as_ref().is_some_and(|q| decides(q, subject)))
        .unwrap_or(0)
}

/// Why tier `index`'s `qualify` holds, in words.
fn qualify_reason(rules: &RuleSet, index: usize, subject: Subject<'_>) -> String {
    let tier = &rules.tiers[index];
    let why = tier.qualify.as_ref().map_or_else(String::new, |condition| {
        explain(condition, subject, rules.currency).1
    });
    format!("qualified for {}: {why}", tier.id)
}

/// Whether the member keeps tier `index`.
fn retains(rules: &RuleSet, index: usize, subject: Subject<'_>) -> bool {
    rules.tiers[index]
        .retain_condition()
        .is_none_or(|condition| decides(condition, subject))
}

/// Why the member keeps tier `index`, or fails to, in words.
fn retain_reason(rules: &RuleSet, index: usize, subject: Subject<'_>) -> String {
    match rules.tiers[index].retain_condition() {
        None => String::from("entry tier"),
        Some(condition) => explain(condition, subject, rules.currency).1,
    }
}

/// Evaluates a condition and says why it holds or fails.
///
/// A script that fails (a limit, a wrong result type) counts as not met and
/// says so in the reason, so a broken script can never promote anyone.
pub fn explain(condition: &Condition, subject: Subject<'_>, currency: Currency) -> (bool, String) {
    match condition {
        Condition::AtLeast { metric, threshold } => {
            let value = subject.metrics.get(*metric);
            let shown = |v: i64| show(*metric, v, currency);
            let met = value >= *threshold;
            let op = if met { ">=" } else { "<" };
            (
                met,
                format!("{metric} {} {op} {}", shown(value), shown(*threshold)),
            )
        }
        Condition::All(list) => combine(list, subject, currency, true),
        Condition::Any(list) => combine(list, subject, currency, false),
        Condition::Within {
            measure,
            at_least,
            at_most,
        } => within(*measure, *at_least, *at_most, subject.lifecycle),
        Condition::Script(script) => match script.eval_condition(&subject.inputs()) {
            Ok(met) => (met, format!("script `{}` is {met}", script.source().trim())),
            Err(err) => {
                tracing::warn!(error = %err, script = script.source(), "tier condition script failed");
                (
                    false,
                    format!("script `{}` failed: {err}", script.source().trim()),
                )
            }
        },
    }
}

/// The lifecycle days `measure` reads, when they are known.
fn lifecycle_days(measure: Lifecycle, lifecycle: Option<LifecycleDays>) -> Option<i64> {
    lifecycle.map(|days| match measure {
        Lifecycle::DaysSinceLastPurchase => days.since_last_purchase,
        Lifecycle::DaysSinceEnrolment => days.since_enrolment,
    })
}

fn in_bounds(value: i64, at_least: Option<i64>, at_most: Option<i64>) -> bool {
    at_least.is_none_or(|low| value >= low) && at_most.is_none_or(|high| value <= high)
}

/// Whether a lifecycle measure is within its bounds, and why.
fn within(
    measure: Lifecycle,
    at_least: Option<i64>,
    at_most: Option<i64>,
    lifecycle: Option<LifecycleDays>,
) -> (bool, String) {
    let Some(value) = lifecycle_days(measure, lifecycle) else {
        return (
            false,
            format!("{} is known to reports only", measure.name()),
        );
    };
    let met = in_bounds(value, at_least, at_most);
    let bound = |b: Option<i64>| b.map_or_else(|| String::from("-"), |d| d.to_string());
    (
        met,
        format!(
            "{} {value} {} [{}, {}]",
            measure.name(),
            if met { "in" } else { "not in" },
            bound(at_least),
            bound(at_most)
        ),
    )
}

/// Whether `condition` holds, without saying why: for reports, which
/// check every member against every segment. A failing script counts as
/// not met (and in [`crate::script::failures`]), as in [`explain`].
pub fn holds(condition: &Condition, subject: Subject<'_>) -> bool {
    check(condition, subject, false)
}

/// [`holds`] for a tier decision: a script that fails is logged, as
/// [`explain`] logs it, since a tier condition that cannot run is a
/// mistake in the rules that someone must see.
fn decides(condition: &Condition, subject: Subject<'_>) -> bool {
    check(condition, subject, true)
}

fn check(condition: &Condition, subject: Subject<'_>, warn: bool) -> bool {
    match condition {
        Condition::AtLeast { metric, threshold } => subject.metrics.get(*metric) >= *threshold,
        Condition::All(list) => list.iter().all(|c| check(c, subject, warn)),
        Condition::Any(list) => list.iter().any(|c| check(c, subject, warn)),
        Condition::Script(script) => match script.eval_condition(&subject.inputs()) {
            Ok(met) => met,
            Err(err) => {
                if warn {
                    tracing::warn!(error = %err, script = script.source(), "tier condition script failed");
                }
                false
            }
        },
        Condition::Within {
            measure,
            at_least,
            at_most,
        } => lifecycle_days(*measure, subject.lifecycle)
            .is_some_and(|value| in_bounds(value, *at_least, *at_most)),
    }
}

fn combine(
    list: &[Condition],
    subject: Subject<'_>,
    currency: Currency,
    all: bool,
) -> (bool, String) {
    let results: Vec<(bool, String)> = list.iter().map(|c| explain(c, subject, currency)).collect();
    let met = if all {
        results.iter().all(|r| r.0)
    } else {
        results.iter().any(|r| r.0)
    };
    // Name what decided: the parts that agree with the outcome.
    let decisive: Vec<&str> = results
        .iter()
        .filter(|r| r.0 == met)
        .map(|r| r.1.as_str())
        .collect();
    let joiner = if met && !all { " or " } else { " and " };
    (met, decisive.join(joiner))
}

fn show(metric: Metric, value: i64, currency: Currency) -> String {
    if metric.is_money() {
        currency.format_minor(value)
    } else {
        value.to_string()
    }
}

/// What a member still needs for the next tier up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextTier {
    /// The next tier's id.
    pub tier_id: String,
    /// "spend 120.00 more or earn 300 more points".
    pub summary: String,
    /// (metric, missing amount) for each threshold not yet reached.
    pub shortfalls: Vec<(String, i64)>,
}

/// What `subject` misses to keep `tier_id` (its `retain`): in words
/// ("earn 120 more points"), `None` when it keeps it, and per threshold.
pub fn to_keep(
    rules: &RuleSet,
    tier_id: &str,
    subject: Subject<'_>,
) -> (Option<String>, Vec<(String, i64)>) {
    let mut shortfalls = Vec::new();
    let words = rules
        .tier_index(tier_id)
        .and_then(|i| rules.tiers[i].retain_condition())
        .and_then(|condition| missing(condition, subject, rules.currency, &mut shortfalls));
    (words, shortfalls)
}

/// The next tier above `tier_id` and what is missing for it; `None` at the top.
pub fn next_tier(rules: &RuleSet, tier_id: &str, subject: Subject<'_>) -> Option<NextTier> {
    let current = rules.tier_index(tier_id).unwrap_or(0);
    let tier = rules.tiers.get(current + 1)?;
    let condition = tier.qualify.as_ref()?;
    let mut shortfalls = Vec::new();
    let summary = missing(condition, subject, rules.currency, &mut shortfalls)
        .unwrap_or_else(|| String::from("qualifies at the next evaluation"));
    Some(NextTier {
        tier_id: tier.id.clone(),
        summary,
        shortfalls,
    })
}

/// What is missing for `condition`, in words; `None` when it is met.
fn missing(
    condition: &Condition,
    subject: Subject<'_>,
    currency: Currency,
    shortfalls: &mut Vec<(String, i64)>,
) -> Option<String> {
    match condition {
        Condition::AtLeast { metric, threshold } => {
            let gap = threshold.saturating_sub(subject.metrics.get(*metric));
            (gap > 0).then(|| {
                shortfalls.push((metric.name().to_owned(), gap));
                match metric {
                    Metric::QualifyingPoints => format!("earn {gap} more points"),
                    Metric::PurchaseVolume => format!("spend {} more", currency.format_minor(gap)),
                    Metric::PurchaseCount => format!("make {gap} more purchases"),
                    Metric::LifetimeValue => {
                        format!("reach {} more lifetime spend", currency.format_minor(gap))
                    }
                    Metric::ActivityCount => format!("take part in {gap} more activities"),
                }
            })
        }
        Condition::All(list) => {
            let parts: Vec<String> = list
                .iter()
                .filter_map(|c| missing(c, subject, currency, shortfalls))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" and "))
        }
        Condition::Any(list) => {
            // Shortfalls count only when no branch is met: a met branch
            // anywhere in the list means nothing is missing, whatever the
            // order the branches are written in.
            let mut unmet = Vec::new();
            let parts: Option<Vec<String>> = list
                .iter()
                .map(|c| missing(c, subject, currency, &mut unmet))
                .collect();
            if parts.is_some() {
                shortfalls.extend(unmet);
            }
            parts.map(|p| p.join(" or "))
        }
        Condition::Script(script) => {
            let (met, _) = explain(condition, subject, currency);
            (!met).then(|| format!("meet `{}`", script.source().trim()))
        }
        Condition::Within { .. } => {
            let (met, why) = explain(condition, subject, currency);
            (!met).then_some(why)
        }
    }
}
