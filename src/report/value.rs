//! Reports by value: value ranks (the Pareto view), lifetime-value bands
//! and RFM (recency, frequency, monetary value).
//!
//! A member's value in a period is its net spend in it (purchases made in
//! it minus refunds made in it) minus the cost of the points it redeemed in
//! it (`reporting.point_value` each). Value ranks put members who cost
//! money in the last rank, those with no value in the one before, and
//! split the contributing members into equal groups for the rest, rank 1
//! the most valuable.

use serde::Serialize;

use super::{Header, Making, Period, Report, ReportError, Reporter, figures, percent, scan};
use crate::domain::member::MemberState;

/// The most ranks a value-rank report makes.
pub const MAX_RANKS: u32 = 100;

/// Members in value ranks over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueRanks {
    /// The period and the rules.
    #[serde(flatten)]
    pub header: Header,
    /// The worth of a point the redemption cost used, minor units.
    pub point_value_minor: i64,
    /// Members enrolled by the end of the period (the sum over the ranks).
    pub members: i64,
    /// Members with a value above 0.
    pub contributing_members: i64,
    /// The value of all members (the sum over the ranks), minor units.
    pub value_minor: i64,
    /// The value of the contributing members: what shares are shares of.
    pub positive_value_minor: i64,
    /// Rank 1 (most valuable) to the last (members who cost money).
    pub ranks: Vec<RankRow>,
    /// The value brought by the top 10% and top 20% of contributing
    /// members.
    pub pareto: Vec<ParetoPoint>,
}

/// One value rank.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankRow {
    /// 1 is the most valuable.
    pub rank: u32,
    /// Members in the rank.
    pub members: i64,
    /// Their value, minor units.
    pub value_minor: i64,
    /// `value_minor` of the contributing members' value, percent.
    pub share_percent: f64,
    /// The share of this rank and every rank above it, percent.
    pub cumulative_share_percent: f64,
    /// `value_minor / members`, rounded toward zero (0 for an empty rank).
    pub average_minor: i64,
}

/// The value brought by the most valuable `top_percent` of the
/// contributing members (rounded up to whole members).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParetoPoint {
    /// 10 or 20.
    pub top_percent: u32,
    /// How many members that is.
    pub members: i64,
    /// Their value, minor units.
    pub value_minor: i64,
    /// Their share of the contributing members' value, percent.
    pub share_percent: f64,
}

/// Members per lifetime-value band on a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueBands {
    /// The day and the rules.
    #[serde(flatten)]
    pub header: Header,
    /// The bands of the rules, lowest first.
    pub bands: Vec<BandRow>,
    /// Members enrolled by the day (the sum over the bands).
    pub members: i64,
    /// Their lifetime value, minor units (the sum over the bands).
    pub value_minor: i64,
}

/// One lifetime-value band.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandRow {
    /// The band's name (`all` when the rules define none).
    pub band: String,
    /// Its inclusive upper bound, minor units (`null`: open).
    pub up_to_minor: Option<i64>,
    /// Members whose lifetime value falls in the band.
    pub members: i64,
    /// `members` of all members, percent.
    pub share_percent: f64,
    /// Their lifetime value, minor units.
    pub value_minor: i64,
}

/// RFM scores over a period: summary by segment, and per member on
/// request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rfm {
    /// The period and the rules.
    #[serde(flatten)]
    pub header: Header,
    /// Members enrolled by the end of the period (the sum over segments).
    pub members: i64,
    /// Where the scores change, per dimension.
    pub cuts: RfmCuts,
    /// The segments of the rules, in order, then `other`.
    pub segments: Vec<SegmentRow>,
    /// Every member's scores, when asked for (by member id).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<RfmScore>,
}

/// The quintile boundaries: a member scores 1 plus the number of
/// boundaries it beats (is more recent, more frequent, spends more than).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RfmCuts {
    /// Days since the last purchase at the 20th, 40th, 60th, 80th
    /// percentile (fewer is better; `null`: no purchase kept).
    pub recency_days: Vec<Option<i64>>,
    /// Purchases at those percentiles.
    pub frequency: Vec<i64>,
    /// Net spend at those percentiles, minor units.
    pub monetary_minor: Vec<i64>,
}

/// One RFM segment's members and value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRow {
    /// The segment's name (`other`: members no segment holds).
    pub segment: String,
    /// Members in it.
    pub members: i64,
    /// `members` of all members, percent.
    pub share_percent: f64,
    /// Their net spend in the period, minor units.
    pub monetary_minor: i64,
}

