//! Reports by tier: how members are distributed over the ladder on a day,
//! and how they moved between two days.
//!
//! A member's tier on a past day comes from its history (the last change
//! made by the end of that day); members whose tier has not moved since
//! then are in their current tier without reading anything. Tiers the
//! rules no longer have (a ladder changed) are kept, after the ladder's.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::{Header, Making, Period, Report, ReportError, Reporter, figures, percent};
use crate::{
    domain::{
        decide::{ChangeKind, HistoryEntry},
        member::MemberState,
    },
    store::StoreError,
};

/// Members per tier on a day, with what they spent and hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    /// When and under which rules.
    #[serde(flatten)]
    pub header: Header,
    /// One row per tier, ladder order.
    pub tiers: Vec<TierFigures>,
    /// Every member enrolled by the day.
    pub total: TierFigures,
}

/// One tier's members and sums on the day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TierFigures {
    /// The tier id (`total` for the sum row).
    pub tier: String,
    /// Members in the tier.
    pub members: i64,
    /// `members` of all members, percent.
    pub share_percent: f64,
    /// Their spend in the qualification window ending that day, net of
    /// returns (what tiers count), minor units.
    pub spend_in_window_minor: i64,
    /// Their qualifying points in that window.
    pub qualifying_points: i64,
    /// Their redeemable points outstanding at the end of the day.
    pub points_outstanding: i64,
}

impl TierFigures {
    fn add(&mut self, other: &TierFigures) {
        self.members += other.members;
        self.spend_in_window_minor = self
            .spend_in_window_minor
            .saturating_add(other.spend_in_window_minor);
        self.qualifying_points = self
            .qualifying_points
            .saturating_add(other.qualifying_points);
        self.points_outstanding = self
            .points_outstanding
            .saturating_add(other.points_outstanding);
    }
}

/// Who moved where between two days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Migration {
    /// The two days (the period's ends) and the rules.
    #[serde(flatten)]
    pub header: Header,
    /// The columns: the tier at the end of the period, ladder order.
    pub tiers: Vec<String>,
    /// One row per tier at the start of the period: how many of its
    /// members are in each column's tier at the end.
    pub rows: Vec<MigrationRow>,
    /// Members who joined during the period, by their tier at the end.
    pub joined: MigrationRow,
    /// Members at the start (the sum of `rows`).
    pub members_at_start: i64,
    /// Members at the end (the column sums, `joined` included).
    pub members_at_end: i64,
    /// Promotions during the period.
    pub promotions: i64,
    /// Demotions during the period.
    pub demotions: i64,
    /// Moves staff made during the period: manual placements, and merges
    /// that lifted the remaining member to the merged one's better tier.
    pub manual_moves: i64,
}

/// One row of the migration matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationRow {
    /// The tier at the start (`joined` for the new members' row).
    pub from_tier: String,
    /// Members per tier at the end, in the order of `Migration::tiers`.
    pub to: Vec<i64>,
    /// The row's sum.
    pub members: i64,
}

/// The tier of a member at the end of `day`, from its history.
fn tier_in(history: &[HistoryEntry], day: NaiveDate) -> Option<String> {
    let end = figures::end_of(day);
    history
        .iter()
        .filter(|e| e.change.at <= end)
        .max_by_key(|e| (e.change.at, e.seq))
        .map(|e| e.change.to_tier.clone())
        .or_else(|| {
            // Joined before its first recorded change (data from before
            // tier history was kept): it was in that change's from-tier.
            history
                .first()
                .filter(|e| !e.change.from_tier.is_empty())
                .map(|e| e.change.from_tier.clone())
        })
}

/// Sums of one fold, by tier id.
type ByTier = BTreeMap<String, TierFigures>;

/// A tier-migration fold's counts.
#[derive(Default)]
struct Moves {
    cells: BTreeMap<(Option<String>, String), i64>,
    promotions: i64,
    demotions: i64,
    manual_moves: i64,
}

