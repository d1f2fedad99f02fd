//! The idempotent write protocol, run on the store's writer thread.
//!
//! For a request with a transaction id: a receipt under that id answers a
//! retry of the same request (same fingerprint, same member) with what the
//! request did, and refuses any other request; otherwise the request is
//! applied, its tier changes numbered, the purchases whose points lapsed on
//! the way told so, and member, receipts and history committed as one
//! batch. The writer thread hands back the member's state, and the answer
//! is rendered from it once the write is durable, off the writer thread
//! (the view may run scripts; the writer only commits). A retry's answer
//! is rendered when the retry comes (the member as it is then, the points
//! and tier changes the request made), since receipts keep facts, not
//! text.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Program, ProgramError, command::Keyed};
use crate::{
    domain::{
        apply::Effect,
        books,
        decide::{Change, HistoryEntry},
        due::{self, Due},
        fingerprint::Fingerprint,
        member::MemberState,
        merge::Alias,
        receipt::{OrderRedemptions, PurchaseTrack, Receipt, RequestKind},
        view::{self, MemberView},
    },
    rules::RuleSet,
    store::{Commit, Writer},
};

/// What a write request produced, as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The member right after the write (for a retry: as it is now).
    pub member: MemberView,
    /// Points earned (purchase, activity), taken back (return) or moved
    /// (adjust, redeem), as the request kind defines.
    pub points: i64,
    /// The tier changes the request caused, in order.
    pub tier_changes: Vec<HistoryEntry>,
    /// True when a cap held an activity's points back.
    pub capped: bool,
    /// Money a return refunded, minor units (0 for other writes).
    pub refunded_minor: i64,
    /// Redeemed points a return gave back (0 for other writes).
    pub points_recredited: i64,
}

/// What a write produced, and whether it was a retry.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The result (for a retry: the original request's effect).
    pub outcome: Outcome,
    /// True when the transaction id had been recorded before.
    pub duplicate: bool,
}

/// A write as the writer thread leaves it: the member's state, not yet
/// rendered. The answer's view (next tier, projection, scripts) is built
/// from it once the write is durable, off the writer thread, which then
/// spends its time on commits alone.
pub(super) struct Written {
    rules: Arc<RuleSet>,
    member: MemberState,
    now: DateTime<Utc>,
    points: i64,
    tier_changes: Vec<HistoryEntry>,
    capped: bool,
    refunded_minor: i64,
    points_recredited: i64,
    duplicate: bool,
}

impl Written {
    /// The answer: the view of the member, and what the request did.
    pub(super) fn rendered(self) -> Recorded {
        Recorded {
            outcome: Outcome {
                member: view::view(&self.rules, &self.member, self.now),
                points: self.points,
                tier_changes: self.tier_changes,
                capped: self.capped,
                refunded_minor: self.refunded_minor,
                points_recredited: self.points_recredited,
            },
            duplicate: self.duplicate,
        }
    }
}

/// A write's effect on the writer thread, before it is numbered and stored.
pub(super) struct Applied {
    /// The member after the event.
    pub member: MemberState,
    /// What the event did.
    pub effect: Effect,
    /// For a purchase: what returns will need.
    pub purchase: Option<PurchaseTrack>,
    /// Other receipts the event changed (a return's original purchase).
    pub other_receipts: Vec<(String, Receipt)>,
    /// Redemptions against orders the event changed, by member and order.
    pub orders: Vec<(String, String, OrderRedemptions)>,
    /// For a merge: what goes with the member merged away.
    pub merged_away: Option<MergedAway>,
}

/// What a merge writes besides the member that remains: the source's last
/// history entry, its record removed, its alias (and the aliases that led
/// to it, re-pointed), its redemptions against orders moved.
pub(super) struct MergedAway {
    /// The member merged away.
    pub member_id: String,
    /// Its MERGED entry, the last under its id.
    pub change: Change,
    /// Its alias, and those re-pointed from it to the member that remains.
    pub aliases: Vec<Alias>,
    /// Its redemptions against orders, removed (the member that remains
    /// has them now, in [`Applied::orders`]).
    pub removed_orders: Vec<(String, String)>,
}

impl Applied {
    /// `effect` on `member`, after the `enrolment` changes of a member that
    /// is new.
    pub fn new(member: MemberState, enrolment: Vec<Change>, mut effect: Effect) -> Self {
        effect.changes = enrolment.into_iter().chain(effect.changes).collect();
        Self {
            member,
            effect,
            purchase: None,
            other_receipts: Vec::new(),
            orders: Vec::new(),
            merged_away: None,
        }
    }
}

/// What identifies an idempotent write: its time, ids, fingerprint, and
/// who sent it.
pub(super) struct WriteKey {
    now: DateTime<Utc>,
    kind: RequestKind,
    transaction_id: String,
    member_id: String,
    fingerprint: Fingerprint,
    actor: String,
}