/// One member's RFM figures and scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RfmScore {
    /// The member.
    pub member_id: String,
    /// Days since its last purchase at the end of the period (`null`: none
    /// in the day totals kept).
    pub recency_days: Option<i64>,
    /// Purchases in the period.
    pub frequency: i64,
    /// Net spend in the period, minor units.
    pub monetary_minor: i64,
    /// Recency score, 1 to 5 (5: most recent).
    pub r: u8,
    /// Frequency score, 1 to 5.
    pub f: u8,
    /// Monetary score, 1 to 5.
    pub m: u8,
    /// The first segment of the rules that holds the scores, or `other`.
    pub segment: String,
}

/// The sizes of `groups` groups sharing `members`: they differ by at most
/// one, the larger first.
pub fn group_sizes(members: usize, groups: usize) -> Vec<usize> {
    if groups == 0 {
        return Vec::new();
    }
    let (base, larger) = (members / groups, members % groups);
    (0..groups)
        .map(|i| base + usize::from(i < larger))
        .collect()
}

/// Value ranks from the members' values: `ranks` ranks, the last for
/// values below 0, the one before for 0, the others splitting the positive
/// values (sorted from the highest) into groups of equal size.
pub fn rank_values(mut values: Vec<i64>, ranks: u32) -> Vec<RankRow> {
    values.sort_unstable_by(|a, b| b.cmp(a));
    let positive = values.iter().take_while(|v| **v > 0).count();
    let zero = values[positive..].iter().take_while(|v| **v == 0).count();
    let contributing = usize::try_from(ranks.saturating_sub(2)).unwrap_or(0);
    let mut groups: Vec<&[i64]> = Vec::new();
    let mut rest = &values[..positive];
    for size in group_sizes(positive, contributing) {
        let (group, after) = rest.split_at(size);
        groups.push(group);
        rest = after;
    }
    groups.push(&values[positive..positive + zero]);
    groups.push(&values[positive + zero..]);
    let positive_value = sum(&values[..positive]);
    let mut cumulative = 0_i64;
    (1..)
        .zip(groups)
        .map(|(rank, group)| {
            let value_minor = sum(group);
            cumulative = cumulative.saturating_add(value_minor);
            let members = i64::try_from(group.len()).unwrap_or(i64::MAX);
            RankRow {
                rank,
                members,
                value_minor,
                share_percent: percent(value_minor, positive_value),
                cumulative_share_percent: percent(cumulative, positive_value),
                average_minor: value_minor.checked_div(members).unwrap_or(0),
            }
        })
        .collect()
}

fn sum(values: &[i64]) -> i64 {
    values.iter().fold(0_i64, |s, v| s.saturating_add(*v))
}

/// The value of the top `top_percent` of the positive values (sorted from
/// the highest), rounded up to whole members.
fn pareto_point(sorted_positive: &[i64], top_percent: u32) -> ParetoPoint {
    let n = sorted_positive.len();
    let top = (n * top_percent as usize).div_ceil(100);
    let value_minor = sum(&sorted_positive[..top]);
    ParetoPoint {
        top_percent,
        members: i64::try_from(top).unwrap_or(i64::MAX),
        value_minor,
        share_percent: percent(value_minor, sum(sorted_positive)),
    }
}

/// The four quintile boundaries of `values` (sorted ascending): the values
/// at 20%, 40%, 60% and 80% of the way.
fn quintile_cuts<T: Copy>(sorted: &[T]) -> Vec<T> {
    if sorted.is_empty() {
        return Vec::new();
    }
    (1..5).map(|k| sorted[k * sorted.len() / 5]).collect()
}

/// 1 plus the number of `cuts` that `value` is strictly better than.
fn score<T: PartialOrd>(value: &T, cuts: &[T]) -> u8 {
    1 + u8::try_from(cuts.iter().filter(|c| value > c).count()).unwrap_or(4)
}

/// Recency ordered so that more recent is greater, no purchase least.
fn recency_key(days: Option<i64>) -> i64 {
    days.map_or(i64::MIN, |d| d.saturating_neg())
}

