//! What-if: how candidate rules would place the members stored today.
//!
//! Each member is evaluated under the candidate rules as of a time, exactly
//! as an `EvaluateTiers` run would right after the candidate went live
//! (promotions at once; demotions only as the candidate's grace period and
//! soft landing allow), on a copy: nothing is written. The result is the
//! migration matrix (current tier -> tier under the candidate) with a few
//! member ids per cell, and per tier the members and points before and
//! after. Every count is an integer and the totals add up exactly.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::scan;
use crate::{
    domain::{apply, member::MemberState},
    rules::RuleSet,
    store::{Store, StoreError},
};

/// Member ids kept per moved cell of the matrix.
pub const SAMPLES_PER_CELL: usize = 5;

/// One cell of the migration matrix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// Members that move from the row's tier to the column's.
    pub members: u64,
    /// Up to [`SAMPLES_PER_CELL`] of them (for moved cells only).
    pub sample: Vec<String>,
}

/// Members and outstanding points of one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TierTotals {
    /// Members in the tier.
    pub members: u64,
    /// Redeemable points they hold.
    pub points: i64,
}

/// The outcome of a simulation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Simulation {
    /// The candidate's version label.
    pub candidate_version: String,
    /// When the candidate was evaluated as of.
    pub as_of: DateTime<Utc>,
    /// Members evaluated.
    pub members: u64,
    /// (current tier, candidate tier) -> cell; in JSON a list of
    /// `{from, to, members, sample}`.
    #[serde(serialize_with = "cells")]
    pub matrix: BTreeMap<(String, String), Cell>,
    /// Per tier, today.
    pub before: BTreeMap<String, TierTotals>,
    /// Per tier, under the candidate.
    pub after: BTreeMap<String, TierTotals>,
    /// The candidate's scripts that ran over their time budget (each such
    /// run counted as failing).
    pub slow_scripts: Vec<SlowScript>,
}

/// A script of the rules that ran over its time budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlowScript {
    /// Where it is written (`tiers.gold.qualify`, `earning.bonus`).
    pub at: String,
    /// Runs stopped at the budget.
    pub runs: u64,
    /// The longest of them, microseconds.
    pub slowest_micros: u64,
    /// The budget, microseconds.
    pub budget_micros: u64,
}

impl SlowScript {
    /// The scripts of `rules` that have run over their budget so far.
    pub fn of(rules: &RuleSet) -> Vec<Self> {
        let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        rules
            .scripts()
            .into_iter()
            .filter_map(|(at, script)| {
                let overruns = script.overruns();
                (overruns.count > 0).then(|| Self {
                    at,
                    runs: overruns.count,
                    slowest_micros: micros(overruns.slowest),
                    budget_micros: micros(overruns.budget),
                })
            })
            .collect()
    }
}

impl std::fmt::Display for SlowScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} runs over its time budget of {} µs (slowest {} µs), each counted as failing",
            self.at, self.runs, self.budget_micros, self.slowest_micros
        )
    }
}

impl Simulation {
    /// An empty simulation of `candidate` as of `as_of`.
    pub fn new(candidate: &RuleSet, as_of: DateTime<Utc>) -> Self {
        Self {
            candidate_version: candidate.version.clone(),
            as_of,
            ..Self::default()
        }
    }

    /// Adds one stored member: a copy of it is swept under the candidate
    /// exactly as `EvaluateTiers` would (the stored member never changes).
    pub fn add(&mut self, candidate: &RuleSet, member: &MemberState) {
        let mut copy = member.clone();
        apply::sweep(candidate, &mut copy, self.as_of);
        let from = &member.tier.tier_id;
        let to = &copy.tier.tier_id;
        self.members += 1;
        add_to(&mut self.before, from, member.points_balance(self.as_of));
        add_to(&mut self.after, to, copy.points_balance(self.as_of));
        let cell = self.matrix.entry((from.clone(), to.clone())).or_default();
        cell.members += 1;
        if from != to && cell.sample.len() < SAMPLES_PER_CELL {
            cell.sample.push(member.member_id.clone());
        }
    }

