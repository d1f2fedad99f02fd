//! The periodic sweep (`EvaluateTiers`): points due expire, and the tier
//! of every member something is due for is decided as of a time, in short
//! writer jobs so that live traffic interleaves. The store keeps each
//! member's due moment in an index, so a sweep reads the members time has
//! changed, not all of them. It runs under the rules in force now, after a staged
//! version whose time has come has gone live, like any other request.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{
    Program, ProgramError,
    input::{MemberId, as_of_time},
    write::number,
};
use crate::{
    domain::{apply, books::book_lapses, decide::ChangeKind, decide::HistoryEntry, due},
    rules::RuleSet,
    store::{Commit, Writer},
};

/// Most tier changes an [`EvaluationReport`] lists.
pub const MAX_REPORTED_CHANGES: usize = 1000;

/// Members evaluated per writer job in a sweep.
const EVALUATION_CHUNK: usize = 256;

/// The result of an evaluation sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationReport {
    /// Members evaluated.
    pub evaluated: u64,
    /// Members promoted.
    pub promoted: u64,
    /// Members demoted.
    pub demoted: u64,
    /// Members whose tier stayed.
    pub unchanged: u64,
    /// Points that expired (breakage).
    pub points_expired: i64,
    /// At most [`MAX_REPORTED_CHANGES`].
    pub changes: Vec<HistoryEntry>,
    /// True when more changes happened than `changes` lists.
    pub changes_truncated: bool,
}

impl EvaluationReport {
    fn merge(&mut self, other: EvaluationReport) {
        self.evaluated += other.evaluated;
        self.promoted += other.promoted;
        self.demoted += other.demoted;
        self.unchanged += other.unchanged;
        self.points_expired = self.points_expired.saturating_add(other.points_expired);
        self.changes_truncated |= other.changes_truncated;
        for entry in other.changes {
            if self.changes.len() < MAX_REPORTED_CHANGES {
                self.changes.push(entry);
            } else {
                self.changes_truncated = true;
            }
        }
    }
}

impl Program {
    /// Applies expiries, demotions and promotions as of `as_of` (default
    /// now) to the listed members, or when none are listed to every member
    /// something is due for by then ([`crate::domain::due`]: the others
    /// would not change). A dry run writes nothing.
    ///
    /// # Errors
    /// An unknown listed member, or a storage failure.
    pub async fn evaluate_tiers(
        &self,
        as_of: Option<DateTime<Utc>>,
        member_ids: &[MemberId],
        dry_run: bool,
    ) -> Result<EvaluationReport, ProgramError> {
        let now = self.now();
        let rules = self.rules_at(now).await?;
        let as_of = as_of_time("as_of", as_of.unwrap_or(now), now)?;
        // A listed id merged into another member stands for that member.
        let mut listed = Vec::with_capacity(member_ids.len());
        for id in member_ids {
            let Some((member, _)) = self.store.landing(id.as_str())? else {
                return Err(ProgramError::NotFound {
                    field: "member_ids",
                    message: format!("no member {:?}", id.as_str()),
                });
            };
            listed.push(member.member_id);
        }
        listed.sort_unstable();
        listed.dedup();
        let ids: Vec<String> = if member_ids.is_empty() {
            // In key order, not due order: neighbouring members share sled's
            // leaves, so a chunk reads and rewrites a few pages, not one
            // cold page per member.
            let mut due = self.store.due_member_ids(due::rules_id(&rules), as_of)?;
            due.sort_unstable();
            due
        } else {
            listed
        };
        let mut report = EvaluationReport::default();
        for chunk in ids.chunks(EVALUATION_CHUNK) {
            let chunk = chunk.to_vec();
            let rules = Arc::clone(&rules);
            let partial = self
                .store
                .write(move |writer| evaluate_chunk(&rules, writer, &chunk, as_of, dry_run))
                .await??;
            report.merge(partial);
        }
        Ok(report)
    }
}

/// On the writer thread: evaluates some members as of `as_of`.
fn evaluate_chunk(
    rules: &RuleSet,
    writer: &mut Writer,
    member_ids: &[String],
    as_of: DateTime<Utc>,
    dry_run: bool,
) -> Result<EvaluationReport, ProgramError> {
    let mut report = EvaluationReport::default();
    for member_id in member_ids {
        let Some(mut member) = writer.member(member_id)? else {
            continue;
        };
        // A sweep changes a member only by lapsing lots or moving its tier
        // state: comparing those spares copying its two years of days.
        let tier_before = member.tier.clone();
        let effect = apply::sweep(rules, &mut member, as_of);
        let changed = !effect.lapsed.is_empty() || member.tier != tier_before;
        report.evaluated += 1;
        report.points_expired = effect
            .lapsed
            .iter()
            .fold(report.points_expired, |sum, lapse| {
                sum.saturating_add(lapse.points)
            });
        match effect.changes.first().map(|c| c.kind) {
            Some(ChangeKind::Promotion) => report.promoted += 1,
            Some(ChangeKind::Demotion) => report.demoted += 1,
            _ => report.unchanged += 1,
        }
        let moved = !effect.changes.is_empty();
        let mut history = number(rules, writer, member_id, effect.changes)?;
        if dry_run {
            history.iter_mut().for_each(|entry| entry.seq = 0);
        } else {
            // The due moment moves on even when nothing else changed; the
            // writer writes it only if it did.
            let dues = vec![(
                member_id.clone(),
                due::next_due(rules, &member, as_of, moved),
            )];
            let mut receipts = Vec::new();
            book_lapses(writer, &effect.lapsed, &mut receipts)?;
            writer.commit(&Commit {
                members: if changed { vec![member] } else { Vec::new() },
                receipts,
                history: history.clone(),
                dues,
                ..Commit::default()
            })?;
        }
        report.merge(EvaluationReport {
            changes: history,
            ..EvaluationReport::default()
        });
    }
    Ok(report)
}
