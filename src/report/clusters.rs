//! Clusters: members grouped by how they behave, found by k-means
//! (`linfa-clustering`) rather than by rules, so that staff can look at
//! the groups and name them (loyal, big spenders, low engagement, new).
//!
//! Each member enrolled by the end of the period is five numbers:
//! recency (days since the last purchase), frequency (purchases in the
//! period), monetary value (net spend in it), points (outstanding at its
//! end) and engagement (activities in it). They are standardised (mean 0,
//! standard deviation 1) so that no unit outweighs the others. k is given,
//! or chosen as the k in 2..=8 with the best silhouette score: each k is
//! fitted on a sample of at most [`CHOICE_SAMPLE`] members and scored on
//! at most [`SILHOUETTE_SAMPLE`] (the score costs the square of the
//! members it looks at). The k chosen is then fitted on at most
//! [`FIT_SAMPLE`] members, and that model assigns every member. Everything random is drawn from
//! `seed`, and members are put in a fixed order first, so the same data and
//! seed give the same clusters on any machine.
//!
//! Floating point is used for the clustering only. Each cluster's figures
//! are exact sums over its members (counts, minor units, points); its
//! centre is their average in plain units.

use linfa::{
    DatasetBase,
    metrics::SilhouetteScore as _,
    traits::{Fit as _, Predict as _},
};
use linfa_clustering::{KMeans, KMeansInit};
use linfa_nn::distance::L2Dist;
use ndarray::{Array1, Array2, Axis};
use rand_xoshiro::{
    Xoshiro256Plus,
    rand_core::{RngCore as _, SeedableRng as _},
};
use serde::Serialize;

use super::{
    Header, Making, Period, Report, ReportError, Reporter, figures, percent, scan,
    table::{Cell, Table, Tabular},
};

/// The most clusters a report makes.
pub const MAX_CLUSTERS: u32 = 20;
/// The k tried when none is given.
pub const CHOSEN_FROM: std::ops::RangeInclusive<u32> = 2..=8;
/// Members the final k-means is fitted on, at most.
pub const FIT_SAMPLE: usize = 50_000;
/// Members each candidate k is fitted on, at most.
pub const CHOICE_SAMPLE: usize = 10_000;
/// Members the silhouette score looks at, at most.
pub const SILHOUETTE_SAMPLE: usize = 1_000;
/// The seed unless one is given.
pub const DEFAULT_SEED: u64 = 42;

/// The five numbers of a member, in the order of [`FEATURES`], with its
/// value in the period beside them (for the clusters' sums, not clustered).
type Features = [i64; 6];

/// The clustered features' names, as the report shows the centres.
pub const FEATURES: [&str; 5] = [
    "recency_days",
    "frequency",
    "monetary_minor",
    "points",
    "engagement",
];

/// Members in clusters over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clusters {
    /// The period and the rules.
    #[serde(flatten)]
    pub header: Header,
    /// The seed everything random was drawn from.
    pub seed: u64,
    /// The number of clusters made.
    pub k: u32,
    /// Whether k was chosen by the silhouette score (not given).
    pub k_chosen: bool,
    /// The silhouette score of each k tried (one entry when k was given).
    pub silhouette: Vec<KScore>,
    /// Members enrolled by the end of the period (the sum over clusters).
    pub members: i64,
    /// Their value in the period (the sum over clusters), minor units.
    pub value_minor: i64,
    /// The clusters, largest first.
    pub clusters: Vec<Cluster>,
}

/// How well k clusters separate the members, -1 to 1 (higher is better).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KScore {
    /// The number of clusters.
    pub k: u32,
    /// The mean silhouette over the sample, to three decimals.
    pub score: f64,
}

