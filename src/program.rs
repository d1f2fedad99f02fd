//! The loyalty program: commands in, decisions made, state durable.
//!
//! This is where the pieces meet: a command is validated, the member is read
//! on the store's single writer thread, the ledger applies the event, the
//! engine decides the tier, and one atomic commit stores the member, the
//! idempotency record and the history entries. Only after the commit is on
//! disk ([`Store::write`] returns) does the caller get its answer.
//!
//! Idempotency: every write carries a transaction id. Its record keeps the
//! request's fingerprint and the outcome; a retry with the same payload gets
//! the stored outcome back (marked duplicate) and changes nothing, and a
//! different payload under a used id is refused.
//!
//! Concurrency: every write runs as a job on the store's single writer
//! thread (in-memory work and a sled batch: microseconds); concurrent
//! requests share one fsync per round, and async workers never block.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::{
    engine::{self, Change, ChangeKind, OverrideMode, Subject, TierOverride},
    events,
    ledger::{HistoryEntry, MemberState, MemberView, Outcome, PurchaseTrack, TxnRecord},
    live_rules::{LiveRules, ReloadError, ReloadFailure},
    rules::RuleSet,
    simulate::Simulation,
    store::{Commit, RawMember, RulesVersion, Store, StoreError, Writer},
};

/// Where the time comes from: the system clock in production, a fixed or
/// stepped one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Limits on what clients may send. Defaults documented on each field.
#[derive(Debug, Clone, Copy)]
pub struct InputLimits {
    /// Longest member or transaction id, in bytes (128).
    pub max_id_bytes: usize,
    /// Largest amount or points in one request (10^12).
    pub max_amount: i64,
    /// How far in the future `occurred_at` may lie (5 minutes).
    pub max_clock_skew: TimeDelta,
    /// Tags per purchase (32), attributes per member (64).
    pub max_tags: usize,
    /// Attributes per member (64).
    pub max_attributes: usize,
    /// Longest tag, channel, store id, attribute key or value, reason (1024).
    pub max_text_bytes: usize,
}

/// The limits tierd enforces.
pub const LIMITS: InputLimits = InputLimits {
    max_id_bytes: 128,
    max_amount: 1_000_000_000_000,
    max_clock_skew: TimeDelta::minutes(5),
    max_tags: 32,
    max_attributes: 64,
    max_text_bytes: 1024,
};

/// Most tier changes an [`EvaluationReport`] lists.
pub const MAX_REPORTED_CHANGES: usize = 1000;

/// Why a command was refused. Each variant maps to one gRPC status code.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The request is malformed; `field` names what is wrong.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The request field at fault, as named in the proto.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    #[error("{0}")]
    /// A member or original transaction that does not exist.
    NotFound(String),
    /// A transaction id reused with a different payload.
    #[error("{0}")]
    AlreadyExists(String),
    /// Well-formed, but the member's state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error(transparent)]
    /// A storage failure: the request was not recorded.
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> ProgramError {
    ProgramError::InvalidArgument {
        field,
        message: message.into(),
    }
}

/// A purchase from a till or web shop.
#[derive(Debug, Clone, Serialize)]
pub struct Purchase {
    /// The member buying; created on a first purchase.
    pub member_id: String,
    /// The idempotency key.
    pub transaction_id: String,
    /// Amount paid, minor units, > 0.
    pub amount_minor: i64,
    /// Must be the program currency.
    pub currency: String,
    /// When the purchase happened; required.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Channel ("pos", "web", "app").
    pub channel: String,
    /// Store id.
    pub store_id: String,
    /// Purchase tags.
    pub tags: Vec<String>,
    /// The API key name that sent it, kept for the audit trail; not part
    /// of the fingerprint, so a retry through another key still matches.
    #[serde(skip)]
    pub actor: String,
}

/// A (partial) return of an earlier purchase.
#[derive(Debug, Clone, Serialize)]
pub struct Return {
    /// The member returning goods.
    pub member_id: String,
    /// The return's own idempotency key.
    pub transaction_id: String,
    /// The purchase being returned.
    pub original_transaction_id: String,
    /// Amount refunded, minor units.
    pub amount_minor: i64,
    /// When the return happened; required.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Empty, or the program currency.
    pub currency: String,
    /// The API key name that sent it, kept for the audit trail; not part
    /// of the fingerprint, so a retry through another key still matches.
    #[serde(skip)]
    pub actor: String,
}

