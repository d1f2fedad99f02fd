//! Closing, reopening and merging accounts (`CloseMember`, `ReopenMember`,
//! `MergeMembers`): writes like any other, idempotent on their transaction
//! id, applied by [`crate::domain::account`] and [`crate::domain::merge`]
//! on the writer thread.

use chrono::{DateTime, Utc};

use super::{
    Program, ProgramError,
    command::{CloseCommand, MergeCommand, ReopenCommand},
    write::{Applied, MergedAway, Recorded, WriteKey, job},
};
use crate::{
    domain::{
        account::{self, AccountRefused},
        books::Books as _,
        member::MemberState,
        merge::{self, Alias, MergeRefused},
    },
    rules::RuleSet,
    store::Writer,
};

/// The refusal as the service answers it: the member's state is why.
fn refused(refusal: AccountRefused) -> ProgramError {
    ProgramError::precondition("member_id", format!("member_id: {refusal}"))
}

impl Program {
    /// Closes a member's account: it earns and redeems nothing until
    /// reopened, its points forfeited (breakage that day) or kept as the
    /// command says; a CLOSED entry in its history.
    ///
    /// # Errors
    /// An unknown member, an account closed already, a reused transaction
    /// id, or a storage failure.
    pub async fn close_member(
        &self,
        cmd: CloseCommand,
        actor: &str,
    ) -> Result<Recorded, ProgramError> {
        let job = self
            .member_job(cmd, actor, |_, _, mut member, cmd, now| {
                let reason = cmd.reason.as_str();
                let effect = account::close(&mut member, reason, cmd.forfeit_points, now)
                    .map_err(refused)?;
                tracing::info!(
                    member_id = %member.member_id,
                    reason,
                    points_forfeited = effect.points,
                    "account closed"
                );
                Ok(Applied::new(member, Vec::new(), effect))
            })
            .await?;
        self.run(job).await
    }

    /// Reopens a closed account within the rules' period: REOPENED, then
    /// the tier decided under the rules in force.
    ///
    /// # Errors
    /// An unknown member, an account that is open or was closed too long
    /// ago, a reused transaction id, or a storage failure.
    pub async fn reopen_member(
        &self,
        cmd: ReopenCommand,
        actor: &str,
    ) -> Result<Recorded, ProgramError> {
        let job = self
            .member_job(cmd, actor, |rules, _, mut member, cmd, now| {
                let reason = cmd.reason.as_str();
                let effect = account::reopen(rules, &mut member, reason, now).map_err(refused)?;
                tracing::info!(member_id = %member.member_id, reason, "account reopened");
                Ok(Applied::new(member, Vec::new(), effect))
            })
            .await?;
        self.run(job).await
    }

    /// Merges the source member into the target: everything it holds moves
    /// there, the target keeps the better tier and is decided on the
    /// combined figures, and the source becomes an alias of the target.
    ///
    /// # Errors
    /// An unknown member, a source merged already, a target that is an
    /// alias, a closed account, a reused transaction id, or a storage
    /// failure.
    pub async fn merge_members(
        &self,
        cmd: MergeCommand,
        actor: &str,
    ) -> Result<Recorded, ProgramError> {
        let now = self.now();
        let rules = self.rules_at(now).await?;
        let key = WriteKey::of(&cmd, actor, now);
        let job = job(rules, key, move |rules, writer, target| {
            let target = named_target(&cmd, target)?;
            let source = merge_source(writer, &cmd)?;
            merged(rules, writer, target, source, &cmd, now)
        });
        let mut recorded = self.run(job).await?;
        let member = &mut recorded.outcome.member;
        member.merged_ids = self.store.aliases_into(&member.member_id)?;
        Ok(recorded)
    }
}

/// The target as the write found it: it must exist under the id named,
/// not be an alias of another member.
fn named_target(
    cmd: &MergeCommand,
    found: Option<MemberState>,
) -> Result<MemberState, ProgramError> {
    let named = cmd.target_member_id.as_str();
    let target = found.ok_or_else(|| ProgramError::NotFound {
        field: "target_member_id",
        message: format!("no member {named:?}"),
    })?;
    if target.member_id != named {
        return Err(ProgramError::precondition(
            "target_member_id",
            format!(
                "target_member_id: {named:?} was merged into {:?}; merge into {:?} instead",
                target.member_id, target.member_id
            ),
        ));
    }
    Ok(target)
}

/// The source as stored: it must exist and not be merged already.
fn merge_source(writer: &Writer, cmd: &MergeCommand) -> Result<MemberState, ProgramError> {
    let named = cmd.source_member_id.as_str();
    if let Some(source) = writer.member(named)? {
        return Ok(source);
    }
    match writer.alias(named)? {
        Some(alias) => Err(ProgramError::precondition(
            "source_member_id",
            format!(
                "source_member_id: {named:?} was merged into {:?} already (on {}: {})",
                alias.into, alias.at, alias.reason
            ),
        )),
        None => Err(ProgramError::NotFound {
            field: "source_member_id",
            message: format!("no member {named:?}"),
        }),
    }
}

/// The merge of `source` into `target`, with what goes with the source:
/// its redemptions against orders (added to the target's), its alias and
/// the aliases that led to it, re-pointed to the target.
fn merged(
    rules: &RuleSet,
    writer: &Writer,
    mut target: MemberState,
    source: MemberState,
    cmd: &MergeCommand,
    now: DateTime<Utc>,
) -> Result<Applied, ProgramError> {
    let source_id = source.member_id.clone();
    let merge::Merged {
        effect,
        source_change,
        alias,
    } = merge::merge(rules, &mut target, source, cmd.reason.as_str(), now)
        .map_err(refused_merge)?;
    let mut orders = Vec::new();
    let mut removed_orders = Vec::new();
    for (order_id, redemptions) in writer.orders_of(&source_id)? {
        let mut combined = writer
            .order(&target.member_id, &order_id)?
            .unwrap_or_default();
        combined.add(redemptions);
        orders.push((target.member_id.clone(), order_id.clone(), combined));
        removed_orders.push((source_id.clone(), order_id));
    }
    let followers = writer.aliases_into(&source_id)?.into_iter().map(|a| Alias {
        into: target.member_id.clone(),
        ..a
    });
    let aliases = std::iter::once(alias).chain(followers).collect();
    tracing::info!(
        member_id = %target.member_id,
        source_member_id = %source_id,
        reason = cmd.reason.as_str(),
        "members merged"
    );
    Ok(Applied {
        orders,
        merged_away: Some(MergedAway {
            member_id: source_id,
            change: source_change,
            aliases,
            removed_orders,
        }),
        ..Applied::new(target, Vec::new(), effect)
    })
}

/// A merge the members' state refuses.
fn refused_merge(refusal: MergeRefused) -> ProgramError {
    match refusal {
        MergeRefused::Itself { .. } => {
            ProgramError::invalid("target_member_id", refusal.to_string())
        }
        MergeRefused::Closed { .. } => {
            ProgramError::precondition("member_id", format!("member_id: {refusal}"))
        }
    }
}