    /// Adds the members counted in `other` (a simulation of the same
    /// candidate over other members); samples stay capped.
    pub fn merge(&mut self, other: Simulation) {
        self.members += other.members;
        for (key, cell) in other.matrix {
            let mine = self.matrix.entry(key).or_default();
            mine.members += cell.members;
            let room = SAMPLES_PER_CELL.saturating_sub(mine.sample.len());
            mine.sample.extend(cell.sample.into_iter().take(room));
        }
        for (mine, theirs) in [
            (&mut self.before, other.before),
            (&mut self.after, other.after),
        ] {
            for (tier, totals) in theirs {
                let entry = mine.entry(tier).or_default();
                entry.members += totals.members;
                entry.points = entry.points.saturating_add(totals.points);
            }
        }
    }

    /// Members whose tier would change.
    pub fn moved(&self) -> u64 {
        self.matrix
            .iter()
            .filter(|((from, to), _)| from != to)
            .map(|(_, cell)| cell.members)
            .sum()
    }

    /// `part` of the members as a percentage with one decimal, computed in
    /// integers ("12.5%").
    pub fn share(&self, part: u64) -> String {
        let tenths = (u128::from(part) * 1000 + u128::from(self.members) / 2)
            / u128::from(self.members.max(1));
        format!("{}.{}%", tenths / 10, tenths % 10)
    }

    /// A table for the terminal.
    pub fn to_table(&self, tiers: &[String]) -> String {
        let mut out = format!(
            "candidate {} as of {}: {} members, {} would change tier\n\nmigration (rows: today, columns: candidate)\n",
            self.candidate_version,
            self.as_of.to_rfc3339(),
            self.members,
            self.moved()
        );
        out.push_str(&format!("{:<12}", ""));
        tiers.iter().for_each(|t| out.push_str(&format!("{t:>12}")));
        out.push('\n');
        for from in tiers {
            out.push_str(&format!("{from:<12}"));
            for to in tiers {
                let n = self
                    .matrix
                    .get(&(from.clone(), to.clone()))
                    .map_or(0, |c| c.members);
                out.push_str(&format!("{n:>12}"));
            }
            out.push('\n');
        }
        out.push_str("\ntier          members today   share   points today | members after   share   points after\n");
        for tier in tiers {
            let before = self.before.get(tier).copied().unwrap_or_default();
            let after = self.after.get(tier).copied().unwrap_or_default();
            out.push_str(&format!(
                "{tier:<12}{:>15}{:>8}{:>15} |{:>14}{:>8}{:>15}\n",
                before.members,
                self.share(before.members),
                before.points,
                after.members,
                self.share(after.members),
                after.points
            ));
        }
        let moved: Vec<String> = self
            .matrix
            .iter()
            .filter(|((from, to), _)| from != to)
            .map(|((from, to), cell)| {
                format!(
                    "{from} -> {to}: {} (e.g. {})",
                    cell.members,
                    cell.sample.join(", ")
                )
            })
            .collect();
        if !moved.is_empty() {
            out.push_str("\nmoves\n");
            moved.iter().for_each(|m| out.push_str(&format!("  {m}\n")));
        }
        if !self.slow_scripts.is_empty() {
            out.push_str("\nscripts over their time budget (script_time_limit)\n");
            for slow in &self.slow_scripts {
                out.push_str(&format!("  {slow}\n"));
            }
        }
        out
    }

    /// The simulation as CSV, for a spreadsheet: the migration cells
    /// (`from,to,members,sample`), a blank line, then each tier's members
    /// and points before and after; tiers in ladder order (`tiers`).
    pub fn to_csv(&self, tiers: &[String]) -> String {
        let mut out = String::from("from,to,members,sample\n");
        for from in tiers {
            for to in tiers {
                if let Some(cell) = self.matrix.get(&(from.clone(), to.clone())) {
                    out.push_str(&format!(
                        "{from},{to},{},{}\n",
                        cell.members,
                        cell.sample.join(" ")
                    ));
                }
            }
        }
        out.push_str("\ntier,members_before,points_before,members_after,points_after\n");
        for tier in tiers {
            let before = self.before.get(tier).copied().unwrap_or_default();
            let after = self.after.get(tier).copied().unwrap_or_default();
            out.push_str(&format!(
                "{tier},{},{},{},{}\n",
                before.members, before.points, after.members, after.points
            ));
        }
        out
    }
}

