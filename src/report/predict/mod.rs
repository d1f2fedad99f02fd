//! Reports that look ahead: who is slipping away and what each member will
//! be worth, by the published models of repeat buying ([`model`]: BG/NBD
//! and Gamma-Gamma), fitted to the stored day totals.
//!
//! A member's purchasing is read from its day totals: a day with a
//! purchase (not fully returned) is one purchase, its spend (returns
//! netted) what it spent, as the papers count "repeat purchase days". Up
//! to the calibration end the days give each member its history (repeat
//! purchase days `x`, recency `t_x`, age `T`, in weeks, as in the papers)
//! and the mean spend of its repeat days; the models are fitted on those
//! and then score every member: P(alive), expected purchases over the next
//! days, expected spend per purchase, and predicted value. With a
//! calibration end before today, the days after it are the holdout: the
//! purchases each member was expected to make in it beside those it made.
//!
//! Money stays integer: a member's expected spend and predicted value are
//! rounded to minor units, and every group's value is the exact sum of its
//! members'. Probabilities and expected purchases are the models' floats,
//! shown with their decimals.

pub mod model;

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};

use chrono::{Datelike as _, NaiveDate};
use serde::Serialize;

use super::{Header, Making, Period, Report, ReportError, Reporter, figures, value::RfmFigures};
use crate::domain::member::MemberState;
use model::{BgNbd, GammaGamma, History, ModelError, Spend};

/// The models' time unit, as in the papers.
const DAYS_PER_WEEK: f64 = 7.0;

/// A month of the value horizon: 365.25 / 12 days.
const DAYS_PER_MONTH: f64 = 30.4375;

/// Most members a fit reads: above it, every n-th member in id order, so
/// that a fit costs the same at any size (see `docs/reports.md`): the
/// estimates are then a sample's, off the whole programme's by their
/// standard errors, which shrink as one over the square root of the
/// members fitted.
pub const MAX_FIT_MEMBERS: usize = 20_000;

/// What a prediction is asked for; every rate an integer, so that a query
/// compares exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictOptions {
    /// The last day of calibration; `None`: today (no holdout).
    pub calibration_end: Option<NaiveDate>,
    /// Days ahead for the expected purchases (1 to 3,650).
    pub days: u32,
    /// Months of predicted value (1 to 120).
    pub months: u32,
    /// The monthly discount rate, in basis points (0 to 10,000: 100 is 1%
    /// a month).
    pub discount_bp: u32,
    /// P(alive) below which a member is at risk, in percent (1 to 99).
    pub alive_below_percent: u32,
    /// How many at-risk members to list (0 to 1,000).
    pub at_risk: u32,
    /// An attribute to group by as well.
    pub by: Option<String>,
    /// Whether to list every member's figures.
    pub with_members: bool,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            calibration_end: None,
            days: 365,
            months: 12,
            discount_bp: 100,
            alive_below_percent: 50,
            at_risk: 20,
            by: None,
            with_members: false,
        }
    }
}

/// The report: the fits, the figures by group, the members most worth
/// keeping who are slipping away, and the holdout check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// What the figures are for (`to`: the calibration end).
    pub header: Header,
    /// The options the figures follow.
    pub days: u32,
    /// See [`PredictOptions::months`].
    pub months: u32,
    /// See [`PredictOptions::discount_bp`].
    pub discount_bp: u32,
    /// See [`PredictOptions::alive_below_percent`].
    pub alive_below_percent: u32,
    /// The BG/NBD fit (time in weeks).
    pub bg_nbd: BgNbdFit,
    /// The Gamma-Gamma fit (spend in minor units).
    pub gamma_gamma: GammaGammaFit,
    /// Members without a purchase by the calibration end: not scored.
    pub members_without_purchases: i64,
    /// By tier, in ladder order.
    pub tiers: Vec<PredictionGroup>,
    /// By the attribute asked for (`(none)` for members without it).
    pub groups: Vec<PredictionGroup>,
    /// By RFM segment (over the 12 months to the calibration end), in the
    /// rules' order, then `other`.
    pub rfm_segments: Vec<PredictionGroup>,
    /// By the rules' named segments at the calibration end, in their
    /// order (a member may be in several, or in none: `(none)`).
    pub segments: Vec<PredictionGroup>,
    /// Every member scored.
    pub total: PredictionGroup,
    /// Members whose P(alive) is below the threshold, worth most first.
    pub at_risk: Vec<MemberPrediction>,
    /// Expected and actual purchases after the calibration end, by tier
    /// then in total; empty without a holdout.
    pub holdout: Vec<HoldoutRow>,
    /// Every member scored, by id, when asked for.
    pub members: Vec<MemberPrediction>,
}

