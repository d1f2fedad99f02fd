//! Loyalty programme reporting: how many members sit in each tier, who
//! moved where, which customers bring the value, what the outstanding
//! points are worth. Reports only read.
//!
//! Every report is one pass over the stored members on all cores
//! ([`crate::tools::scan::fold_members`]), folding each member into exact
//! integer totals (minor units, points, counts); shares and percentages are
//! derived from those integers at the end and always shown beside them.
//! Only tiers on a past day need the history: a member whose tier has not
//! moved since that day is in its current tier, so the history of the
//! others alone is read, through their index.
//!
//! - `scan`: one scan of the members for any number of reports (the HTML
//!   page's nine).
//! - [`figures`]: what one member contributes (pure).
//! - [`tier`]: distribution and migration by tier.
//! - [`value`]: value ranks (Pareto), value bands, RFM.
//! - [`segments`]: the rules' segments over time; groups by attribute.
//! - [`clusters`]: k-means over recency, frequency, money, points, engagement.
//! - [`liability`]: outstanding points and their worth, expiry, breakage.
//! - [`predict`]: who is slipping away and what each member will be worth
//!   (BG/NBD, Gamma-Gamma), with the holdout check.
//! - [`table`]: every report as a table, for the terminal and for CSV.
//! - [`html`]: every report on one page with charts, for people.
//! - [`xlsx`]: every report as an Excel workbook, a sheet per table.

pub mod clusters;
pub mod figures;
pub mod html;
pub mod liability;
pub mod predict;
mod scan;
pub mod segments;
pub mod table;
pub mod tier;
pub mod value;
pub mod xlsx;

use chrono::NaiveDate;
use serde::Serialize;

use crate::{
    domain::{decide::HistoryEntry, member::MemberState},
    rules::RuleSet,
    store::{Store, StoreError},
};
pub use figures::Period;
use scan::Making;
use table::Tabular;

/// Ranks of a value-rank report unless asked otherwise.
pub const DEFAULT_RANKS: u32 = 10;

/// A report asked for, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Members per tier at the end of a day.
    Distribution {
        /// The day.
        as_of: NaiveDate,
    },
    /// Moves between the ends of the period's first and last days.
    Migration(Period),
    /// Value ranks over a period.
    ValueRanks {
        /// The period.
        period: Period,
        /// How many ranks (3 to [`value::MAX_RANKS`]).
        ranks: u32,
    },
    /// Lifetime-value bands at the end of a day.
    ValueBands {
        /// The day.
        as_of: NaiveDate,
    },
    /// RFM over a period.
    Rfm {
        /// The period.
        period: Period,
        /// Whether to list every member's scores.
        with_members: bool,
    },
    /// The rules' segments over a period, at each month end.
    Segments(Period),
    /// Members grouped by an attribute's value over a period.
    Groups {
        /// The period.
        period: Period,
        /// The attribute.
        by: String,
    },
    /// Members in clusters over a period.
    Clusters {
        /// The period.
        period: Period,
        /// How many clusters; `None`: chosen by the silhouette score.
        k: Option<u32>,
        /// What everything random is drawn from.
        seed: u64,
    },
    /// The points liability today.
    Liability,
    /// Predictions by the models of repeat buying.
    Predict(predict::PredictOptions),
}

/// A report made: one of each kind. Its JSON is the report's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Report {
    /// See [`tier::Distribution`].
    Distribution(tier::Distribution),
    /// See [`tier::Migration`].
    Migration(tier::Migration),
    /// See [`value::ValueRanks`].
    ValueRanks(value::ValueRanks),
    /// See [`value::ValueBands`].
    ValueBands(value::ValueBands),
    /// See [`value::Rfm`].
    Rfm(value::Rfm),
    /// See [`segments::Segments`].
    Segments(segments::Segments),
    /// See [`segments::Groups`].
    Groups(segments::Groups),
    /// See [`clusters::Clusters`].
    Clusters(clusters::Clusters),
    /// See [`liability::Liability`].
    Liability(liability::Liability),
    /// See [`predict::Prediction`].
    Prediction(predict::Prediction),
}

impl Report {
    /// The report as tables.
    pub fn tabular(&self) -> &dyn Tabular {
        match self {
            Report::Distribution(r) => r,
            Report::Migration(r) => r,
            Report::ValueRanks(r) => r,
            Report::ValueBands(r) => r,
            Report::Rfm(r) => r,
            Report::Segments(r) => r,
            Report::Groups(r) => r,
            Report::Clusters(r) => r,
            Report::Liability(r) => r,
            Report::Prediction(r) => r,
        }
    }
}