/// How `candidate` rules would place every member of `store` as of
/// `as_of`: one read-only pass on all cores.
///
/// # Errors
/// On a storage failure or an undecodable record.
pub fn simulate(
    store: &Store,
    candidate: &RuleSet,
    as_of: DateTime<Utc>,
) -> Result<Simulation, StoreError> {
    let mut simulation = scan::fold_members(
        store,
        || Simulation::new(candidate, as_of),
        |simulation, member| simulation.add(candidate, &member),
        Simulation::merge,
    )?;
    simulation.slow_scripts = SlowScript::of(candidate);
    Ok(simulation)
}

fn cells<S: serde::Serializer>(
    matrix: &BTreeMap<(String, String), Cell>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Row<'a> {
        from: &'a str,
        to: &'a str,
        members: u64,
        sample: &'a [String],
    }
    serializer.collect_seq(matrix.iter().map(|((from, to), cell)| Row {
        from,
        to,
        members: cell.members,
        sample: &cell.sample,
    }))
}

fn add_to(totals: &mut BTreeMap<String, TierTotals>, tier: &str, points: i64) {
    let entry = totals.entry(tier.to_owned()).or_default();
    entry.members += 1;
    entry.points = entry.points.saturating_add(points);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::TimeZone;

    use super::*;

    #[test]
    fn moves_and_totals_add_up() {
        let rules = crate::rules::load(Path::new("rules/example.yaml")).expect("example");
        let mut cheaper = rules.clone();
        cheaper.version = "cheap".into();
        if let Some(crate::rules::Condition::Any(list)) = cheaper.tiers[1].qualify.as_mut() {
            list[0] = crate::rules::Condition::AtLeast {
                metric: crate::rules::Metric::QualifyingPoints,
                threshold: 100,
            };
        }
        let at = Utc
            .with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let mut simulation = Simulation::new(&cheaper, at);
        for (i, points) in [50, 150, 150, 900].into_iter().enumerate() {
            let mut member = MemberState::new(&format!("m{i}"), "bronze", at);
            member.record_purchase("t", 100, points, at, None);
            simulation.add(&cheaper, &member);
        }
        assert_eq!(simulation.members, 4);
        assert_eq!(simulation.moved(), 3);
        let cell = &simulation.matrix[&("bronze".to_owned(), "silver".to_owned())];
        assert_eq!(cell.members, 3);
        assert_eq!(cell.sample, ["m1", "m2", "m3"]);
        assert_eq!(
            simulation.after["silver"],
            TierTotals {
                members: 3,
                points: 1_200
            }
        );
        assert_eq!(simulation.before["bronze"].points, 1_250);
        assert_eq!(simulation.share(3), "75.0%");
        assert!(
            simulation
                .to_table(&["bronze".into(), "silver".into()])
                .contains("3 would change tier")
        );
        let ladder: Vec<String> = rules.tiers.iter().map(|t| t.id.clone()).collect();
        let csv = simulation.to_csv(&ladder);
        assert!(csv.contains("bronze,silver,3,m1 m2 m3"), "{csv}");
        let (cells, tiers) = csv.split_once("\n\n").expect("two tables");
        let firsts: Vec<&str> = cells
            .lines()
            .skip(1)
            .map(|l| &l[..l.find(',').unwrap_or(0)])
            .collect();
        let mut in_ladder = firsts.clone();
        in_ladder.sort_by_key(|t| ladder.iter().position(|l| l == t));
        assert_eq!(firsts, in_ladder, "rows in ladder order: {csv}");
        let rows: Vec<&str> = tiers.lines().collect();
        assert_eq!(
            rows[0],
            "tier,members_before,points_before,members_after,points_after"
        );
        assert!(rows[1].starts_with("bronze,4,1250,1,"), "{csv}");
        assert_eq!(
            rows.len(),
            1 + ladder.len(),
            "every tier, in ladder order: {csv}"
        );
        let json = serde_json::to_value(&simulation).expect("json");
        assert_eq!(json["matrix"][1]["to"], "silver");
    }
}