/// BG/NBD's parameters and what they were fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgNbdFit {
    /// Shape of the purchase rates.
    pub r: f64,
    /// Scale of the purchase rates, weeks.
    pub alpha: f64,
    /// Beta shape of the dropout probability.
    pub a: f64,
    /// Beta shape of the dropout probability.
    pub b: f64,
    /// Members it was fitted on.
    pub members: i64,
}

/// Gamma-Gamma's parameters and what they were fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GammaGammaFit {
    /// Shape of a purchase's spend around the member's mean.
    pub p: f64,
    /// Shape of the members' mean spends.
    pub q: f64,
    /// Scale of the members' mean spends, minor units.
    pub gamma: f64,
    /// Members with repeat purchases it was fitted on.
    pub members: i64,
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionGroup {
    /// The tier or attribute value.
    pub group: String,
    /// Members scored.
    pub members: i64,
    /// Their mean P(alive).
    pub p_alive_mean: f64,
    /// The purchases they are expected to make in the next `days`.
    pub expected_purchases: f64,
    /// Their predicted value over `months`, minor units (the sum of the
    /// members' rounded values).
    pub predicted_value_minor: i64,
    /// Their lifetime value so far, minor units.
    pub past_value_minor: i64,
}

/// One member's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberPrediction {
    /// The member.
    pub member_id: String,
    /// Its tier today.
    pub tier: String,
    /// Its purchase days by the calibration end.
    pub purchase_days: i64,
    /// The probability that it is still buying.
    pub p_alive: f64,
    /// The purchases it is expected to make in the next `days`.
    pub expected_purchases: f64,
    /// Its expected spend per purchase, minor units.
    pub expected_spend_minor: i64,
    /// Its predicted value over `months`, discounted, minor units.
    pub predicted_value_minor: i64,
    /// Its lifetime value so far, minor units.
    pub past_value_minor: i64,
}

/// Expected against actual purchases in the holdout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutRow {
    /// The tier, or `total`.
    pub group: String,
    /// Members with a purchase by the calibration end.
    pub members: i64,
    /// The purchase days the model expected after the calibration end.
    pub expected_purchases: f64,
    /// The purchase days there were.
    pub actual_purchases: i64,
}

/// What a member's day totals say for the models. A prediction holds one
/// for every member until the fit is made, so it is kept small: ids and
/// tiers shared, figures as whole numbers.
#[derive(Debug, Clone)]
struct Summary {
    member_id: Box<str>,
    tier: Arc<str>,
    group: Option<Arc<str>>,
    /// The rules' named segments it is in at the calibration end, by
    /// their place in the rules.
    segments: Box<[u16]>,
    /// Its RFM figures over the 12 months to the calibration end (left
    /// at zero when one member is scored alone).
    rfm: RfmFigures,
    /// Its RFM segment's place in the rules (one past them: `other`),
    /// once every member's figures are scored.
    rfm_segment: u16,
    purchases: Option<Purchases>,
    holdout_purchases: u32,
    past_value_minor: i64,
}

/// A member's purchase days up to the calibration end, in whole days.
#[derive(Debug, Clone, Copy)]
struct Purchases {
    /// Purchase days (at least 1).
    days: u32,
    /// From the first to the last.
    span: i32,
    /// From the first to the calibration end.
    age: i32,
    /// Spend on the repeat days with a spend above 0, and how many.
    repeat_spend_minor: i64,
    repeat_spend_days: u32,
}

impl Purchases {
    /// As the BG/NBD model counts them: in weeks, the first day not a
    /// repeat purchase.
    fn history(&self) -> History {
        let weeks = |days: i32| f64::from(days) / DAYS_PER_WEEK;
        History {
            x: f64::from(self.days - 1),
            t_x: weeks(self.span),
            t: weeks(self.age),
        }
    }

    /// As the Gamma-Gamma model counts them: the repeat days' mean spend.
    #[allow(clippy::cast_precision_loss)] // minor units far below 2^53
    fn spend(&self) -> Option<Spend> {
        (self.repeat_spend_days > 0).then(|| Spend {
            x: f64::from(self.repeat_spend_days),
            mean: self.repeat_spend_minor as f64 / f64::from(self.repeat_spend_days),
        })
    }
}