/// One cluster: its size, its exact sums and its centre in plain units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// 1 is the largest.
    pub cluster: u32,
    /// Members in it.
    pub members: i64,
    /// `members` of all, percent.
    pub share_percent: f64,
    /// Their value in the period, minor units.
    pub value_minor: i64,
    /// Their net spend in the period, minor units.
    pub monetary_minor: i64,
    /// Average days since the last purchase, one decimal.
    pub recency_days: f64,
    /// Average purchases in the period, one decimal.
    pub frequency: f64,
    /// Average net spend in the period, minor units (toward zero).
    pub average_monetary_minor: i64,
    /// Average outstanding points, one decimal.
    pub points: f64,
    /// Average activities in the period, one decimal.
    pub engagement: f64,
}

impl Reporter<'_> {
    /// Members in `k` clusters over `period` (k chosen when `None`).
    ///
    /// # Errors
    /// A period the day totals do not cover; k out of range; a storage
    /// failure.
    pub(super) fn clusters(
        &self,
        period: Period,
        k: Option<u32>,
        seed: u64,
    ) -> Result<Making<'_>, ReportError> {
        self.check_period(period)?;
        if let Some(k) = k.filter(|k| !(2..=MAX_CLUSTERS).contains(k)) {
            return Err(ReportError::BadOption {
                field: "k",
                message: format!("{k} clusters: give 2 to {MAX_CLUSTERS}, or none to choose"),
            });
        }
        let worth = self.rules().reporting.point_value_minor;
        Ok(Making::new(
            Vec::new,
            move |rows: &mut Vec<Features>, m| {
                if figures::enrolled_by(m, period.to) {
                    rows.push([
                        figures::lifecycle_at(m, period.to).since_last_purchase,
                        period.purchases(m),
                        period.net_spend(m),
                        figures::points_outstanding_at(m, period.to),
                        period.activities(m),
                        period.value(m, worth),
                    ]);
                }
                Ok(())
            },
            scan::append,
            move |mut members| {
                // The scan's order depends on the threads; the sorted rows
                // do not.
                members.sort_unstable();
                let header = self.header("clusters", None, Some(period));
                Ok(Report::Clusters(cluster(header, &members, k, seed)))
            },
        ))
    }
}

/// Clusters `members` (sorted) and sums each cluster.
fn cluster(header: Header, members: &[Features], k: Option<u32>, seed: u64) -> Clusters {
    let total_value = members.iter().fold(0_i64, |s, m| s.saturating_add(m[5]));
    let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
    let empty = Clusters {
        header,
        seed,
        k: 0,
        k_chosen: k.is_none(),
        silhouette: Vec::new(),
        members: count,
        value_minor: total_value,
        clusters: Vec::new(),
    };
    let standard = standardise(members);
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let mut drawn = |at_most| standard.select(Axis(0), &sample(members.len(), at_most, &mut rng));
    let (choice_data, check_data, fit_data) = (
        drawn(CHOICE_SAMPLE),
        drawn(SILHOUETTE_SAMPLE),
        drawn(FIT_SAMPLE),
    );
    let candidates: Vec<u32> = match k {
        Some(k) => vec![k],
        None => CHOSEN_FROM.collect(),
    };
    let scores: Vec<KScore> = candidates
        .into_iter()
        .filter_map(|k| {
            let model = fit(&choice_data, k, seed)?;
            Some(KScore {
                k,
                score: silhouette(&model, &check_data),
            })
        })
        .collect();
    let best = scores
        .iter()
        .fold(None::<&KScore>, |best, s| match best {
            Some(b) if b.score >= s.score => Some(b),
            _ => Some(s),
        })
        .map(|s| s.k);
    let Some((model, chosen)) = best.and_then(|k| fit(&fit_data, k, seed).map(|m| (m, k))) else {
        return Clusters {
            silhouette: scores,
            ..empty
        };
    };
    let labels: Array1<usize> = model.predict(&standard);
    Clusters {
        k: chosen,
        silhouette: scores,
        clusters: sum_clusters(members, &labels, chosen, count),
        ..empty
    }
}