/// An activity that is not a purchase.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityEvent {
    /// The member; created if new.
    pub member_id: String,
    /// The idempotency key.
    pub transaction_id: String,
    /// A kind the rules list under `activities`.
    pub kind: String,
    /// When it happened; required.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Free details, part of the fingerprint.
    pub attributes: BTreeMap<String, String>,
    /// The API key name that sent it (audit trail; not fingerprinted).
    #[serde(skip)]
    pub actor: String,
}

/// A staff adjustment of points.
#[derive(Debug, Clone, Serialize)]
pub struct Adjustment {
    /// The member adjusted.
    pub member_id: String,
    /// The idempotency key.
    pub transaction_id: String,
    /// Signed, non-zero.
    pub points: i64,
    /// Why, required.
    pub reason: String,
    /// The API key name that sent it, kept for the audit trail; not part
    /// of the fingerprint, so a retry through another key still matches.
    #[serde(skip)]
    pub actor: String,
}

/// A redemption of points.
#[derive(Debug, Clone, Serialize)]
pub struct Redemption {
    /// The member redeeming.
    pub member_id: String,
    /// The idempotency key.
    pub transaction_id: String,
    /// Points to spend, > 0.
    pub points: i64,
    /// The API key name that sent it, kept for the audit trail; not part
    /// of the fingerprint, so a retry through another key still matches.
    #[serde(skip)]
    pub actor: String,
}

/// A manual tier placement; `mode: None` clears the override in force.
#[derive(Debug, Clone)]
pub struct OverrideCommand {
    /// The member placed.
    pub member_id: String,
    /// The tier, for a floor or lock.
    pub tier_id: String,
    /// Floor, lock, or `None` to clear.
    pub mode: Option<OverrideMode>,
    /// When it lapses; `None`: until cleared.
    pub until: Option<DateTime<Utc>>,
    /// Why, required.
    pub reason: String,
}

/// Creation or update of a member's descriptive attributes.
#[derive(Debug, Clone)]
pub struct Upsert {
    /// The member created or updated.
    pub member_id: String,
    /// Merged in; an empty value removes the key.
    pub attributes: BTreeMap<String, String>,
    /// Enrolment time; kept when `None`.
    pub enrolled_at: Option<DateTime<Utc>>,
}

/// What a write produced, and whether it was a retry.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The result (the original one for a retry).
    pub outcome: Outcome,
    /// True when the transaction id had been recorded before.
    pub duplicate: bool,
}

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

/// The running program: rules, store and clock.
pub struct Program {
    store: Store,
    rules: LiveRules,
    clock: Clock,
}

/// A write's effect before it is numbered and stored.
struct Applied {
    member: MemberState,
    points: i64,
    changes: Vec<Change>,
    purchase: Option<PurchaseTrack>,
    other_txns: Vec<(String, TxnRecord)>,
    capped: bool,
}

impl Applied {
    /// An effect on the member alone (no purchase tracked, no other record).
    fn on_member(
        member: MemberState,
        points: i64,
        changes: impl IntoIterator<Item = Change>,
    ) -> Self {
        Self {
            member,
            points,
            changes: changes.into_iter().collect(),
            purchase: None,
            other_txns: Vec::new(),
            capped: false,
        }
    }
}

impl Program {
    /// A program over an opened store, with rules given in memory.
    pub fn new(store: Store, rules: Arc<RuleSet>, clock: Clock) -> Self {
        let now = clock();
        Self {
            store,
            rules: LiveRules::new(rules, None, now),
            clock,
        }
    }

    /// The same program, reloading its rules from `file` on request.
    pub fn with_rules_file(self, file: PathBuf) -> Self {
        let now = (self.clock)();
        Self {
            rules: LiveRules::new(self.rules.current(), Some(file), now),
            ..self
        }
    }

