//! Segments watched over time, and members grouped by an attribute.
//!
//! Segments are the named conditions of the rules' `reporting.segments`
//! (tier metrics, attributes, scripts, and the lifecycle measures
//! `days_since_last_purchase` and `days_since_enrolment`). A member may be
//! in several segments, or in none. The report shows each segment as of the
//! last day of a period, and its size and value at every month end within
//! the period, so that growth and decline show.
//!
//! Grouping by an attribute (`--by region`) is the sales-per-region view:
//! members, net spend and value per value of the attribute. Attributes are
//! kept as they are now, not as they were, so a group holds the members
//! whose attribute has that value today.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;

use super::{
    Header, Making, Period, Report, ReportError, Reporter, figures, percent,
    table::{Cell, Table, Tabular},
};
use crate::domain::{
    decide::{Subject, holds},
    member::MemberState,
};

/// Members and value per segment at the end of a period, and at each
/// month end within it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segments {
    /// The period and the rules.
    #[serde(flatten)]
    pub header: Header,
    /// Members enrolled by the end of the period.
    pub members: i64,
    /// Of those, members in no segment.
    pub unsegmented: i64,
    /// Each segment at the end of the period, in the rules' order.
    pub segments: Vec<SegmentAtEnd>,
    /// Each month end in the period (the last point is the period's end).
    pub months: Vec<SegmentMonth>,
}

/// A segment at the end of the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentAtEnd {
    /// The segment's name.
    pub segment: String,
    /// Members in it at the end of the period.
    pub members: i64,
    /// `members` of all members enrolled then, percent (segments overlap,
    /// so shares need not add up to 100).
    pub share_percent: f64,
    /// Their value over the whole period, minor units.
    pub value_minor: i64,
    /// Their lifetime value at the end of the period, minor units.
    pub lifetime_value_minor: i64,
}

/// The segments at one month end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentMonth {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// The day the members are counted (the month's last day, or the
    /// period's last day in its last month).
    pub as_of: NaiveDate,
    /// Members enrolled by then.
    pub members: i64,
    /// Each segment then, in the rules' order.
    pub segments: Vec<SegmentSize>,
}

/// A segment at one month end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentSize {
    /// The segment's name.
    pub segment: String,
    /// Members in it on the day.
    pub members: i64,
    /// Their value over the month (from the period's start in its first
    /// month, to the day), minor units.
    pub value_minor: i64,
}

/// Members grouped by the value of one attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Groups {
    /// The period and the rules.
    #[serde(flatten)]
    pub header: Header,
    /// The attribute grouped by.
    pub attribute: String,
    /// One row per value, by value; members without the attribute last,
    /// as `(none)`.
    pub groups: Vec<GroupRow>,
    /// The sum of the groups.
    pub total: GroupRow,
}

/// The members with one value of the attribute.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupRow {
    /// The attribute's value (`(none)`, `total`).
    pub group: String,
    /// Members enrolled by the end of the period.
    pub members: i64,
    /// `members` of all, percent.
    pub share_percent: f64,
    /// Purchases made in the period.
    pub purchases: i64,
    /// Net spend in the period, minor units.
    pub net_spend_minor: i64,
    /// Value in the period (net spend less redemption cost), minor units.
    pub value_minor: i64,
    /// Lifetime value at the end of the period, minor units.
    pub lifetime_value_minor: i64,
}

/// The label of members without the attribute.
pub const NO_VALUE: &str = "(none)";

/// The days a segment report counts on: each month end from the period's
/// first month, the period's last day in place of the last month's end.
fn month_ends(period: Period) -> Vec<(NaiveDate, Period)> {
    let mut points = Vec::new();
    let mut start = period.from;
    while start <= period.to {
        let next_month = start
            .with_day(1)
            .and_then(|first| first.checked_add_months(Months::new(1)));
        let month_end = next_month.and_then(|n| n.pred_opt()).unwrap_or(period.to);
        let end = month_end.min(period.to);
        points.push((
            end,
            Period {
                from: start,
                to: end,
            },
        ));
        match end.succ_opt() {
            Some(next) => start = next,
            None => break,
        }
    }
    points
}