/// Tier ids and attribute values, each held once however many members
/// share it.
#[derive(Default)]
struct Names(HashSet<Arc<str>>);

impl Names {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(name) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(name);
        self.0.insert(Arc::clone(&shared));
        shared
    }
}

/// Reads one member's purchase days: history and repeat spend up to day
/// `calibration_end`, purchase days after it up to `today`.
fn summarise(
    member: &MemberState,
    calibration_end: i32,
    today: i32,
    by: Option<&str>,
    names: &mut Names,
) -> Summary {
    let mut purchases: Option<Purchases> = None;
    let mut first = 0;
    let mut holdout_purchases = 0_u32;
    let purchase_days = member.days.iter().filter(|(_, t)| t.purchases > 0);
    for (&day, totals) in purchase_days {
        if day > calibration_end {
            holdout_purchases += u32::from(day <= today);
            continue;
        }
        match purchases.as_mut() {
            None => {
                first = day;
                purchases = Some(Purchases {
                    days: 1,
                    span: 0,
                    age: calibration_end - day,
                    repeat_spend_minor: 0,
                    repeat_spend_days: 0,
                });
            }
            Some(p) => {
                p.days += 1;
                p.span = day - first;
                if totals.spend_minor > 0 {
                    p.repeat_spend_minor = p.repeat_spend_minor.saturating_add(totals.spend_minor);
                    p.repeat_spend_days += 1;
                }
            }
        }
    }
    Summary {
        member_id: member.member_id.as_str().into(),
        tier: names.get(&member.tier.tier_id),
        group: by.and_then(|name| member.attributes.get(name).map(|value| names.get(value))),
        segments: Box::default(),
        rfm: RfmFigures::default(),
        rfm_segment: 0,
        purchases,
        holdout_purchases,
        past_value_minor: member.lifetime_value_minor,
    }
}

/// The fitted models.
#[derive(Debug, Clone)]
struct Fitted {
    bg: BgNbd,
    gg: GammaGamma,
    bg_members: usize,
    gg_members: usize,
}

/// Fits both models on the members with a history (every n-th above
/// [`MAX_FIT_MEMBERS`]).
fn fit(summaries: &[&Summary]) -> Result<Fitted, ModelError> {
    let bought: Vec<&Purchases> = summaries
        .iter()
        .filter_map(|s| s.purchases.as_ref())
        .collect();
    let every = bought.len().div_ceil(MAX_FIT_MEMBERS).max(1);
    let sample: Vec<&Purchases> = bought.into_iter().step_by(every).collect();
    let fitted_histories: Vec<History> = sample.iter().map(|p| p.history()).collect();
    let spends: Vec<Spend> = sample.iter().filter_map(|p| p.spend()).collect();
    Ok(Fitted {
        bg: BgNbd::fit(&fitted_histories)?,
        gg: GammaGamma::fit(&spends)?,
        bg_members: fitted_histories.len(),
        gg_members: spends.len(),
    })
}

/// A scored member: its figures, and the holdout's expected purchases.
#[derive(Clone, Copy)]
struct Scored {
    purchase_days: i64,
    p_alive: f64,
    expected_purchases: f64,
    expected_spend_minor: i64,
    predicted_value_minor: i64,
    past_value_minor: i64,
    holdout_expected: f64,
    holdout_actual: i64,
}

impl Scored {
    /// The figures as reported, for the member `s` summarises.
    fn figures(&self, s: &Summary) -> MemberPrediction {
        MemberPrediction {
            member_id: s.member_id.to_string(),
            tier: s.tier.to_string(),
            purchase_days: self.purchase_days,
            p_alive: self.p_alive,
            expected_purchases: self.expected_purchases,
            expected_spend_minor: self.expected_spend_minor,
            predicted_value_minor: self.predicted_value_minor,
            past_value_minor: self.past_value_minor,
        }
    }
}