    /// The rules in force: hold the `Arc` for a whole request, so that it
    /// runs under one version even if a reload happens meanwhile.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.current()
    }

    /// Records the running rules version as live (at start-up).
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn go_live(&self) -> Result<RulesVersion, ProgramError> {
        Ok(self.rules.go_live(&self.store, (self.clock)()).await?)
    }

    /// The rules in force at `now`, after putting a staged version live if
    /// its time has come.
    async fn rules_at(&self, now: DateTime<Utc>) -> Result<Arc<RuleSet>, ProgramError> {
        self.rules.activate_due(&self.store, now).await?;
        Ok(self.rules.current())
    }

    /// Re-reads the rules file; see [`LiveRules::reload`].
    ///
    /// # Errors
    /// `FailedPrecondition` with the diagnostics when the file is invalid
    /// (the running rules stay), or a storage failure.
    pub async fn reload_rules(&self) -> Result<(RulesVersion, bool), ProgramError> {
        self.rules
            .reload(&self.store, (self.clock)())
            .await
            .map_err(|err| match err {
                ReloadError::Store(inner) => ProgramError::Store(inner),
                other => ProgramError::FailedPrecondition(other.to_string()),
            })
    }

    /// The version in force, the staged one if any, and the last failed
    /// reload, if any.
    pub fn rules_status(&self) -> (RulesVersion, Option<RulesVersion>, Option<ReloadFailure>) {
        (
            self.rules.active(),
            self.rules.scheduled(),
            self.rules.last_failure(),
        )
    }

    /// Every rules version that went live, oldest first.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn rules_versions(&self) -> Result<Vec<RulesVersion>, ProgramError> {
        Ok(self.store.rules_versions()?)
    }

    /// Records a purchase; creates the member on its first purchase.
    ///
    /// # Errors
    /// Invalid fields, a reused transaction id, or a storage failure.
    pub async fn record_purchase(&self, cmd: Purchase) -> Result<Recorded, ProgramError> {
        let now = (self.clock)();
        let rules = self.rules_at(now).await?;
        let key = WriteKey::of(now, &cmd)?;
        validate_amount("amount_minor", cmd.amount_minor)?;
        validate_currency(&rules, &cmd.currency, false)?;
        let occurred_at = validate_occurred_at(cmd.occurred_at, now)?;
        validate_text("channel", &cmd.channel)?;
        validate_text("store_id", &cmd.store_id)?;
        if cmd.tags.len() > LIMITS.max_tags {
            return Err(invalid("tags", format!("at most {} tags", LIMITS.max_tags)));
        }
        for tag in &cmd.tags {
            validate_text("tags", tag)?;
        }
        self.write(key, move |rules, _, existing| {
            let (mut member, mut changes) =
                events::member_or_new(rules, existing, &cmd.member_id, occurred_at.min(now));
            let purchase = events::Purchase {
                transaction_id: &cmd.transaction_id,
                amount_minor: cmd.amount_minor,
                channel: &cmd.channel,
                store_id: &cmd.store_id,
                tags: &cmd.tags,
                occurred_at,
            };
            let (track, change) = events::purchase(rules, &mut member, &purchase, now);
            changes.extend(change);
            Ok(Applied {
                purchase: Some(track),
                ..Applied::on_member(member, track.points, changes)
            })
        })
        .await
    }

    /// Records an activity: points by its kind within the caps (0 when a
    /// cap is reached: `points` of the outcome is 0), engagement always.
    ///
    /// # Errors
    /// Invalid fields or an unknown kind, a reused transaction id, or a
    /// storage failure.
    pub async fn record_activity(&self, cmd: ActivityEvent) -> Result<Recorded, ProgramError> {
        let now = (self.clock)();
        let rules = self.rules_at(now).await?;
        let key = WriteKey::of(now, &cmd)?;
        let occurred_at = validate_occurred_at(cmd.occurred_at, now)?;
        validate_attributes(&cmd.attributes)?;
        let Some(activity) = rules.activities.get(&cmd.kind).cloned() else {
            let known: Vec<&str> = rules.activities.keys().map(String::as_str).collect();
            return Err(invalid(
                "kind",
                format!(
                    "unknown activity {:?}; the rules know {}{}",
                    cmd.kind,
                    known.join(", "),
                    crate::rules::did_you_mean(&cmd.kind, &known)
                ),
            ));
        };
        self.write(key, move |rules, _, existing| {
            let (mut member, mut changes) =
                events::member_or_new(rules, existing, &cmd.member_id, occurred_at.min(now));
            let facts = events::ActivityFacts {
                transaction_id: &cmd.transaction_id,
                kind: &cmd.kind,
                details: &cmd.attributes,
                occurred_at,
            };
            let outcome = events::activity(rules, &mut member, &activity, &facts, now);
            changes.extend(outcome.change);
            Ok(Applied {
                capped: outcome.capped,
                ..Applied::on_member(member, outcome.points, changes)
            })
        })
        .await
    }

    /// Records a return against an earlier purchase of the same member.
    ///
    /// # Errors
    /// Invalid fields, an unknown original (`NotFound`), an amount above
    /// what remains unreturned, a reused transaction id, or a storage failure.
    pub async fn record_return(&self, cmd: Return) -> Result<Recorded, ProgramError> {
        let now = (self.clock)();
        let rules = self.rules_at(now).await?;
        let key = WriteKey::of(now, &cmd)?;
        validate_id("original_transaction_id", &cmd.original_transaction_id)?;
        validate_amount("amount_minor", cmd.amount_minor)?;
        validate_currency(&rules, &cmd.currency, true)?;
        validate_occurred_at(cmd.occurred_at, now)?;
        self.write(key, move |rules, writer, existing| {
            let not_found = || {
                ProgramError::NotFound(format!(
                    "original_transaction_id: no purchase {:?} of member {:?}",
                    cmd.original_transaction_id, cmd.member_id
                ))
            };
            let mut original = writer
                .txn(&cmd.original_transaction_id)?
                .ok_or_else(not_found)?;
            let mut track = original
                .purchase
                .filter(|_| original.member_id == cmd.member_id)
                .ok_or_else(not_found)?;
            let mut member = existing.ok_or_else(not_found)?;
            let (points, change) = events::return_purchase(
                rules,
                &mut member,
                &cmd.original_transaction_id,
                &mut track,
                cmd.amount_minor,
                now,
            )
            .map_err(|too_large| {
                invalid(
                    "amount_minor",
                    format!(
                        "{} exceeds what is left unreturned of {:?}: {}",
                        cmd.amount_minor, cmd.original_transaction_id, too_large.returnable_minor
                    ),
                )
            })?;
            original.purchase = Some(track);
            Ok(Applied {
                other_txns: vec![(cmd.original_transaction_id.clone(), original)],
                ..Applied::on_member(member, points, change)
            })
        })
        .await
    }

    /// Adjusts points by hand (goodwill or correction).
    ///
    /// # Errors
    /// Invalid fields, an unknown member, a reused transaction id, or a
    /// storage failure.
    pub async fn adjust_points(&self, cmd: Adjustment) -> Result<Recorded, ProgramError> {
        let now = (self.clock)();
        let key = WriteKey::of(now, &cmd)?;
        if cmd.points == 0 {
            return Err(invalid("points", "must not be 0"));
        }
        validate_amount("points", cmd.points.saturating_abs())?;
        if cmd.reason.trim().is_empty() {
            return Err(invalid(
                "reason",
                "required: say why the points are adjusted",
            ));
        }
        validate_text("reason", &cmd.reason)?;
        self.write(key, move |rules, _, existing| {
            let mut member = existing.ok_or_else(|| unknown_member(&cmd.member_id))?;
            let change = events::adjust(rules, &mut member, &cmd.transaction_id, cmd.points, now);
            tracing::info!(member_id = %cmd.member_id, points = cmd.points, reason = %cmd.reason, "points adjusted");
            Ok(Applied::on_member(member, cmd.points, change))
        })
        .await
    }

    /// Redeems points, oldest first; never below zero.
    ///
    /// # Errors
    /// Invalid fields, an unknown member, a balance too small
    /// (`FailedPrecondition`), a reused transaction id, or a storage failure.
    pub async fn redeem_points(&self, cmd: Redemption) -> Result<Recorded, ProgramError> {
        let now = (self.clock)();
        let key = WriteKey::of(now, &cmd)?;
        if cmd.points <= 0 {
            return Err(invalid("points", "must be greater than 0"));
        }
        validate_amount("points", cmd.points)?;
        self.write(key, move |rules, _, existing| {
            let mut member = existing.ok_or_else(|| unknown_member(&cmd.member_id))?;
            let change = events::redeem(rules, &mut member, cmd.points, now).map_err(|e| {
                ProgramError::FailedPrecondition(format!(
                    "points: cannot redeem {} points, the balance is {}",
                    cmd.points, e.balance
                ))
            })?;
            Ok(Applied::on_member(member, cmd.points, change))
        })
        .await
    }

    /// The shared path of idempotent writes: on the writer thread, check the
    /// transaction id, apply, number, commit; answered once durable (also a
    /// duplicate, whose original may have been committed in the same round).
    async fn write<F>(&self, key: WriteKey, apply: F) -> Result<Recorded, ProgramError>
    where
        F: FnOnce(&RuleSet, &Writer, Option<MemberState>) -> Result<Applied, ProgramError>
            + Send
            + 'static,
    {
        let rules = self.rules_at(key.now).await?;
        self.store
            .write(move |writer| record(&rules, writer, key, apply))
            .await?
    }

    /// Runs a change of one member's state on the writer thread, answered
    /// once durable. Used by the writes that carry no transaction id.
    async fn change_member<T, F>(&self, now: DateTime<Utc>, change: F) -> Result<T, ProgramError>
    where
        T: Send + 'static,
        F: FnOnce(&RuleSet, &mut Writer) -> Result<T, ProgramError> + Send + 'static,
    {
        let rules = self.rules_at(now).await?;
        self.store
            .write(move |writer| change(&rules, writer))
            .await?
    }

    /// A member as of now.
    ///
    /// # Errors
    /// `NotFound` for an unknown member, or a storage failure.
    pub fn member(&self, member_id: &str) -> Result<MemberView, ProgramError> {
        validate_id("member_id", member_id)?;
        let member = self
            .store
            .member(member_id)?
            .ok_or_else(|| unknown_member(member_id))?;
        Ok(view(&self.rules(), &member, (self.clock)()))
    }

    /// A page of a member's tier history after seq `after`.
    ///
    /// # Errors
    /// `NotFound` for an unknown member, or a storage failure.
    pub fn history(
        &self,
        member_id: &str,
        after: u64,
        page_size: usize,
    ) -> Result<(Vec<HistoryEntry>, bool), ProgramError> {
        validate_id("member_id", member_id)?;
        if self.store.member(member_id)?.is_none() {
            return Err(unknown_member(member_id));
        }
        Ok(self.store.history(member_id, after, page_size)?)
    }

    /// Sets or clears a manual tier override; always recorded as MANUAL.
    ///
    /// # Errors
    /// Invalid fields (unknown tier, past `until`, no reason), an unknown
    /// member, or a storage failure.
    pub async fn set_override(&self, cmd: OverrideCommand) -> Result<Recorded, ProgramError> {
        let now = (self.clock)();
        validate_id("member_id", &cmd.member_id)?;
        if cmd.reason.trim().is_empty() {
            return Err(invalid(
                "reason",
                "required: say why the tier is set by hand",
            ));
        }
        validate_text("reason", &cmd.reason)?;
        let rules = self.rules_at(now).await?;
        if cmd.mode.is_some() && rules.tier_index(&cmd.tier_id).is_none() {
            let known: Vec<&str> = rules.tiers.iter().map(|t| t.id.as_str()).collect();
            return Err(invalid(
                "tier_id",
                format!(
                    "unknown tier {:?}; the tiers are {}",
                    cmd.tier_id,
                    known.join(", ")
                ),
            ));
        }
        if cmd.until.is_some_and(|until| until <= now) {
            return Err(invalid("until", "must lie in the future"));
        }
        self.change_member(now, move |rules, writer| {
            let mut member = writer
                .member(&cmd.member_id)?
                .ok_or_else(|| unknown_member(&cmd.member_id))?;
            let mut changes = vec![apply_override(rules, &mut member, &cmd, now)];
            changes.extend(events::evaluate(rules, &mut member, now));
            let history = number(rules, writer, &cmd.member_id, changes);
            let outcome = Outcome {
                member: view(rules, &member, now),
                points: 0,
                tier_changes: history.clone(),
                capped: false,
            };
            writer.commit(&Commit {
                members: vec![member],
                txns: Vec::new(),
                history,
            })?;
            Ok(Recorded {
                outcome,
                duplicate: false,
            })
        })
        .await
    }

    /// Creates a member or merges its attributes.
    ///
    /// # Errors
    /// Invalid fields, or a storage failure.
    pub async fn upsert_member(&self, cmd: Upsert) -> Result<MemberView, ProgramError> {
        let now = (self.clock)();
        validate_id("member_id", &cmd.member_id)?;
        validate_attributes(&cmd.attributes)?;
        if let Some(at) = cmd.enrolled_at {
            validate_occurred_at(Some(at), now)
                .map_err(|_| invalid("enrolled_at", "must not lie in the future"))?;
        }
        self.change_member(now, move |rules, writer| {
            let existing = writer.member(&cmd.member_id)?;
            let enrolled_at = cmd.enrolled_at.unwrap_or(now);
            let (mut member, mut changes) =
                events::member_or_new(rules, existing, &cmd.member_id, enrolled_at);
            member.enrolled_at = cmd.enrolled_at.unwrap_or(member.enrolled_at);
            for (key, value) in cmd.attributes {
                if value.is_empty() {
                    member.attributes.remove(&key);
                } else {
                    member.attributes.insert(key, value);
                }
            }
            if member.attributes.len() > LIMITS.max_attributes {
                return Err(invalid(
                    "attributes",
                    format!("a member has at most {} attributes", LIMITS.max_attributes),
                ));
            }
            changes.extend(events::evaluate(rules, &mut member, now));
            let history = number(rules, writer, &cmd.member_id, changes);
            let answer = view(rules, &member, now);
            writer.commit(&Commit {
                members: vec![member],
                txns: Vec::new(),
                history,
            })?;
            Ok(answer)
        })
        .await
    }

    /// How `candidate` rules would place every stored member as of
    /// `as_of` (default now). Reads only: nothing is written. One thread
    /// walks the store; the members are decoded and evaluated on all cores.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn simulate(
        &self,
        candidate: &RuleSet,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Simulation, ProgramError> {
        let as_of = as_of.unwrap_or_else(|| (self.clock)());
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let outcome = std::thread::scope(|scope| {
            let mut queues = Vec::with_capacity(workers);
            let mut handles = Vec::with_capacity(workers);
            for _ in 0..workers {
                let (queue, batches) = std::sync::mpsc::sync_channel::<Vec<RawMember>>(4);
                queues.push(queue);
                handles.push(scope.spawn(move || -> Result<Simulation, StoreError> {
                    let mut part = Simulation::new(candidate, as_of);
                    for batch in batches {
                        for raw in batch {
                            part.add(candidate, &raw.decode()?);
                        }
                    }
                    Ok(part)
                }));
            }
            let mut batch = Vec::with_capacity(SIMULATION_BATCH);
            let mut next = 0;
            let mut walked = Ok(());
            for raw in self.store.raw_members() {
                match raw {
                    Ok(raw) => batch.push(raw),
                    Err(err) => {
                        walked = Err(err);
                        break;
                    }
                }
                if batch.len() == SIMULATION_BATCH {
                    // A worker that stopped has an error to report below.
                    let _ = queues[next % workers].send(std::mem::take(&mut batch));
                    next += 1;
                }
            }
            let _ = queues[next % workers].send(batch);
            drop(queues);
            let mut total = Simulation::new(candidate, as_of);
            for handle in handles {
                // A worker panic is a bug, not bad input: let it surface as one.
                let part = handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                total.merge(part);
            }
            walked.map(|()| total)
        });
        Ok(outcome?)
    }

    /// A consistent backup of all data (see [`Writer::snapshot`]).
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn backup(&self) -> Result<Vec<u8>, ProgramError> {
        Ok(self.store.write(|writer| writer.snapshot()).await??)
    }

    /// Applies expiries, demotions and promotions as of `as_of` to the
    /// listed members (all when empty). A dry run writes nothing.
    ///
    /// # Errors
    /// An invalid or unknown listed member, or a storage failure.
    pub async fn evaluate_tiers(
        &self,
        as_of: Option<DateTime<Utc>>,
        member_ids: &[String],
        dry_run: bool,
    ) -> Result<EvaluationReport, ProgramError> {
        let as_of = as_of.unwrap_or_else(|| (self.clock)());
        for id in member_ids {
            validate_id("member_ids", id)?;
            if self.store.member(id)?.is_none() {
                return Err(unknown_member(id));
            }
        }
        let ids: Vec<String> = if member_ids.is_empty() {
            self.store.member_ids().collect::<Result<_, _>>()?
        } else {
            member_ids.to_vec()
        };
        let mut report = EvaluationReport::default();
        // Chunks keep each writer job short, so live traffic interleaves.
        for chunk in ids.chunks(EVALUATION_CHUNK) {
            let chunk = chunk.to_vec();
            let mut partial = self
                .store
                .write({
                    let rules = self.rules();
                    move |writer| evaluate_chunk(&rules, writer, &chunk, as_of, dry_run)
                })
                .await??;
            report.merge(&mut partial);
        }
        Ok(report)
    }
}