/// Per point: members enrolled, and per segment (members, value).
#[derive(Debug, Clone, Default)]
struct Tally {
    enrolled: Vec<i64>,
    in_segment: Vec<Vec<(i64, i64)>>,
    /// At the period's end, per segment: (value over the period, LTV).
    period_end: Vec<(i64, i64)>,
    unsegmented: i64,
}

impl Tally {
    fn new(points: usize, segments: usize) -> Self {
        Self {
            enrolled: vec![0; points],
            in_segment: vec![vec![(0, 0); segments]; points],
            period_end: vec![(0, 0); segments],
            unsegmented: 0,
        }
    }

    fn merge(&mut self, other: Tally) {
        let add = |a: &mut (i64, i64), b: (i64, i64)| {
            a.0 = a.0.saturating_add(b.0);
            a.1 = a.1.saturating_add(b.1);
        };
        for (a, b) in self.enrolled.iter_mut().zip(other.enrolled) {
            *a += b;
        }
        for (a, b) in self.in_segment.iter_mut().zip(other.in_segment) {
            a.iter_mut().zip(b).for_each(|(a, b)| add(a, b));
        }
        for (a, b) in self.period_end.iter_mut().zip(other.period_end) {
            add(a, b);
        }
        self.unsegmented += other.unsegmented;
    }
}