impl Fitted {
    /// `s`'s figures under the options, with `holdout_weeks` after the
    /// calibration end.
    fn score(
        &self,
        s: &Summary,
        purchases: &Purchases,
        options: &PredictOptions,
        holdout_weeks: f64,
    ) -> Result<Scored, ModelError> {
        let history = purchases.history();
        let spend = self.gg.expected_spend(purchases.spend().as_ref());
        let expected_in = |days: f64| self.bg.expected_purchases(&history, days / DAYS_PER_WEEK);
        let discount = 1.0 + f64::from(options.discount_bp) / 10_000.0;
        let mut value = 0.0;
        let mut before = 0.0;
        for month in 1..=options.months {
            let by_then = expected_in(f64::from(month) * DAYS_PER_MONTH)?;
            value += spend * (by_then - before) / discount.powf(f64::from(month));
            before = by_then;
        }
        let holdout_expected = if holdout_weeks > 0.0 {
            self.bg.expected_purchases(&history, holdout_weeks)?
        } else {
            0.0
        };
        Ok(Scored {
            purchase_days: history.x as i64 + 1,
            p_alive: self.bg.p_alive(&history),
            expected_purchases: expected_in(f64::from(options.days))?,
            expected_spend_minor: spend.round() as i64,
            predicted_value_minor: value.round() as i64,
            past_value_minor: s.past_value_minor,
            holdout_expected,
            holdout_actual: i64::from(s.holdout_purchases),
        })
    }
}

/// Members scored together and summed in order. Fixed, not one part per
/// core, so that the floating-point sums are the same on any machine.
const SCORING_CHUNK: usize = 16_384;

/// Scores every member with purchases on all cores and adds them up
/// chunk by chunk, in the order of `summaries`. Nothing is kept per member
/// but the at-risk members most worth keeping, and every member's figures
/// only when they are listed.
fn score_all<'s>(
    fitted: &Fitted,
    summaries: &[&'s Summary],
    options: &PredictOptions,
    holdout_weeks: f64,
    groups: (usize, usize),
) -> Result<Totals<'s>, ModelError> {
    let chunks: Vec<&[&'s Summary]> = summaries.chunks(SCORING_CHUNK).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let score_chunk = |n: usize| -> Result<Totals<'s>, ModelError> {
        let mut totals = Totals::new(groups);
        let first = n * SCORING_CHUNK;
        for (index, s) in (first..).zip(chunks[n]) {
            if let Some(purchases) = &s.purchases {
                let scored = fitted.score(s, purchases, options, holdout_weeks)?;
                totals.add(index, s, scored, options);
            }
        }
        totals.keep_most_worth(options.at_risk as usize);
        Ok(totals)
    };
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut parts: Vec<(usize, Totals<'s>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if n >= chunks.len() {
                            return Ok(done);
                        }
                        done.push((n, score_chunk(n)?));
                    }
                })
            })
            .collect();
        let mut parts = Vec::new();
        for worker in workers {
            // A panic while scoring is a bug, not bad input.
            let done: Result<Vec<_>, ModelError> = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            parts.extend(done?);
        }
        Ok::<_, ModelError>(parts)
    })?;
    parts.sort_by_key(|(n, _)| *n);
    let mut totals = Totals::new(groups);
    for (_, part) in parts {
        totals.merge(part, options.at_risk as usize);
    }
    Ok(totals)
}

/// What the scored members add up to: sums by group, the at-risk members
/// most worth keeping, and every member's figures when they are listed.
struct Totals<'s> {
    by_tier: BTreeMap<&'s str, Sums>,
    by_group: BTreeMap<&'s str, Sums>,
    by_rfm: Vec<Sums>,
    by_segment: Vec<Sums>,
    total: Sums,
    /// Members below the P(alive) threshold, by their place in the
    /// summaries.
    at_risk: Vec<(usize, Scored)>,
    members: Vec<(usize, Scored)>,
}

impl<'s> Totals<'s> {
    /// Nothing yet, for `rfm` RFM segments and `segments` named ones (each
    /// with its `other` or `(none)` place).
    fn new((rfm, segments): (usize, usize)) -> Self {
        Self {
            by_tier: BTreeMap::new(),
            by_group: BTreeMap::new(),
            by_rfm: (0..rfm).map(|_| Sums::default()).collect(),
            by_segment: (0..segments).map(|_| Sums::default()).collect(),
            total: Sums::default(),
            at_risk: Vec::new(),
            members: Vec::new(),
        }
    }