/// Members handed to a simulation worker at a time.
const SIMULATION_BATCH: usize = 1024;

/// Members evaluated per writer job in a sweep.
const EVALUATION_CHUNK: usize = 256;

impl EvaluationReport {
    fn merge(&mut self, other: &mut EvaluationReport) {
        self.evaluated += other.evaluated;
        self.promoted += other.promoted;
        self.demoted += other.demoted;
        self.unchanged += other.unchanged;
        self.points_expired += other.points_expired;
        self.changes_truncated |= other.changes_truncated;
        for entry in other.changes.drain(..) {
            if self.changes.len() < MAX_REPORTED_CHANGES {
                self.changes.push(entry);
            } else {
                self.changes_truncated = true;
            }
        }
    }
}

/// What identifies an idempotent write: its time, ids and fingerprint.
struct WriteKey {
    now: DateTime<Utc>,
    transaction_id: String,
    member_id: String,
    actor: String,
    fingerprint: Vec<u8>,
}

/// A command that carries a transaction id: what makes it idempotent.
trait Keyed: Serialize {
    /// Distinguishes kinds in the fingerprint, so a purchase and a return
    /// with the same fields never look alike.
    const KIND: &'static str;
    fn member_id(&self) -> &str;
    fn transaction_id(&self) -> &str;
    fn actor(&self) -> &str;
}