impl Reporter<'_> {
    /// The tier of `m` at the end of `day` (enrolled by then).
    fn tier_on(&self, m: &MemberState, day: NaiveDate) -> Result<String, StoreError> {
        Ok(self
            .history_after(m, day)?
            .and_then(|history| tier_in(&history, day))
            .unwrap_or_else(|| m.tier.tier_id.clone()))
    }

    /// Members per tier at the end of `as_of`.
    ///
    /// # Errors
    /// A day the day totals do not cover; a storage failure.
    pub(super) fn distribution(&self, as_of: NaiveDate) -> Result<Making<'_>, ReportError> {
        self.check_day("as_of", as_of)?;
        let rules = self.rules();
        Ok(Making::new(
            ByTier::new,
            move |sums, m| {
                if !figures::enrolled_by(m, as_of) {
                    return Ok(());
                }
                let tier = self.tier_on(m, as_of)?;
                let metrics = figures::metrics_at(rules, m, as_of);
                sums.entry(tier).or_default().add(&TierFigures {
                    members: 1,
                    spend_in_window_minor: metrics.purchase_volume_minor,
                    qualifying_points: metrics.qualifying_points,
                    points_outstanding: metrics.points_balance,
                    ..TierFigures::default()
                });
                Ok(())
            },
            merge_by_tier,
            move |by_tier| Ok(Report::Distribution(self.distribution_of(as_of, &by_tier))),
        ))
    }

    /// The distribution from the sums by tier.
    fn distribution_of(&self, as_of: NaiveDate, by_tier: &ByTier) -> Distribution {
        let mut total = TierFigures {
            tier: "total".into(),
            ..TierFigures::default()
        };
        by_tier.values().for_each(|t| total.add(t));
        let tiers = self
            .ladder_with(by_tier.keys())
            .into_iter()
            .map(|id| {
                let mut row = by_tier.get(&id).cloned().unwrap_or_default();
                row.share_percent = percent(row.members, total.members);
                row.tier = id;
                row
            })
            .collect();
        total.share_percent = percent(total.members, total.members);
        Distribution {
            header: self.header("distribution", Some(as_of), None),
            tiers,
            total,
        }
    }

    /// Who moved from which tier to which between the end of
    /// `period.from` and the end of `period.to`.
    ///
    /// # Errors
    /// A period the day totals do not cover; a storage failure.
    pub(super) fn migration(&self, period: Period) -> Result<Making<'_>, ReportError> {
        self.check_period(period)?;
        Ok(Making::new(
            Moves::default,
            move |moves, m| self.count_moves(moves, m, period),
            |total, part| {
                for (cell, n) in part.cells {
                    *total.cells.entry(cell).or_default() += n;
                }
                total.promotions += part.promotions;
                total.demotions += part.demotions;
                total.manual_moves += part.manual_moves;
            },
            move |moves| Ok(Report::Migration(self.migration_of(period, &moves))),
        ))
    }

    /// The migration from the counted moves.
    fn migration_of(&self, period: Period, moves: &Moves) -> Migration {
        let tiers = self.ladder_with(
            moves
                .cells
                .keys()
                .flat_map(|(from, to)| from.iter().chain([to])),
        );
        let row = |from: Option<&String>| {
            let to: Vec<i64> = tiers
                .iter()
                .map(|t| {
                    moves
                        .cells
                        .get(&(from.cloned(), t.clone()))
                        .copied()
                        .unwrap_or(0)
                })
                .collect();
            MigrationRow {
                from_tier: from.map_or_else(|| "joined".to_owned(), Clone::clone),
                members: to.iter().sum(),
                to,
            }
        };
        let rows: Vec<MigrationRow> = tiers.iter().map(|t| row(Some(t))).collect();
        let joined = row(None);
        let members_at_start = rows.iter().map(|r| r.members).sum();
        Migration {
            header: self.header("migration", None, Some(period)),
            members_at_end: members_at_start + joined.members,
            members_at_start,
            rows,
            joined,
            tiers,
            promotions: moves.promotions,
            demotions: moves.demotions,
            manual_moves: moves.manual_moves,
        }
    }

    fn count_moves(
        &self,
        moves: &mut Moves,
        m: &MemberState,
        period: Period,
    ) -> Result<(), StoreError> {
        if !figures::enrolled_by(m, period.to) {
            return Ok(());
        }
        let joined_before = figures::enrolled_by(m, period.from);
        let history = self.history_after(m, period.from)?;
        let (start, end) = match &history {
            None => (m.tier.tier_id.clone(), m.tier.tier_id.clone()),
            Some(history) => {
                let (after, until) = (figures::end_of(period.from), figures::end_of(period.to));
                let during = history
                    .iter()
                    .filter(|e| e.change.at > after && e.change.at <= until);
                for e in during {
                    match e.change.kind {
                        ChangeKind::Promotion => moves.promotions += 1,
                        ChangeKind::Demotion => moves.demotions += 1,
                        ChangeKind::Manual | ChangeKind::Merged
                            if e.change.from_tier != e.change.to_tier =>
                        {
                            moves.manual_moves += 1;
                        }
                        ChangeKind::Manual
                        | ChangeKind::Initial
                        | ChangeKind::AtRisk
                        | ChangeKind::Retained
                        | ChangeKind::Closed
                        | ChangeKind::Reopened
                        | ChangeKind::Merged => {}
                    }
                }
                let current = || m.tier.tier_id.clone();
                (
                    tier_in(history, period.from).unwrap_or_else(current),
                    tier_in(history, period.to).unwrap_or_else(current),
                )
            }
        };
        let from = joined_before.then_some(start);
        *moves.cells.entry((from, end)).or_default() += 1;
        Ok(())
    }
}

fn merge_by_tier(total: &mut ByTier, part: ByTier) {
    for (tier, sums) in part {
        total.entry(tier).or_default().add(&sums);
    }
}