    /// Adds `member` (at `index` in the summaries), scored `s`.
    fn add(&mut self, index: usize, member: &'s Summary, s: Scored, options: &PredictOptions) {
        self.by_tier.entry(&*member.tier).or_default().add(&s);
        if options.by.is_some() {
            let group = member.group.as_deref().unwrap_or("(none)");
            self.by_group.entry(group).or_default().add(&s);
        }
        if let Some(sums) = self.by_rfm.get_mut(usize::from(member.rfm_segment)) {
            sums.add(&s);
        }
        let none = [u16::try_from(self.by_segment.len() - 1).unwrap_or(u16::MAX)];
        let places = if member.segments.is_empty() {
            &none[..]
        } else {
            &member.segments[..]
        };
        for place in places {
            if let Some(sums) = self.by_segment.get_mut(usize::from(*place)) {
                sums.add(&s);
            }
        }
        self.total.add(&s);
        if s.p_alive < f64::from(options.alive_below_percent) / 100.0 {
            self.at_risk.push((index, s));
        }
        if options.with_members {
            self.members.push((index, s));
        }
    }

    /// Keeps the `n` at-risk members worth most (predicted, then past
    /// value; ties in id order).
    fn keep_most_worth(&mut self, n: usize) {
        self.at_risk.sort_by(|(i, a), (j, b)| {
            (b.predicted_value_minor, b.past_value_minor)
                .cmp(&(a.predicted_value_minor, a.past_value_minor))
                .then(i.cmp(j))
        });
        self.at_risk.truncate(n);
    }

    /// Adds the totals of the members after these.
    fn merge(&mut self, later: Totals<'s>, at_risk: usize) {
        for (tier, sums) in later.by_tier {
            self.by_tier.entry(tier).or_default().merge(&sums);
        }
        for (group, sums) in later.by_group {
            self.by_group.entry(group).or_default().merge(&sums);
        }
        for (mine, theirs) in self.by_rfm.iter_mut().zip(&later.by_rfm) {
            mine.merge(theirs);
        }
        for (mine, theirs) in self.by_segment.iter_mut().zip(&later.by_segment) {
            mine.merge(theirs);
        }
        self.total.merge(&later.total);
        self.at_risk.extend(later.at_risk);
        self.keep_most_worth(at_risk);
        self.members.extend(later.members);
    }
}

/// Sums of a group's members' figures.
#[derive(Default)]
struct Sums {
    members: i64,
    p_alive: f64,
    expected: f64,
    value: i64,
    past: i64,
    holdout_expected: f64,
    holdout_actual: i64,
}

impl Sums {
    fn merge(&mut self, other: &Sums) {
        self.members += other.members;
        self.p_alive += other.p_alive;
        self.expected += other.expected;
        self.value += other.value;
        self.past += other.past;
        self.holdout_expected += other.holdout_expected;
        self.holdout_actual += other.holdout_actual;
    }

    fn add(&mut self, s: &Scored) {
        self.members += 1;
        self.p_alive += s.p_alive;
        self.expected += s.expected_purchases;
        self.value += s.predicted_value_minor;
        self.past += s.past_value_minor;
        self.holdout_expected += s.holdout_expected;
        self.holdout_actual += s.holdout_actual;
    }

    fn figures(&self, group: &str) -> PredictionGroup {
        PredictionGroup {
            group: group.to_owned(),
            members: self.members,
            p_alive_mean: if self.members > 0 {
                self.p_alive / self.members as f64
            } else {
                0.0
            },
            expected_purchases: self.expected,
            predicted_value_minor: self.value,
            past_value_minor: self.past,
        }
    }

    fn holdout(&self, group: &str) -> HoldoutRow {
        HoldoutRow {
            group: group.to_owned(),
            members: self.members,
            expected_purchases: self.holdout_expected,
            actual_purchases: self.holdout_actual,
        }
    }
}

/// A prediction's fitted models, kept to score one member at a time (what
/// `GetMember` answers with, once a prediction was made for today).
#[derive(Debug, Clone)]
pub struct Scorer {
    fitted: Fitted,
    options: PredictOptions,
    /// The day the models were fitted up to.
    pub fitted_to: NaiveDate,
}