macro_rules! keyed {
    ($($command:ty => $kind:literal),* $(,)?) => {$(
        impl Keyed for $command {
            const KIND: &'static str = $kind;
            fn member_id(&self) -> &str {
                &self.member_id
            }
            fn transaction_id(&self) -> &str {
                &self.transaction_id
            }
            fn actor(&self) -> &str {
                &self.actor
            }
        }
    )*};
}

keyed!(
    Purchase => "purchase",
    Return => "return",
    Adjustment => "adjust",
    Redemption => "redeem",
    ActivityEvent => "activity",
);

impl WriteKey {
    /// Checks the command's ids and takes its fingerprint: the request's
    /// canonical encoding, which a retry must match exactly.
    fn of<C: Keyed>(now: DateTime<Utc>, command: &C) -> Result<Self, ProgramError> {
        validate_id("member_id", command.member_id())?;
        validate_id("transaction_id", command.transaction_id())?;
        let mut fingerprint = C::KIND.as_bytes().to_vec();
        fingerprint.push(0);
        // Our own plain command structs always serialize.
        fingerprint.extend(postcard::to_stdvec(command).unwrap_or_default());
        Ok(Self {
            now,
            transaction_id: command.transaction_id().to_owned(),
            member_id: command.member_id().to_owned(),
            actor: command.actor().to_owned(),
            fingerprint,
        })
    }
}