/// Why a report could not be made. The request changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The day totals of so long ago are not kept.
    #[error("{day} is too far back: day totals are kept from {earliest} on (25 months)")]
    TooFarBack {
        /// The option at fault (`as_of`, `from`).
        field: &'static str,
        /// The day asked for.
        day: NaiveDate,
        /// The earliest day a report can look at.
        earliest: NaiveDate,
    },
    /// A day after today.
    #[error("{day} is after today ({today})")]
    InTheFuture {
        /// The option at fault.
        field: &'static str,
        /// The day asked for.
        day: NaiveDate,
        /// Today.
        today: NaiveDate,
    },
    /// A period that ends before it starts.
    #[error("the period ends ({to}) before it starts ({from})")]
    Backwards {
        /// The first day.
        from: NaiveDate,
        /// The last day.
        to: NaiveDate,
    },
    /// An option out of its range.
    #[error("{message}")]
    BadOption {
        /// The option at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReportError {
    /// The option at fault; `None` for a storage failure.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ReportError::TooFarBack { field, .. }
            | ReportError::InTheFuture { field, .. }
            | ReportError::BadOption { field, .. } => Some(field),
            ReportError::Backwards { .. } => Some("to"),
            ReportError::Store(_) => None,
        }
    }
}

/// What every report says about itself: when it is for, which rules
/// version and currency its figures follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    /// The report's name (`distribution`, `migration`...).
    pub report: String,
    /// The day it is as of (end of that UTC day), for reports of a day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
    /// The first day of the period, for reports of a period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    /// The last day of the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    /// The rules version whose tiers, point value and segments it uses.
    pub rules_version: String,
    /// The currency of every `*_minor` figure.
    pub currency: String,
    /// What the spend and qualifying points leave out (the rules'
    /// `qualifying`), in words; absent when every line counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_basis: Option<String>,
}

/// Makes reports from one store under one rules version, with `today` as
/// the day that bounds how far back and forward they may look.
pub struct Reporter<'a> {
    store: &'a Store,
    rules: &'a RuleSet,
    today: NaiveDate,
}

impl<'a> Reporter<'a> {
    /// A reporter over `store` under `rules`, on `today`.
    pub fn new(store: &'a Store, rules: &'a RuleSet, today: NaiveDate) -> Self {
        Self {
            store,
            rules,
            today,
        }
    }

    /// Makes the report `query` asks for.
    ///
    /// # Errors
    /// Options out of range (naming the option); a storage failure.
    pub fn run(&self, query: Query) -> Result<Report, ReportError> {
        self.run_all(vec![query])?
            .pop()
            .unwrap_or_else(|| unreachable!("one report asked for, one made"))
    }

    /// Makes every report `queries` ask for from one scan of the members
    /// (the HTML page: nine reports for the price of one read), then makes
    /// each from its totals in turn; each report's answer in the order
    /// asked.
    ///
    /// # Errors
    /// The outer error: a storage failure, which fails every report. The
    /// inner ones: a report's options out of range, or (predictions) a fit
    /// that did not converge, which fail that report alone.
    pub fn run_all(
        &self,
        queries: Vec<Query>,
    ) -> Result<Vec<Result<Report, ReportError>>, ReportError> {
        let started: Vec<Result<Making<'_>, ReportError>> =
            queries.into_iter().map(|query| self.start(query)).collect();
        let foldings: Vec<&scan::Folding<'_>> = started
            .iter()
            .filter_map(|making| making.as_ref().ok().map(|m| &m.folding))
            .collect();
        // Options refused everywhere: nothing to read the members for.
        let totals = if foldings.is_empty() {
            Vec::new()
        } else {
            self.scan_for(&foldings)?
        };
        // One after another: each last step's own memory (sorted copies,
        // the clusters' matrix) then comes on top of the totals alone,
        // not on top of every other report's as well.
        let mut totals = totals.into_iter();
        Ok(started
            .into_iter()
            .map(|making| {
                let (making, total) = (making?, totals.next());
                let total = total.unwrap_or_else(|| unreachable!("a total per report"));
                (making.finish)(total)
            })
            .collect())
    }