impl Scorer {
    /// The models `prediction` fitted, with its options.
    pub fn of(prediction: &Prediction) -> Self {
        let (bg, gg) = (&prediction.bg_nbd, &prediction.gamma_gamma);
        Self {
            fitted: Fitted {
                bg: BgNbd {
                    r: bg.r,
                    alpha: bg.alpha,
                    a: bg.a,
                    b: bg.b,
                },
                gg: GammaGamma {
                    p: gg.p,
                    q: gg.q,
                    gamma: gg.gamma,
                },
                bg_members: usize::try_from(bg.members).unwrap_or(0),
                gg_members: usize::try_from(gg.members).unwrap_or(0),
            },
            options: PredictOptions {
                days: prediction.days,
                months: prediction.months,
                discount_bp: prediction.discount_bp,
                alive_below_percent: prediction.alive_below_percent,
                ..PredictOptions::default()
            },
            fitted_to: prediction.header.to.unwrap_or_default(),
        }
    }

    /// `member`'s figures on `today`; `None` for a member without a
    /// purchase, or when a series does not converge.
    pub fn score(&self, member: &MemberState, today: NaiveDate) -> Option<MemberPrediction> {
        let day = today.num_days_from_ce();
        let summary = summarise(member, day, day, None, &mut Names::default());
        let purchases = summary.purchases.as_ref()?;
        let scored = self
            .fitted
            .score(&summary, purchases, &self.options, 0.0)
            .ok()?;
        Some(scored.figures(&summary))
    }
}

/// The option checks: each out of its range names itself.
fn check(options: &PredictOptions) -> Result<(), ReportError> {
    let bad = |field: &'static str, message: &str| ReportError::BadOption {
        field,
        message: format!("{field}: {message}"),
    };
    if !(1..=3_650).contains(&options.days) {
        return Err(bad("days", "1 to 3650 days ahead"));
    }
    if !(1..=120).contains(&options.months) {
        return Err(bad("months", "1 to 120 months of value"));
    }
    if options.discount_bp > 10_000 {
        return Err(bad("discount_bp", "0 to 10000 basis points a month"));
    }
    if !(1..=99).contains(&options.alive_below_percent) {
        return Err(bad("alive_below_percent", "1 to 99"));
    }
    if options.at_risk > 1_000 {
        return Err(bad("at_risk", "at most 1000 members listed"));
    }
    Ok(())
}