/// On the writer thread: answers a retry from its record, refuses a reused
/// id, or applies the write and commits it with its idempotency record.
fn record<F>(
    rules: &RuleSet,
    writer: &mut Writer,
    key: WriteKey,
    apply: F,
) -> Result<Recorded, ProgramError>
where
    F: FnOnce(&RuleSet, &Writer, Option<MemberState>) -> Result<Applied, ProgramError>,
{
    let WriteKey {
        now,
        transaction_id,
        member_id,
        actor,
        fingerprint,
    } = key;
    if let Some(record) = writer.txn(&transaction_id)? {
        if record.fingerprint == fingerprint && record.member_id == member_id {
            return Ok(Recorded {
                outcome: record.outcome,
                duplicate: true,
            });
        }
        return Err(ProgramError::AlreadyExists(format!(
            "transaction_id: {transaction_id:?} was already recorded with a different request"
        )));
    }
    let existing = writer.member(&member_id)?;
    let applied = apply(rules, writer, existing)?;
    let mut member = applied.member;
    member.prune_days(now);
    let history = number(rules, writer, &member_id, applied.changes);
    let outcome = Outcome {
        member: view(rules, &member, now),
        points: applied.points,
        tier_changes: history.clone(),
        capped: applied.capped,
    };
    let mut txns = applied.other_txns;
    txns.push((
        transaction_id.clone(),
        TxnRecord {
            member_id: member_id.clone(),
            fingerprint,
            outcome: outcome.clone(),
            purchase: applied.purchase,
            actor: actor.clone(),
        },
    ));
    writer.commit(&Commit {
        members: vec![member],
        txns,
        history,
    })?;
    tracing::info!(
        member_id,
        transaction_id,
        actor,
        rules_version = %rules.version,
        points = outcome.points,
        tier = %outcome.member.tier_id,
        "recorded"
    );
    Ok(Recorded {
        outcome,
        duplicate: false,
    })
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
        let before = member.clone();
        let (expired, change) = events::sweep(rules, &mut member, as_of);
        report.evaluated += 1;
        report.points_expired += expired;
        match change.as_ref().map(|c| c.kind) {
            Some(ChangeKind::Promotion) => report.promoted += 1,
            Some(ChangeKind::Demotion) => report.demoted += 1,
            _ => report.unchanged += 1,
        }
        let mut history = number(rules, writer, member_id, change.into_iter().collect());
        if dry_run {
            history.iter_mut().for_each(|entry| entry.seq = 0);
        } else if member != before {
            writer.commit(&Commit {
                members: vec![member],
                txns: Vec::new(),
                history: history.clone(),
            })?;
        }
        report.merge(&mut EvaluationReport {
            changes: history,
            ..EvaluationReport::default()
        });
    }
    Ok(report)
}