    /// One scan of the members, each added to every report's part.
    fn scan_for(&self, foldings: &[&scan::Folding<'_>]) -> Result<Vec<scan::Part>, ReportError> {
        self.fold(
            || foldings.iter().map(|f| f.start()).collect::<Vec<_>>(),
            |parts, member| {
                for (folding, part) in foldings.iter().zip(parts.iter_mut()) {
                    folding.add(part, member)?;
                }
                Ok(())
            },
            |totals, parts| {
                for ((folding, total), part) in foldings.iter().zip(totals.iter_mut()).zip(parts) {
                    folding.merge(total, part);
                }
            },
        )
    }

    /// Checks `query`'s options and sets its report up for the scan.
    fn start(&self, query: Query) -> Result<Making<'_>, ReportError> {
        match query {
            Query::Distribution { as_of } => self.distribution(as_of),
            Query::Migration(period) => self.migration(period),
            Query::ValueRanks { period, ranks } => self.value_ranks(period, ranks),
            Query::ValueBands { as_of } => self.value_bands(as_of),
            Query::Rfm {
                period,
                with_members,
            } => self.rfm(period, with_members),
            Query::Segments(period) => self.segments(period),
            Query::Groups { period, by } => self.groups(period, by),
            Query::Clusters { period, k, seed } => self.clusters(period, k, seed),
            Query::Liability => Ok(self.liability()),
            Query::Predict(options) => self.predict(options),
        }
    }

    /// The rules reports follow.
    pub fn rules(&self) -> &RuleSet {
        self.rules
    }

    /// Today, as the reports see it.
    pub fn today(&self) -> NaiveDate {
        self.today
    }

    fn header(&self, report: &str, as_of: Option<NaiveDate>, period: Option<Period>) -> Header {
        Header {
            report: report.to_owned(),
            as_of,
            from: period.map(|p| p.from),
            to: period.map(|p| p.to),
            rules_version: self.rules.version.clone(),
            currency: self.rules.currency.code().to_owned(),
            spend_basis: self.rules.qualifying.describe().map(str::to_owned),
        }
    }

    /// Tier ids in ladder order, then any others seen, by name.
    fn ladder_with<S: AsRef<str>>(&self, seen: impl Iterator<Item = S>) -> Vec<String> {
        let mut ids: Vec<String> = self.rules().tiers.iter().map(|t| t.id.clone()).collect();
        let mut others: Vec<String> = seen
            .filter(|id| !ids.iter().any(|known| known == id.as_ref()))
            .map(|id| id.as_ref().to_owned())
            .collect();
        others.sort();
        others.dedup();
        ids.extend(others);
        ids
    }

    /// Checks that `day` (option `field`) is one the day totals cover.
    fn check_day(&self, field: &'static str, day: NaiveDate) -> Result<(), ReportError> {
        let earliest = figures::earliest_day(self.today);
        if day < earliest {
            return Err(ReportError::TooFarBack {
                field,
                day,
                earliest,
            });
        }
        if day > self.today {
            return Err(ReportError::InTheFuture {
                field,
                day,
                today: self.today,
            });
        }
        Ok(())
    }

    /// Checks a period: forwards, and both ends covered.
    fn check_period(&self, period: Period) -> Result<(), ReportError> {
        if period.to < period.from {
            return Err(ReportError::Backwards {
                from: period.from,
                to: period.to,
            });
        }
        self.check_day("from", period.from)?;
        self.check_day("to", period.to)
    }

    /// Folds every member (see [`crate::tools::scan::fold_members`]).
    fn fold<T, S, A, M>(&self, start: S, add: A, merge: M) -> Result<T, ReportError>
    where
        T: Send,
        S: Fn() -> T + Sync,
        A: Fn(&mut T, &MemberState) -> Result<(), StoreError> + Sync,
        M: Fn(&mut T, T),
    {
        let folded = crate::tools::scan::fold_members(
            self.store,
            || (start(), Ok(())),
            |(part, status): &mut (T, Result<(), StoreError>), member| {
                if status.is_ok() {
                    *status = add(part, &member);
                }
            },
            |(total, status), (part, part_status)| {
                merge(total, part);
                if status.is_ok() {
                    *status = part_status;
                }
            },
        )?;
        folded.1?;
        Ok(folded.0)
    }

    /// A member's history, when its tier moved after `since_day` (else
    /// nothing needs reading: the tier then is its tier now).
    fn history_after(
        &self,
        m: &MemberState,
        since_day: NaiveDate,
    ) -> Result<Option<Vec<HistoryEntry>>, StoreError> {
        if m.tier.since <= figures::end_of(since_day) {
            return Ok(None);
        }
        self.store
            .history(&m.member_id, 0, usize::MAX)
            .map(|(entries, _)| Some(entries))
    }
}

/// `part` of `whole` in percent, rounded to two decimals (0 when the
/// whole is 0): for display beside the integers it comes from.
#[allow(clippy::cast_precision_loss)] // display only; the integers are exact
pub fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 10_000.0 / whole as f64).round() / 100.0
}