impl Reporter<'_> {
    /// Members in `ranks` value ranks over `period`.
    ///
    /// # Errors
    /// A period the day totals do not cover; fewer than 3 or more than
    /// [`MAX_RANKS`] ranks.
    pub(super) fn value_ranks(
        &self,
        period: Period,
        ranks: u32,
    ) -> Result<Making<'_>, ReportError> {
        self.check_period(period)?;
        if !(3..=MAX_RANKS).contains(&ranks) {
            return Err(ReportError::BadOption {
                field: "ranks",
                message: format!(
                    "{ranks} ranks: give 3 to {MAX_RANKS} (the last two hold members who cost money and those with no value)"
                ),
            });
        }
        let point_value_minor = self.rules().reporting.point_value_minor;
        Ok(Making::new(
            Vec::new,
            move |values: &mut Vec<i64>, m| {
                if figures::enrolled_by(m, period.to) {
                    values.push(period.value(m, point_value_minor));
                }
                Ok(())
            },
            scan::append,
            move |values| Ok(Report::ValueRanks(self.ranks_of(period, ranks, values))),
        ))
    }

    /// The value ranks of the members' `values`.
    fn ranks_of(&self, period: Period, ranks: u32, mut values: Vec<i64>) -> ValueRanks {
        let point_value_minor = self.rules().reporting.point_value_minor;
        values.sort_unstable_by(|a, b| b.cmp(a));
        let positive: &[i64] = &values[..values.iter().take_while(|v| **v > 0).count()];
        let pareto = vec![pareto_point(positive, 10), pareto_point(positive, 20)];
        ValueRanks {
            header: self.header("value-ranks", None, Some(period)),
            point_value_minor,
            members: i64::try_from(values.len()).unwrap_or(i64::MAX),
            contributing_members: i64::try_from(positive.len()).unwrap_or(i64::MAX),
            value_minor: sum(&values),
            positive_value_minor: sum(positive),
            pareto,
            ranks: rank_values(values, ranks),
        }
    }

    /// Members and lifetime value per band of the rules, at the end of
    /// `as_of`.
    ///
    /// # Errors
    /// A day the day totals do not cover.
    pub(super) fn value_bands(&self, as_of: chrono::NaiveDate) -> Result<Making<'_>, ReportError> {
        self.check_day("as_of", as_of)?;
        let reporting = &self.rules().reporting;
        let count = reporting.value_bands.len().max(1);
        Ok(Making::new(
            move || vec![(0_i64, 0_i64); count],
            move |sums: &mut Vec<(i64, i64)>, m| {
                if figures::enrolled_by(m, as_of) {
                    let ltv = figures::lifetime_value_at(m, as_of);
                    let band = &mut sums[reporting.band_of(ltv)];
                    band.0 += 1;
                    band.1 = band.1.saturating_add(ltv);
                }
                Ok(())
            },
            |total, part| {
                for (t, p) in total.iter_mut().zip(part) {
                    t.0 += p.0;
                    t.1 = t.1.saturating_add(p.1);
                }
            },
            move |sums| Ok(Report::ValueBands(self.bands_of(as_of, &sums))),
        ))
    }

    /// The bands from their (members, lifetime value) sums.
    fn bands_of(&self, as_of: chrono::NaiveDate, sums: &[(i64, i64)]) -> ValueBands {
        let reporting = &self.rules().reporting;
        let members: i64 = sums.iter().map(|s| s.0).sum();
        let names = reporting
            .value_bands
            .iter()
            .map(|b| (b.name.clone(), b.up_to_minor));
        let bands = names
            .chain(
                reporting
                    .value_bands
                    .is_empty()
                    .then(|| ("all".to_owned(), None)),
            )
            .zip(sums)
            .map(|((band, up_to_minor), &(n, value_minor))| BandRow {
                band,
                up_to_minor,
                members: n,
                share_percent: percent(n, members),
                value_minor,
            })
            .collect();
        ValueBands {
            header: self.header("value-bands", Some(as_of), None),
            bands,
            members,
            value_minor: sums.iter().fold(0_i64, |s, b| s.saturating_add(b.1)),
        }
    }

    /// RFM scores over `period` (recency at its end), summarised by the
    /// segments of the rules; every member's scores too when
    /// `with_members`.
    ///
    /// # Errors
    /// A period the day totals do not cover.
    pub(super) fn rfm(
        &self,
        period: Period,
        with_members: bool,
    ) -> Result<Making<'_>, ReportError> {
        self.check_period(period)?;
        Ok(Making::new(
            RfmRows::default,
            move |rows: &mut RfmRows, m| {
                if figures::enrolled_by(m, period.to) {
                    rows.figures.push(RfmFigures::of(m, period));
                    if with_members {
                        rows.ids.push(m.member_id.clone());
                    }
                }
                Ok(())
            },
            RfmRows::append,
            move |rows| Ok(Report::Rfm(self.rfm_of(period, rows))),
        ))
    }

    /// The RFM report from every member's figures (and ids, when listed).
    fn rfm_of(&self, period: Period, rows: RfmRows) -> Rfm {
        let (cuts, places) = self.score_rfm(&rows.figures);
        let segments = &self.rules().reporting.rfm_segments;
        let mut by_segment = vec![(0_i64, 0_i64); segments.len() + 1];
        for (figures, place) in rows.figures.iter().zip(&places) {
            let sums = &mut by_segment[usize::from(place.segment)];
            sums.0 += 1;
            sums.1 = sums.1.saturating_add(figures.monetary_minor);
        }
        let total = i64::try_from(rows.figures.len()).unwrap_or(i64::MAX);
        let names: Vec<String> = segments
            .iter()
            .map(|s| s.name.clone())
            .chain(["other".to_owned()])
            .collect();
        let segment_rows = names
            .iter()
            .zip(by_segment)
            .map(|(segment, (n, monetary_minor))| SegmentRow {
                segment: segment.clone(),
                members: n,
                share_percent: percent(n, total),
                monetary_minor,
            })
            .collect();
        let mut scores: Vec<RfmScore> = rows
            .ids
            .into_iter()
            .zip(rows.figures.iter().zip(&places))
            .map(|(member_id, (figures, place))| RfmScore {
                member_id,
                recency_days: figures.recency_days,
                frequency: figures.frequency,
                monetary_minor: figures.monetary_minor,
                r: place.r,
                f: place.f,
                m: place.m,
                segment: names[usize::from(place.segment)].clone(),
            })
            .collect();
        scores.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        Rfm {
            header: self.header("rfm", None, Some(period)),
            members: total,
            cuts,
            segments: segment_rows,
            scores,
        }
    }

    /// Scores each member's RFM `figures` by the cuts of all of them and
    /// finds the rules' RFM segment each falls in; returns the cuts and,
    /// in the order of `figures`, the scores.
    pub(super) fn score_rfm(&self, figures: &[RfmFigures]) -> (RfmCuts, Vec<RfmPlace>) {
        let cuts = rfm_cuts(figures);
        let reporting = &self.rules().reporting;
        let other = u16::try_from(reporting.rfm_segments.len()).unwrap_or(u16::MAX);
        let recency_cuts: Vec<i64> = cuts.recency_days.iter().map(|d| recency_key(*d)).collect();
        let places = figures
            .iter()
            .map(|row| {
                let (r, f, m) = (
                    score(&recency_key(row.recency_days), &recency_cuts),
                    score(&row.frequency, &cuts.frequency),
                    score(&row.monetary_minor, &cuts.monetary_minor),
                );
                let segment = reporting
                    .rfm_segment_of((r, f, m))
                    .and_then(|index| u16::try_from(index).ok())
                    .unwrap_or(other);
                RfmPlace { r, f, m, segment }
            })
            .collect();
        (cuts, places)
    }
}