/// Gives changes their seqs, in order, from the writer's counter.
fn number(
    rules: &RuleSet,
    writer: &Writer,
    member_id: &str,
    changes: Vec<Change>,
) -> Vec<HistoryEntry> {
    changes
        .into_iter()
        .zip(writer.next_seq()..)
        .map(|(change, seq)| HistoryEntry {
            seq,
            member_id: member_id.to_owned(),
            change,
            rules_version: rules.version.clone(),
        })
        .collect()
}

/// The member as answered to clients at `at`.
fn view(rules: &RuleSet, member: &MemberState, at: DateTime<Utc>) -> MemberView {
    let metrics = events::metrics(rules, member, at);
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
    };
    MemberView {
        member_id: member.member_id.clone(),
        tier_id: member.tier.tier_id.clone(),
        tier_since: member.tier.since,
        next_tier: engine::next_tier(rules, &member.tier.tier_id, subject),
        metrics,
        rules_version: rules.version.clone(),
        currency: rules.currency.code().to_owned(),
        attributes: member.attributes.clone(),
        enrolled_at: member.enrolled_at,
        tier_override: member.tier.tier_override.clone(),
    }
}

fn unknown_member(member_id: &str) -> ProgramError {
    ProgramError::NotFound(format!("member_id: no member {member_id:?}"))
}