impl WriteKey {
    /// The key of `command`, sent by `actor`, received at `now`.
    pub fn of(command: &impl Keyed, actor: &str, now: DateTime<Utc>) -> Self {
        let facts = command.facts();
        Self {
            now,
            kind: facts.kind(),
            transaction_id: facts.transaction_id().to_owned(),
            member_id: facts.member_id().to_owned(),
            fingerprint: facts.fingerprint(),
            actor: actor.to_owned(),
        }
    }
}

/// An idempotent write, checked and ready to run on the writer thread:
/// it checks the transaction id, applies, numbers and commits.
/// Re-runnable: the PostgreSQL store runs it again after a conflict.
pub(super) type WriteJob = Box<dyn Fn(&mut Writer) -> Result<Written, ProgramError> + Send>;

/// The job of an idempotent write under `rules` (the version the request
/// was checked under).
pub(super) fn job<F>(rules: Arc<RuleSet>, key: WriteKey, apply: F) -> WriteJob
where
    F: Fn(&RuleSet, &Writer, Option<MemberState>) -> Result<Applied, ProgramError> + Send + 'static,
{
    Box::new(move |writer| record(&rules, writer, &key, &apply))
}

impl Program {
    /// Runs one write job, answered once durable.
    pub(super) async fn run(&self, job: WriteJob) -> Result<Recorded, ProgramError> {
        self.store.write(job).await?.map(Written::rendered)
    }

    /// Runs `jobs` one after another in one writer job (one round, one
    /// fsync), each with its own outcome, in order.
    pub(super) async fn run_all(&self, jobs: Vec<WriteJob>) -> Vec<Result<Recorded, ProgramError>> {
        let count = jobs.len();
        match self
            .store
            .write(move |writer| jobs.iter().map(|job| job(writer)).collect::<Vec<_>>())
            .await
        {
            Ok(outcomes) => outcomes
                .into_iter()
                .map(|written| written.map(Written::rendered))
                .collect(),
            Err(err) => {
                let message = err.to_string();
                (0..count)
                    .map(|_| {
                        Err(ProgramError::Store(crate::store::StoreError::Durability(
                            message.clone(),
                        )))
                    })
                    .collect()
            }
        }
    }

    /// Runs a change of one member's state under `rules` on the writer
    /// thread, answered once durable. Used by the writes that carry no
    /// transaction id.
    pub(super) async fn change_member<T, F>(
        &self,
        rules: Arc<RuleSet>,
        change: F,
    ) -> Result<T, ProgramError>
    where
        T: Send + 'static,
        F: Fn(&RuleSet, &mut Writer) -> Result<T, ProgramError> + Send + 'static,
    {
        self.store
            .write(move |writer| change(&rules, writer))
            .await?
    }
}

/// On the writer thread: answers a retry from its receipt, refuses a
/// reused id, or applies the write and commits it with its receipt.
fn record<F>(
    rules: &Arc<RuleSet>,
    writer: &mut Writer,
    key: &WriteKey,
    apply: &F,
) -> Result<Written, ProgramError>
where
    F: Fn(&RuleSet, &Writer, Option<MemberState>) -> Result<Applied, ProgramError>,
{
    let (receipt, existing) = writer.receipt_and_member(&key.transaction_id, &key.member_id)?;
    let (member_id, existing) = landing(writer, &key.member_id, existing)?;
    if let Some(receipt) = receipt {
        let same_member = receipt.member_id == key.member_id || receipt.member_id == member_id;
        if receipt.fingerprint == key.fingerprint && same_member {
            return answer_again(rules, writer, &receipt, key.now);
        }
        return Err(ProgramError::AlreadyExists(format!(
            "transaction_id: {:?} was already recorded with a different request",
            key.transaction_id
        )));
    }
    if let Some(member) = &existing {
        refuse_when_closed(member, key.kind)?;
    }
    let Applied {
        mut member,
        effect,
        purchase,
        other_receipts: mut receipts,
        orders,
        merged_away,
    } = apply(rules, writer, existing)?;
    books::settle(writer, &mut member, &effect.lapsed, key.now, &mut receipts)?;
    let moved = !effect.changes.is_empty();
    let source_changes = merged_away
        .as_ref()
        .map(|away| (away.member_id.clone(), away.change.clone()));
    let changes = source_changes
        .into_iter()
        .chain(effect.changes.into_iter().map(|c| (member_id.clone(), c)))
        .collect();
    let history = number_each(rules, writer, changes)?;
    receipts.push((
        key.transaction_id.clone(),
        Receipt {
            kind: key.kind,
            member_id: member_id.clone(),
            fingerprint: key.fingerprint,
            actor: key.actor.clone(),
            points: effect.points,
            capped: effect.capped,
            tier_changes: history.iter().map(|entry| entry.seq).collect(),
            purchase,
            refunded_minor: effect.refunded_minor,
            points_recredited: effect.points_recredited,
        },
    ));
    let due = if effect.undecided {
        Due::now(rules, key.now)
    } else {
        due::next_due(rules, &member, key.now, moved)
    };
    let (removed_members, aliases, removed_orders) = match merged_away {
        Some(away) => (vec![away.member_id], away.aliases, away.removed_orders),
        None => Default::default(),
    };
    let mut commit = Commit {
        dues: vec![(member_id.clone(), due)],
        members: vec![member],
        receipts,
        history,
        orders,
        removed_orders,
        removed_members,
        aliases,
    };
    writer.commit(&commit)?;
    // Taken back whole (the commit was stored from a borrow): one member,
    // put there above.
    let member = commit.members.swap_remove(0);
    tracing::info!(
        member_id,
        named = key.member_id,
        transaction_id = key.transaction_id,
        kind = key.kind.name(),
        actor = key.actor,
        rules_version = %rules.version,
        points = effect.points,
        tier = %member.tier.tier_id,
        "recorded"
    );
    Ok(Written {
        rules: Arc::clone(rules),
        member,
        now: key.now,
        points: effect.points,
        tier_changes: commit.history,
        capped: effect.capped,
        refunded_minor: effect.refunded_minor,
        points_recredited: effect.points_recredited,
        duplicate: false,
    })
}