impl Reporter<'_> {
    /// Which segments of the rules `m` is in at the end of `day`.
    pub(super) fn segments_of(&self, m: &MemberState, day: NaiveDate) -> Vec<bool> {
        let metrics = figures::metrics_at(self.rules(), m, day);
        let subject = Subject {
            metrics: &metrics,
            attributes: &m.attributes,
            lifecycle: Some(figures::lifecycle_at(m, day)),
        };
        self.rules()
            .reporting
            .segments
            .iter()
            .map(|s| holds(&s.when, subject))
            .collect()
    }

    /// The segments of the rules over `period`: at its end, and at each
    /// month end in it.
    ///
    /// # Errors
    /// A period the day totals do not cover; a storage failure.
    pub(super) fn segments(&self, period: Period) -> Result<Making<'_>, ReportError> {
        self.check_period(period)?;
        let points = month_ends(period);
        let (count, segments) = (points.len(), self.rules().reporting.segments.len());
        let worth = self.rules().reporting.point_value_minor;
        Ok(Making::new(
            move || Tally::new(count, segments),
            move |tally: &mut Tally, m| {
                for (i, (day, month)) in points.iter().enumerate() {
                    if !figures::enrolled_by(m, *day) {
                        continue;
                    }
                    tally.enrolled[i] += 1;
                    let value = month.value(m, worth);
                    let member_of = self.segments_of(m, *day);
                    for (sum, _) in tally.in_segment[i]
                        .iter_mut()
                        .zip(&member_of)
                        .filter(|(_, m)| **m)
                    {
                        sum.0 += 1;
                        sum.1 = sum.1.saturating_add(value);
                    }
                    if *day == period.to {
                        tally.unsegmented += i64::from(!member_of.contains(&true));
                        let both = (period.value(m, worth), figures::lifetime_value_at(m, *day));
                        for (sum, _) in tally
                            .period_end
                            .iter_mut()
                            .zip(&member_of)
                            .filter(|(_, m)| **m)
                        {
                            sum.0 = sum.0.saturating_add(both.0);
                            sum.1 = sum.1.saturating_add(both.1);
                        }
                    }
                }
                Ok(())
            },
            Tally::merge,
            move |tally| Ok(Report::Segments(self.segments_of_tally(period, &tally))),
        ))
    }

    /// The segments report from its tally.
    fn segments_of_tally(&self, period: Period, tally: &Tally) -> Segments {
        let points = month_ends(period);
        let segments = &self.rules().reporting.segments;
        let members = tally.enrolled.last().copied().unwrap_or(0);
        let at_end = tally.in_segment.last().cloned().unwrap_or_default();
        Segments {
            header: self.header("segments", None, Some(period)),
            members,
            unsegmented: tally.unsegmented,
            segments: segments
                .iter()
                .zip(at_end.iter().zip(&tally.period_end))
                .map(|(s, (&(n, _), &(value, ltv)))| SegmentAtEnd {
                    segment: s.name.clone(),
                    members: n,
                    share_percent: percent(n, members),
                    value_minor: value,
                    lifetime_value_minor: ltv,
                })
                .collect(),
            months: points
                .iter()
                .zip(tally.enrolled.iter().zip(&tally.in_segment))
                .map(|((day, _), (&enrolled, sums))| SegmentMonth {
                    month: day.format("%Y-%m").to_string(),
                    as_of: *day,
                    members: enrolled,
                    segments: segments
                        .iter()
                        .zip(sums)
                        .map(|(s, &(n, value))| SegmentSize {
                            segment: s.name.clone(),
                            members: n,
                            value_minor: value,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Members enrolled by the end of `period` grouped by the value of
    /// attribute `by`.
    ///
    /// # Errors
    /// A period the day totals do not cover; an empty attribute name, or
    /// one that no member has (a misspelt `--by regoin` would put everyone
    /// under `(none)`), with a did-you-mean from the names members have; a
    /// storage failure.
    pub(super) fn groups(&self, period: Period, by: String) -> Result<Making<'_>, ReportError> {
        self.check_period(period)?;
        if by.trim().is_empty() {
            return Err(ReportError::BadOption {
                field: "by",
                message: "name the attribute to group by, e.g. region".into(),
            });
        }
        let worth = self.rules().reporting.point_value_minor;
        let attribute = by.clone();
        Ok(Making::new(
            || (BTreeMap::<Option<String>, GroupRow>::new(), BTreeSet::new()),
            move |(sums, names): &mut GroupSums, m| {
                if figures::enrolled_by(m, period.to) {
                    if names.len() < MAX_NAMES_SEEN {
                        names.extend(m.attributes.keys().cloned());
                    }
                    let row = sums
                        .entry(m.attributes.get(&attribute).cloned())
                        .or_default();
                    row.add(&GroupRow {
                        members: 1,
                        purchases: period.purchases(m),
                        net_spend_minor: period.net_spend(m),
                        value_minor: period.value(m, worth),
                        lifetime_value_minor: figures::lifetime_value_at(m, period.to),
                        ..GroupRow::default()
                    });
                }
                Ok(())
            },
            |(total, names), (part, more)| {
                for (key, row) in part {
                    total.entry(key).or_default().add(&row);
                }
                names.extend(more);
            },
            move |(sums, names)| {
                self.groups_of(period, &by, sums, &names)
                    .map(Report::Groups)
            },
        ))
    }

    /// The groups from their sums, or why `by` names no attribute.
    fn groups_of(
        &self,
        period: Period,
        by: &str,
        sums: BTreeMap<Option<String>, GroupRow>,
        names: &BTreeSet<String>,
    ) -> Result<Groups, ReportError> {
        if !sums.is_empty() && sums.keys().all(Option::is_none) {
            return Err(unknown_attribute(by, names));
        }
        let mut total = GroupRow {
            group: "total".into(),
            ..GroupRow::default()
        };
        sums.values().for_each(|row| total.add(row));
        let members = total.members;
        total.share_percent = percent(members, members);
        // `None` sorts first in the map; members without the value go last.
        let (named, unnamed): (Vec<_>, Vec<_>) = sums.into_iter().partition(|(k, _)| k.is_some());
        let groups = named
            .into_iter()
            .chain(unnamed)
            .map(|(key, row)| GroupRow {
                group: key.unwrap_or_else(|| NO_VALUE.to_owned()),
                share_percent: percent(row.members, members),
                ..row
            })
            .collect();
        Ok(Groups {
            header: self.header("groups", None, Some(period)),
            attribute: by.to_owned(),
            groups,
            total,
        })
    }
}

/// Per attribute value, the members' sums; and the attribute names seen.
type GroupSums = (BTreeMap<Option<String>, GroupRow>, BTreeSet<String>);

/// Attribute names kept while looking for the one asked for: enough for a
/// did-you-mean, bounded whatever the members hold.
const MAX_NAMES_SEEN: usize = 1_000;

/// `--by` names an attribute no member has.
fn unknown_attribute(by: &str, names: &BTreeSet<String>) -> ReportError {
    let known: Vec<&str> = names.iter().map(String::as_str).collect();
    let listed = if known.is_empty() {
        "members have no attributes".to_owned()
    } else {
        format!("members have {}", known.join(", "))
    };
    ReportError::BadOption {
        field: "by",
        message: format!(
            "no member has the attribute {by:?}; {listed}{}",
            crate::rules::did_you_mean(by, &known)
        ),
    }
}

impl GroupRow {
    fn add(&mut self, other: &GroupRow) {
        self.members += other.members;
        self.purchases = self.purchases.saturating_add(other.purchases);
        self.net_spend_minor = self.net_spend_minor.saturating_add(other.net_spend_minor);
        self.value_minor = self.value_minor.saturating_add(other.value_minor);
        self.lifetime_value_minor = self
            .lifetime_value_minor
            .saturating_add(other.lifetime_value_minor);
    }
}

impl Tabular for Segments {
    fn header(&self) -> &Header {
        &self.header
    }

    fn tables(&self) -> Vec<Table> {
        let columns = [
            "segment",
            "members",
            "share_percent",
            "value_minor",
            "lifetime_value_minor",
        ];
        let now = self.segments.iter().fold(
            Table::new("Segments at the end of the period", &columns),
            |table, s| {
                table.row(vec![
                    Cell::Text(s.segment.clone()),
                    Cell::Number(s.members),
                    Cell::Percent(s.share_percent),
                    Cell::Money(s.value_minor),
                    Cell::Money(s.lifetime_value_minor),
                ])
            },
        );
        let columns = ["month", "as_of", "segment", "members", "value_minor"];
        let mut over_time = Table::new("Segments at each month end", &columns);
        for month in &self.months {
            for s in &month.segments {
                over_time = over_time.row(vec![
                    Cell::Text(month.month.clone()),
                    Cell::Text(month.as_of.to_string()),
                    Cell::Text(s.segment.clone()),
                    Cell::Number(s.members),
                    Cell::Money(s.value_minor),
                ]);
            }
        }
        vec![now, over_time]
    }

    fn summary(&self) -> Vec<String> {
        vec![format!(
            "{} members at the end of the period, {} of them in no segment (segments may overlap)",
            self.members, self.unsegmented
        )]
    }
}

impl Tabular for Groups {
    fn header(&self) -> &Header {
        &self.header
    }

    fn tables(&self) -> Vec<Table> {
        let columns = [
            self.attribute.as_str(),
            "members",
            "share_percent",
            "purchases",
            "net_spend_minor",
            "value_minor",
            "lifetime_value_minor",
        ];
        let table = self.groups.iter().chain([&self.total]).fold(
            Table::new(&format!("Members by {}", self.attribute), &columns),
            |table, g| {
                table.row(vec![
                    Cell::Text(g.group.clone()),
                    Cell::Number(g.members),
                    Cell::Percent(g.share_percent),
                    Cell::Number(g.purchases),
                    Cell::Money(g.net_spend_minor),
                    Cell::Money(g.value_minor),
                    Cell::Money(g.lifetime_value_minor),
                ])
            },
        );
        vec![table]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid")
    }

    #[test]
    fn month_ends_cover_the_period_without_gaps() {
        let points = month_ends(Period {
            from: day(2026, 1, 15),
            to: day(2026, 3, 10),
        });
        let ends: Vec<NaiveDate> = points.iter().map(|(d, _)| *d).collect();
        assert_eq!(ends, [day(2026, 1, 31), day(2026, 2, 28), day(2026, 3, 10)]);
        assert_eq!(points[0].1.from, day(2026, 1, 15));
        assert_eq!(points[1].1.from, day(2026, 2, 1));
        assert_eq!(points[2].1.from, day(2026, 3, 1));
        let one_day = month_ends(Period {
            from: day(2026, 12, 31),
            to: day(2026, 12, 31),
        });
        assert_eq!(one_day.len(), 1);
    }
}