/// Puts the override on the member and returns its MANUAL change.
fn apply_override(
    rules: &RuleSet,
    member: &mut MemberState,
    cmd: &OverrideCommand,
    now: DateTime<Utc>,
) -> Change {
    let from = member.tier.tier_id.clone();
    let (to, reason) = match cmd.mode {
        None => {
            member.tier.tier_override = None;
            (from.clone(), format!("override cleared: {}", cmd.reason))
        }
        Some(mode) => {
            let current = rules.tier_index(&from).unwrap_or(0);
            let target = rules.tier_index(&cmd.tier_id).unwrap_or(0);
            let to = match mode {
                OverrideMode::Lock => target,
                OverrideMode::Floor => current.max(target),
            };
            member.tier.tier_override = Some(TierOverride {
                tier_id: cmd.tier_id.clone(),
                mode,
                until: cmd.until,
                reason: cmd.reason.clone(),
            });
            let word = match mode {
                OverrideMode::Lock => "locked at",
                OverrideMode::Floor => "floor set at",
            };
            (
                rules.tiers[to].id.clone(),
                format!("{word} {}: {}", cmd.tier_id, cmd.reason),
            )
        }
    };
    if to != from {
        member.tier.tier_id.clone_from(&to);
        member.tier.since = now;
    }
    member.tier.retain_failing_since = None;
    Change {
        from_tier: from,
        to_tier: to,
        kind: ChangeKind::Manual,
        at: now,
        reason,
    }
}

fn validate_id(field: &'static str, id: &str) -> Result<(), ProgramError> {
    if id.is_empty() {
        return Err(invalid(field, "required"));
    }
    if id.len() > LIMITS.max_id_bytes {
        return Err(invalid(
            field,
            format!(
                "{} bytes is longer than the {} allowed",
                id.len(),
                LIMITS.max_id_bytes
            ),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn validate_text(field: &'static str, text: &str) -> Result<(), ProgramError> {
    if text.len() > LIMITS.max_text_bytes {
        return Err(invalid(
            field,
            format!("longer than {} bytes", LIMITS.max_text_bytes),
        ));
    }
    Ok(())
}

fn validate_amount(field: &'static str, amount: i64) -> Result<(), ProgramError> {
    if amount <= 0 {
        return Err(invalid(
            field,
            format!("must be greater than 0, got {amount}"),
        ));
    }
    if amount > LIMITS.max_amount {
        return Err(invalid(
            field,
            format!("{amount} is above the limit of {}", LIMITS.max_amount),
        ));
    }
    Ok(())
}

fn validate_currency(rules: &RuleSet, currency: &str, optional: bool) -> Result<(), ProgramError> {
    if optional && currency.is_empty() {
        return Ok(());
    }
    if currency != rules.currency.code() {
        return Err(invalid(
            "currency",
            format!(
                "{currency:?} is not the program currency {}",
                rules.currency
            ),
        ));
    }
    Ok(())
}

fn validate_occurred_at(
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ProgramError> {
    let at = at.ok_or_else(|| invalid("occurred_at", "required"))?;
    if at > now + LIMITS.max_clock_skew {
        return Err(invalid(
            "occurred_at",
            format!("{at} lies more than 5 minutes in the future (server time {now})"),
        ));
    }
    Ok(at)
}

fn validate_attributes(attributes: &BTreeMap<String, String>) -> Result<(), ProgramError> {
    if attributes.len() > LIMITS.max_attributes {
        return Err(invalid(
            "attributes",
            format!("at most {} attributes", LIMITS.max_attributes),
        ));
    }
    for (key, value) in attributes {
        if key.is_empty() {
            return Err(invalid("attributes", "an attribute key must not be empty"));
        }
        validate_text("attributes", key)?;
        validate_text("attributes", value)?;
    }
    Ok(())
}