/// Each feature less its mean, over its standard deviation (1 when all
/// members have the same value).
#[allow(clippy::cast_precision_loss)] // clustering only; sums stay exact
fn standardise(members: &[Features]) -> Array2<f64> {
    let mut data = Array2::<f64>::zeros((members.len(), FEATURES.len()));
    for (mut row, member) in data.axis_iter_mut(Axis(0)).zip(members) {
        for (cell, value) in row.iter_mut().zip(member) {
            *cell = *value as f64;
        }
    }
    if members.is_empty() {
        return data;
    }
    for mut column in data.axis_iter_mut(Axis(1)) {
        let mean = column.mean().unwrap_or(0.0);
        let deviation = column.std(0.0);
        let scale = if deviation > 0.0 { deviation } else { 1.0 };
        column.mapv_inplace(|x| (x - mean) / scale);
    }
    data
}

/// `at_most` row numbers out of `len`, drawn without repeats, in order
/// (all of them when there are no more).
fn sample(len: usize, at_most: usize, rng: &mut Xoshiro256Plus) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..len).collect();
    if len > at_most {
        for i in 0..at_most {
            let left = u64::try_from(len - i).unwrap_or(u64::MAX);
            let pick = i + usize::try_from(rng.next_u64() % left).unwrap_or(0);
            rows.swap(i, pick);
        }
        rows.truncate(at_most);
        rows.sort_unstable();
    }
    rows
}

/// K-means with k clusters, when there are at least k members.
fn fit(data: &Array2<f64>, k: u32, seed: u64) -> Option<KMeans<f64, L2Dist>> {
    let k = usize::try_from(k).ok()?;
    if data.nrows() < k {
        return None;
    }
    let dataset = DatasetBase::from(data.view());
    KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .init_method(KMeansInit::KMeansPlusPlus)
        .n_runs(3)
        .max_n_iterations(300)
        .tolerance(1e-6)
        .fit(&dataset)
        .ok()
}

/// The model's silhouette score on `data`, to three decimals (-1 when it
/// cannot be computed).
fn silhouette(model: &KMeans<f64, L2Dist>, data: &Array2<f64>) -> f64 {
    let labels: Array1<usize> = model.predict(data);
    let score = DatasetBase::new(data.view(), labels)
        .silhouette_score()
        .unwrap_or(-1.0);
    (score * 1_000.0).round() / 1_000.0
}

/// Exact sums and plain-unit averages per cluster, largest first.
fn sum_clusters(members: &[Features], labels: &Array1<usize>, k: u32, count: i64) -> Vec<Cluster> {
    let mut sums = vec![(0_i64, [0_i64; 6]); usize::try_from(k).unwrap_or(0)];
    for (member, label) in members.iter().zip(labels) {
        if let Some((n, sum)) = sums.get_mut(*label) {
            *n += 1;
            for (s, v) in sum.iter_mut().zip(member) {
                *s = s.saturating_add(*v);
            }
        }
    }
    sums.retain(|(n, _)| *n > 0);
    sums.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    sums.into_iter()
        .zip(1..)
        .map(|((n, sum), cluster)| Cluster {
            cluster,
            members: n,
            share_percent: percent(n, count),
            value_minor: sum[5],
            monetary_minor: sum[2],
            recency_days: average(sum[0], n),
            frequency: average(sum[1], n),
            average_monetary_minor: sum[2] / n,
            points: average(sum[3], n),
            engagement: average(sum[4], n),
        })
        .collect()
}

/// `sum / n` to one decimal, for display.
#[allow(clippy::cast_precision_loss)] // display only
fn average(sum: i64, n: i64) -> f64 {
    (sum as f64 * 10.0 / n as f64).round() / 10.0
}

impl Tabular for Clusters {
    fn header(&self) -> &Header {
        &self.header
    }