impl Reporter<'_> {
    /// The prediction `options` ask for.
    ///
    /// # Errors
    /// Options out of range; at the end, a fit that did not converge or
    /// has too few members (naming `calibration_end`).
    pub(super) fn predict(&self, options: PredictOptions) -> Result<Making<'_>, ReportError> {
        check(&options)?;
        let calibration_end = options.calibration_end.unwrap_or(self.today());
        self.check_day("calibration_end", calibration_end)?;
        let end_day = calibration_end.num_days_from_ce();
        let today = self.today().num_days_from_ce();
        let by = options.by.clone();
        let rfm_year = Period::year_to(calibration_end);
        Ok(Making::new(
            <(Vec<Vec<Summary>>, Names)>::default,
            move |(parts, names): &mut (Vec<Vec<Summary>>, Names), member| {
                let mut summary = summarise(member, end_day, today, by.as_deref(), names);
                summary.segments = self.segment_places(member, calibration_end);
                summary.rfm = RfmFigures::of(member, rfm_year);
                match parts.last_mut() {
                    Some(part) => part.push(summary),
                    None => parts.push(vec![summary]),
                }
                Ok(())
            },
            // Each thread's summaries stay where they are: a million of
            // them are not copied into one vector.
            |(parts, _), (more, _)| parts.extend(more),
            move |(summaries, _)| {
                self.prediction_of(&options, calibration_end, summaries)
                    .map(Report::Prediction)
            },
        ))
    }

    /// Fits the models to the members' `summaries` and scores them.
    fn prediction_of(
        &self,
        options: &PredictOptions,
        calibration_end: NaiveDate,
        mut parts: Vec<Vec<Summary>>,
    ) -> Result<Prediction, ReportError> {
        let mut in_order: Vec<&mut Summary> = parts.iter_mut().flatten().collect();
        in_order.sort_unstable_by(|a, b| a.member_id.cmp(&b.member_id));
        self.place_in_rfm_segments(&mut in_order);
        let summaries: Vec<&Summary> = in_order.into_iter().map(|s| &*s).collect();
        let unfit = |err: ModelError| ReportError::BadOption {
            field: "calibration_end",
            message: format!("no prediction: {err}"),
        };
        let fitted = fit(&summaries).map_err(unfit)?;
        let after_calibration =
            self.today().num_days_from_ce() - calibration_end.num_days_from_ce();
        let holdout_weeks = f64::from(after_calibration) / DAYS_PER_WEEK;
        let reporting = &self.rules().reporting;
        let groups = (
            reporting.rfm_segments.len() + 1,
            reporting.segments.len() + 1,
        );
        let totals =
            score_all(&fitted, &summaries, options, holdout_weeks, groups).map_err(unfit)?;
        Ok(self.assemble(options, calibration_end, &fitted, &summaries, totals))
    }

    /// The places in the rules of the segments `member` is in at the end
    /// of `day`.
    fn segment_places(&self, member: &MemberState, day: NaiveDate) -> Box<[u16]> {
        (0_u16..)
            .zip(self.segments_of(member, day))
            .filter(|(_, holds)| *holds)
            .map(|(place, _)| place)
            .collect()
    }

    /// Scores every member's RFM figures against all of them and keeps only
    /// the place of the segment each falls in.
    fn place_in_rfm_segments(&self, summaries: &mut [&mut Summary]) {
        let figures: Vec<RfmFigures> = summaries.iter().map(|s| s.rfm).collect();
        let (_, places) = self.score_rfm(&figures);
        for (summary, place) in summaries.iter_mut().zip(places) {
            summary.rfm_segment = place.segment;
        }
    }

    fn assemble(
        &self,
        options: &PredictOptions,
        calibration_end: NaiveDate,
        fitted: &Fitted,
        summaries: &[&Summary],
        totals: Totals<'_>,
    ) -> Prediction {
        let reporting = &self.rules().reporting;
        let rfm_names: Vec<&str> = reporting
            .rfm_segments
            .iter()
            .map(|s| s.name.as_str())
            .chain(["other"])
            .collect();
        let segment_names: Vec<&str> = reporting
            .segments
            .iter()
            .map(|s| s.name.as_str())
            .chain(["(none)"])
            .collect();
        let Totals {
            by_tier,
            by_group,
            by_rfm,
            by_segment,
            total,
            at_risk,
            members,
        } = totals;
        let named = |names: &[&str], sums: &[Sums]| -> Vec<PredictionGroup> {
            names
                .iter()
                .zip(sums)
                .map(|(name, s)| s.figures(name))
                .collect()
        };
        let rfm_segments = named(&rfm_names, &by_rfm);
        let segments = named(&segment_names, &by_segment);
        let ladder = self.ladder_with(by_tier.keys());
        let tiers: Vec<PredictionGroup> = ladder
            .iter()
            .map(|tier| {
                by_tier
                    .get(tier.as_str())
                    .map_or_else(|| Sums::default().figures(tier), |sums| sums.figures(tier))
            })
            .collect();
        let holdout = if calibration_end < self.today() {
            ladder
                .iter()
                .map(|tier| {
                    by_tier
                        .get(tier.as_str())
                        .map_or_else(|| Sums::default().holdout(tier), |sums| sums.holdout(tier))
                })
                .chain([total.holdout("total")])
                .collect()
        } else {
            Vec::new()
        };
        let figures_of = |scored: Vec<(usize, Scored)>| -> Vec<MemberPrediction> {
            scored
                .into_iter()
                .map(|(i, s)| s.figures(summaries[i]))
                .collect()
        };
        Prediction {
            header: self.header(
                "predict",
                Some(self.today()),
                Some(super::Period {
                    from: figures::earliest_day(self.today()),
                    to: calibration_end,
                }),
            ),
            days: options.days,
            months: options.months,
            discount_bp: options.discount_bp,
            alive_below_percent: options.alive_below_percent,
            bg_nbd: BgNbdFit {
                r: fitted.bg.r,
                alpha: fitted.bg.alpha,
                a: fitted.bg.a,
                b: fitted.bg.b,
                members: fitted.bg_members as i64,
            },
            gamma_gamma: GammaGammaFit {
                p: fitted.gg.p,
                q: fitted.gg.q,
                gamma: fitted.gg.gamma,
                members: fitted.gg_members as i64,
            },
            members_without_purchases: summaries.len() as i64 - total.members,
            tiers,
            groups: by_group.iter().map(|(g, sums)| sums.figures(g)).collect(),
            rfm_segments,
            segments,
            total: total.figures("total"),
            at_risk: figures_of(at_risk),
            holdout,
            members: figures_of(members),
        }
    }
}