/// The RFM report's members: their figures, and their ids when listed.
#[derive(Default)]
struct RfmRows {
    figures: Vec<RfmFigures>,
    ids: Vec<String>,
}

impl RfmRows {
    /// Adds another thread's rows, each id beside its figures.
    fn append(&mut self, mut part: RfmRows) {
        if part.figures.capacity() > self.figures.capacity() {
            std::mem::swap(self, &mut part);
        }
        self.figures.append(&mut part.figures);
        self.ids.append(&mut part.ids);
    }
}

/// A member's RFM figures, before they are scored against everyone's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RfmFigures {
    recency_days: Option<i64>,
    frequency: i64,
    monetary_minor: i64,
}

impl RfmFigures {
    /// `m`'s figures over `period` (recency at its end).
    pub(super) fn of(m: &MemberState, period: Period) -> Self {
        Self {
            recency_days: figures::days_since_last_purchase(m, period.to),
            frequency: period.purchases(m),
            monetary_minor: period.net_spend(m),
        }
    }
}

/// A member's RFM scores and its segment's place in the rules (one past
/// them: `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RfmPlace {
    r: u8,
    f: u8,
    m: u8,
    /// The place of its segment.
    pub(super) segment: u16,
}

fn rfm_cuts(rows: &[RfmFigures]) -> RfmCuts {
    let mut recency: Vec<Option<i64>> = rows.iter().map(|r| r.recency_days).collect();
    recency.sort_by_key(|d| recency_key(*d));
    let mut frequency: Vec<i64> = rows.iter().map(|r| r.frequency).collect();
    frequency.sort_unstable();
    let mut monetary: Vec<i64> = rows.iter().map(|r| r.monetary_minor).collect();
    monetary.sort_unstable();
    RfmCuts {
        recency_days: quintile_cuts(&recency),
        frequency: quintile_cuts(&frequency),
        monetary_minor: quintile_cuts(&monetary),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ranks_put_costs_last_and_no_value_before_them() {
        let values = vec![-50, 0, 0, 100, 90, 80, 70, 60, 50, 40, 30, 20, 10, -5];
        let rows = rank_values(values, 5);
        let members: Vec<i64> = rows.iter().map(|r| r.members).collect();
        let value: Vec<i64> = rows.iter().map(|r| r.value_minor).collect();
        // 10 contributing members in 3 groups: 4, 3, 3.
        assert_eq!(members, [4, 3, 3, 2, 2]);
        assert_eq!(value, [340, 150, 60, 0, -55]);
        assert_eq!(rows[0].share_percent, 61.82);
        assert_eq!(rows[2].cumulative_share_percent, 100.0);
        assert_eq!(rows[4].average_minor, -27);
    }

    #[test]
    fn pareto_points_round_up_to_whole_members() {
        let sorted = [500, 200, 100, 100, 50, 20, 10, 10, 5, 5, 0];
        let top = pareto_point(&sorted[..10], 10);
        assert_eq!((top.members, top.value_minor), (1, 500));
        assert_eq!(top.share_percent, 50.0);
        let top = pareto_point(&sorted[..3], 20);
        assert_eq!((top.members, top.value_minor), (1, 500));
    }

    #[test]
    fn quintile_scores_do_not_reward_ties_at_the_bottom() {
        let sorted = [0, 0, 0, 0, 0, 0, 0, 1, 2, 9];
        let cuts = quintile_cuts(&sorted);
        assert_eq!(cuts, [0, 0, 0, 2]);
        assert_eq!(score(&0, &cuts), 1);
        assert_eq!(score(&1, &cuts), 4);
        assert_eq!(score(&9, &cuts), 5);
        assert!(quintile_cuts::<i64>(&[]).is_empty());
    }

    proptest! {
        #[test]
        fn ranks_hold_every_member_once_in_equal_groups_ordered_by_value(
            values in proptest::collection::vec(-1_000_i64..10_000, 0..300),
            ranks in 3_u32..15,
        ) {
            let rows = rank_values(values.clone(), ranks);
            prop_assert_eq!(rows.len(), ranks as usize);
            let members: i64 = rows.iter().map(|r| r.members).sum();
            prop_assert_eq!(members, values.len() as i64);
            let total: i64 = rows.iter().map(|r| r.value_minor).sum();
            prop_assert_eq!(total, values.iter().sum::<i64>());
            let contributing = &rows[..rows.len() - 2];
            let sizes: Vec<i64> = contributing.iter().map(|r| r.members).collect();
            let (largest, smallest) = (sizes.iter().max(), sizes.iter().min());
            prop_assert!(largest.zip(smallest).is_none_or(|(l, s)| l - s <= 1));
            prop_assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "larger groups first");
            // Every member of a rank is worth at least every member of the
            // ranks after it: the averages fall and the boundaries hold.
            let mut sorted = values.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let mut start = 0;
            let mut previous_min = i64::MAX;
            for row in &rows {
                let group = &sorted[start..start + row.members as usize];
                prop_assert_eq!(row.value_minor, group.iter().sum::<i64>());
                if let Some(max) = group.iter().max() {
                    prop_assert!(*max <= previous_min);
                    previous_min = *group.iter().min().unwrap_or(max);
                }
                start += row.members as usize;
            }
            let count = |keep: fn(&i64) -> bool| values.iter().filter(|v| keep(v)).count() as i64;
            prop_assert_eq!(rows[rows.len() - 2].members, count(|v| *v == 0));
            prop_assert_eq!(rows[rows.len() - 1].members, count(|v| *v < 0));
        }
    }
}