/// Refuses a request of `kind` to `member` while its account is closed
/// (see [`RequestKind::needs_open_account`]), naming the member, when and
/// why it was closed.
fn refuse_when_closed(member: &MemberState, kind: RequestKind) -> Result<(), ProgramError> {
    match &member.closed {
        Some(closure) if kind.needs_open_account() => Err(ProgramError::precondition(
            "member_id",
            format!(
                "member_id: member {:?} is closed (since {}: {}); a {} needs ReopenMember first",
                member.member_id,
                closure.at,
                closure.reason,
                kind.name()
            ),
        )),
        _ => Ok(()),
    }
}

/// How many aliases a write follows to find its member: one, unless the
/// member an alias leads to is merged in turn while the write looks (on a
/// database, by another node).
const MAX_ALIAS_HOPS: usize = 8;

/// The member a write naming `member_id` lands on, as this job sees it:
/// `existing` (the member stored under that id), or, for an id merged into
/// another member, that member; `(member_id, None)` for a new member.
///
/// # Errors
/// On a storage failure, or aliases that lead nowhere.
pub(super) fn landing(
    writer: &Writer,
    member_id: &str,
    existing: Option<MemberState>,
) -> Result<(String, Option<MemberState>), ProgramError> {
    if existing.is_some() {
        return Ok((member_id.to_owned(), existing));
    }
    let mut id = member_id.to_owned();
    for _ in 0..MAX_ALIAS_HOPS {
        let Some(alias) = writer.alias(&id)? else {
            return Ok((id, None));
        };
        if let Some(member) = writer.member(&alias.into)? {
            return Ok((alias.into, Some(member)));
        }
        id = alias.into;
    }
    Err(ProgramError::Unavailable(format!(
        "member_id: {member_id:?} led through {MAX_ALIAS_HOPS} merges; try again"
    )))
}

/// The answer to a retry: the member as it is now, and what the original
/// request did.
fn answer_again(
    rules: &Arc<RuleSet>,
    writer: &Writer,
    receipt: &Receipt,
    now: DateTime<Utc>,
) -> Result<Written, ProgramError> {
    let stored = writer.member(&receipt.member_id)?;
    let (_, member) = landing(writer, &receipt.member_id, stored)?;
    let member = member.ok_or_else(|| ProgramError::unknown_member(&receipt.member_id))?;
    let tier_changes = receipt
        .tier_changes
        .iter()
        .filter_map(|seq| writer.history_entry(*seq).transpose())
        .collect::<Result<_, _>>()?;
    Ok(Written {
        rules: Arc::clone(rules),
        member,
        now,
        points: receipt.points,
        tier_changes,
        capped: receipt.capped,
        refunded_minor: receipt.refunded_minor,
        points_recredited: receipt.points_recredited,
        duplicate: true,
    })
}

/// Gives changes their seqs, in order, from the store.
///
/// # Errors
/// On a storage failure.
pub(super) fn number(
    rules: &RuleSet,
    writer: &Writer,
    member_id: &str,
    changes: Vec<Change>,
) -> Result<Vec<HistoryEntry>, crate::store::StoreError> {
    let owned = changes
        .into_iter()
        .map(|change| (member_id.to_owned(), change))
        .collect();
    number_each(rules, writer, owned)
}

/// Gives changes of several members their seqs, in order, from the store.
///
/// # Errors
/// On a storage failure.
fn number_each(
    rules: &RuleSet,
    writer: &Writer,
    changes: Vec<(String, Change)>,
) -> Result<Vec<HistoryEntry>, crate::store::StoreError> {
    let seqs = writer.seqs(changes.len())?;
    Ok(changes
        .into_iter()
        .zip(seqs)
        .map(|((member_id, change), seq)| HistoryEntry {
            seq,
            member_id,
            change,
            rules_version: rules.version.clone(),
        })
        .collect())
}