    fn tables(&self) -> Vec<Table> {
        let columns = [
            "cluster",
            "members",
            "share_percent",
            "value_minor",
            "monetary_minor",
            "recency_days",
            "frequency",
            "average_monetary_minor",
            "points",
            "engagement",
        ];
        let decimal = |x: f64| Cell::Text(format!("{x:.1}"));
        let clusters = self.clusters.iter().fold(
            Table::new("Clusters and their centres", &columns),
            |t, c| {
                t.row(vec![
                    Cell::Number(i64::from(c.cluster)),
                    Cell::Number(c.members),
                    Cell::Percent(c.share_percent),
                    Cell::Money(c.value_minor),
                    Cell::Money(c.monetary_minor),
                    decimal(c.recency_days),
                    decimal(c.frequency),
                    Cell::Money(c.average_monetary_minor),
                    decimal(c.points),
                    decimal(c.engagement),
                ])
            },
        );
        let scores = self.silhouette.iter().fold(
            Table::new("Silhouette score per k", &["k", "score"]),
            |t, s| {
                t.row(vec![
                    Cell::Number(i64::from(s.k)),
                    Cell::Text(format!("{:.3}", s.score)),
                ])
            },
        );
        vec![clusters, scores]
    }

    fn summary(&self) -> Vec<String> {
        let how = if self.k_chosen {
            "chosen by the best silhouette score"
        } else {
            "as asked"
        };
        vec![format!(
            "{} members in {} clusters ({how}; seed {})",
            self.members, self.k, self.seed
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            report: "clusters".into(),
            as_of: None,
            from: None,
            to: None,
            rules_version: "t".into(),
            currency: "EUR".into(),
            spend_basis: None,
        }
    }

    /// Three groups far apart: new (recent, few purchases), loyal (many
    /// purchases, high spend), lapsed (long ago).
    fn three_groups() -> Vec<Features> {
        let mut members = Vec::new();
        for i in 0..300_i64 {
            let jitter = i % 7;
            members.push(match i % 3 {
                0 => [2 + jitter, 1, 2_000 + jitter, 10, 0, 2_000],
                1 => [5 + jitter, 40 + jitter, 400_000 + jitter, 4_000, 6, 390_000],
                _ => [300 + jitter, 2, 5_000, 0, 0, -100],
            });
        }
        members.sort_unstable();
        members
    }

    #[test]
    fn finds_well_separated_groups_and_sums_them_exactly() {
        let members = three_groups();
        let report = cluster(header(), &members, None, DEFAULT_SEED);
        assert_eq!(report.k, 3, "{:?}", report.silhouette);
        assert_eq!(report.silhouette.len(), 7);
        assert_eq!(report.clusters.iter().map(|c| c.members).sum::<i64>(), 300);
        assert!(report.clusters.iter().all(|c| c.members == 100));
        let value: i64 = members.iter().map(|m| m[5]).sum();
        assert_eq!(report.value_minor, value);
        assert_eq!(
            report.clusters.iter().map(|c| c.value_minor).sum::<i64>(),
            value
        );
        let loyal = report
            .clusters
            .iter()
            .find(|c| c.frequency > 40.0)
            .expect("loyal");
        assert_eq!(loyal.value_minor, 100 * 390_000);
    }

    #[test]
    fn the_same_seed_gives_the_same_clusters() {
        let members = three_groups();
        let once = cluster(header(), &members, Some(4), 7);
        let again = cluster(header(), &members, Some(4), 7);
        assert_eq!(once, again);
        assert_eq!((once.k, once.k_chosen), (4, false));
    }

    #[test]
    fn too_few_members_make_no_clusters() {
        let report = cluster(header(), &[[1, 1, 1, 1, 1, 1]], None, 1);
        assert_eq!((report.k, report.members), (0, 1));
        assert!(report.clusters.is_empty());
    }

    #[test]
    fn samples_are_distinct_and_bounded() {
        let mut rng = Xoshiro256Plus::seed_from_u64(3);
        let rows = sample(10_000, 500, &mut rng);
        assert_eq!(rows.len(), 500);
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample(10, 500, &mut rng), (0..10).collect::<Vec<_>>());
    }
}
