//! The service: validated commands in, the domain applied, state durable.
//!
//! Orchestration only. A command arrives validated ([`command`], built from
//! [`input`] values at the gRPC boundary); the service takes the rules in
//! force once, checks what needs the rules or the clock under that very
//! version, then applies the event with [`crate::domain::apply`] on the
//! store's single writer thread and commits member, receipt and history
//! entries atomically ([`write`]). Only once the commit is on disk does the
//! caller get its answer.
//!
//! Idempotency: every write carries a transaction id. Its receipt keeps the
//! request's fingerprint and what it did; a retry of the same request gets
//! that effect back (marked duplicate) and changes nothing, and a different
//! request under a used id is refused.
//!
//! Concurrency: every write runs as a job on the store's writer thread
//! (in-memory work and a sled batch: microseconds); concurrent requests
//! share one fsync per round, and async workers never block.

mod accounts;
mod batch;
pub mod command;
pub mod error;
mod events;
pub mod input;
pub mod live_rules;
mod privacy;
mod sweep;
#[cfg(test)]
mod tests;
pub mod watch;
mod write;

use std::{path::PathBuf, sync::Arc};

use chrono::{DateTime, Utc};

pub use batch::{EVENTS_PER_ROUND, MAX_EVENTS};
pub use error::ProgramError;
pub use privacy::{Erased, ErasurePlan};
pub use sweep::{EvaluationReport, MAX_REPORTED_CHANGES};
pub use write::{Outcome, Recorded};

use crate::{
    domain::{
        decide::HistoryEntry,
        member::MemberState,
        view::{self, MemberView},
    },
    report::{
        Query, Report, Reporter,
        predict::{MemberPrediction, Scorer},
    },
    rules::{RuleSet, RulesVersion},
    store::Store,
    tools::{
        export,
        simulate::{self, Simulation},
    },
};
use input::MemberId;
use live_rules::{LiveRules, ReloadFailure};

/// How often a node looks for a rules version another node put live: the
/// bound within which a reload anywhere is in force everywhere.
pub const RULES_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Where the time comes from: the system clock in production, a fixed or
/// stepped one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// The running program: rules, store and clock.
pub struct Program {
    store: Store,
    rules: LiveRules,
    clock: Clock,
    /// Set when the service stops: tier-change streams end.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The models of the last prediction made for today, which `GetMember`
    /// scores members with.
    scorer: arc_swap::ArcSwapOption<Scorer>,
}

impl Program {
    /// A program over an opened store, with rules given in memory.
    pub fn new(store: Store, rules: Arc<RuleSet>, clock: Clock) -> Self {
        let now = clock();
        Self {
            store,
            rules: LiveRules::new(rules, None, now),
            clock,
            stopping: tokio::sync::watch::Sender::new(false),
            scorer: arc_swap::ArcSwapOption::empty(),
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

    /// The rules file reloads read, if any.
    pub fn rules_file(&self) -> Option<&PathBuf> {
        self.rules.file()
    }

    /// The clock's time to the microsecond, the precision the store keeps:
    /// a write's answer, a later read and the stream show the same
    /// instant (`tier_since` was `...46.142408485Z` in an answer and
    /// `...46.142408Z` when read back).
    fn now(&self) -> DateTime<Utc> {
        use chrono::DurationRound as _;
        let now = (self.clock)();
        now.duration_trunc(chrono::TimeDelta::microseconds(1))
            .unwrap_or(now)
    }

    /// Records the running rules version as live (at start-up).
    ///
    /// # Errors
    /// `RulesRejected` when the file reuses a recorded label with other
    /// content; a storage failure.
    pub async fn go_live(&self) -> Result<RulesVersion, ProgramError> {
        self.rules.go_live(&self.store, self.now()).await
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
    /// `RulesRejected` with every problem when the file is invalid (the
    /// running rules stay), or a storage failure.
    pub async fn reload_rules(&self) -> Result<(RulesVersion, bool), ProgramError> {
        self.rules.reload(&self.store, self.now()).await
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

    /// Puts in force the rules version another node put live since the
    /// last look, every [`RULES_POLL`], until `stop` is cancelled. On a
    /// store only this process can open (sled, whose directory it locks)
    /// there is no other node: it returns at once, so nothing but this
    /// node's own reloads ever changes the rules in force.
    pub async fn follow_rules(&self, stop: tokio_util::sync::CancellationToken) {
        if !self.store.is_shared() {
            return;
        }
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RULES_POLL) => {}
            }
            if let Err(err) = self.rules.follow(&self.store).await {
                tracing::warn!(error = %err, "looking for rules put live elsewhere failed");
            }
        }
    }

    /// Up to `limit` rules versions that went live after position `after`,
    /// oldest first, each with its position (see
    /// [`crate::store::Store::rules_versions_after`]).
    ///
    /// # Errors
    /// On a storage failure.
    pub fn rules_versions(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, RulesVersion)>, ProgramError> {
        Ok(self.store.rules_versions_after(after, limit)?)
    }

    /// The rules version at `position`, with its text.
    ///
    /// # Errors
    /// `NotFound` for a position no version has, or a storage failure.
    pub fn rules_version(&self, position: u64) -> Result<RulesVersion, ProgramError> {
        self.store
            .rules_version_at(position)?
            .ok_or_else(|| ProgramError::NotFound {
                field: "position",
                message: format!("no rules version at position {position}"),
            })
    }

    /// A member as of now; for an id merged into another member, that
    /// member, saying where the id went.
    ///
    /// # Errors
    /// `NotFound` for an unknown member, or a storage failure.
    pub fn member(&self, member_id: &MemberId) -> Result<MemberView, ProgramError> {
        self.member_and_view(member_id).map(|(_, view)| view)
    }

    /// The member `member_id` names, as stored and as answered.
    fn member_and_view(
        &self,
        member_id: &MemberId,
    ) -> Result<(MemberState, MemberView), ProgramError> {
        let (member, alias) = self
            .store
            .landing(member_id.as_str())?
            .ok_or_else(|| ProgramError::unknown_member(member_id.as_str()))?;
        let mut view = view::view(&self.rules(), &member, self.now());
        view.asked_as = alias;
        view.merged_ids = self.store.aliases_into(&member.member_id)?;
        Ok((member, view))
    }

    /// Everything stored about a member, as one JSON document
    /// ([`export`]). Blocking: on sled it reads every receipt; call it off
    /// the async workers.
    ///
    /// # Errors
    /// `NotFound` for an unknown member, or a storage failure.
    pub fn export_member(&self, member_id: &MemberId) -> Result<Vec<u8>, ProgramError> {
        let id = member_id.as_str();
        export::export_json(&self.store, id, self.now())?
            .ok_or_else(|| ProgramError::unknown_member(id))
    }

    /// A page of a member's tier history after seq `after`. An id merged
    /// into another member keeps its own history, ending with its MERGED
    /// entry.
    ///
    /// # Errors
    /// `NotFound` for an unknown member, or a storage failure.
    pub fn history(
        &self,
        member_id: &MemberId,
        after: u64,
        page_size: usize,
    ) -> Result<(Vec<HistoryEntry>, bool), ProgramError> {
        if self.store.landing(member_id.as_str())?.is_none() {
            return Err(ProgramError::unknown_member(member_id.as_str()));
        }
        Ok(self.store.history(member_id.as_str(), after, page_size)?)
    }

    /// How `candidate` rules would place every stored member as of
    /// `as_of` (default now). Reads only; long work on all cores: call it
    /// off the async workers.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn simulate(
        &self,
        candidate: &RuleSet,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Simulation, ProgramError> {
        let now = self.now();
        let as_of = input::as_of_time("as_of", as_of.unwrap_or(now), now)?;
        Ok(simulate::simulate(&self.store, candidate, as_of)?)
    }

    /// Today's date (UTC) by the clock: reports' default day.
    pub fn today(&self) -> chrono::NaiveDate {
        self.now().date_naive()
    }

    /// Makes the report `query` asks for, under the rules in force, with
    /// today from the clock. Blocking: it scans every member on all cores;
    /// call it off the async workers.
    ///
    /// # Errors
    /// INVALID_ARGUMENT naming an option out of range; a storage failure.
    pub fn report(&self, query: Query) -> Result<Report, ProgramError> {
        self.reports(vec![query])?
            .pop()
            .unwrap_or_else(|| unreachable!("one report asked for, one made"))
    }

    /// Every report `queries` ask for, from one scan of the members (what
    /// the HTML page shows), each answer in the order asked. Blocking, as
    /// [`Program::report`].
    ///
    /// # Errors
    /// The outer error: a storage failure. The inner ones: INVALID_ARGUMENT
    /// for that report's options, or a prediction's fit that failed.
    pub fn reports(
        &self,
        queries: Vec<Query>,
    ) -> Result<Vec<Result<Report, ProgramError>>, ProgramError> {
        let rules = self.rules();
        let made = Reporter::new(&self.store, &rules, self.today()).run_all(queries)?;
        Ok(made
            .into_iter()
            .map(|report| {
                let report = report?;
                if let Report::Prediction(prediction) = &report
                    && prediction.header.to == Some(self.today())
                {
                    self.scorer.store(Some(Arc::new(Scorer::of(prediction))));
                }
                Ok(report)
            })
            .collect())
    }

    /// A member as of now (see [`Program::member`]), with its predicted
    /// figures when a prediction was made for today on this node (`tierd
    /// report predict`, the `Predict` RPC).
    ///
    /// # Errors
    /// `NotFound` for an unknown member, or a storage failure.
    pub fn member_with_prediction(
        &self,
        member_id: &MemberId,
    ) -> Result<(MemberView, Option<MemberPrediction>), ProgramError> {
        let (member, view) = self.member_and_view(member_id)?;
        let prediction = self
            .scorer
            .load_full()
            .and_then(|scorer| scorer.score(&member, self.today()));
        Ok((view, prediction))
    }

    /// Writes a consistent backup of all data into an anonymous temporary
    /// file in the data directory (writes wait while it is taken, which is
    /// as fast as the disk), and returns it, rewound, for streaming.
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn backup(&self) -> Result<std::fs::File, ProgramError> {
        let dir = self.store.scratch_dir();
        let file = self
            .store
            .write(move |writer| {
                let mut file = tempfile::tempfile_in(&dir)?;
                writer.snapshot(&mut file)?;
                std::io::Seek::rewind(&mut file)?;
                Ok::<_, crate::store::StoreError>(file)
            })
            .await??;
        Ok(file)
    }

    /// The bytes the store holds. Blocking (it may walk a directory).
    ///
    /// # Errors
    /// On a storage failure.
    pub fn store_size(&self) -> Result<u64, ProgramError> {
        Ok(self.store.size_bytes()?)
    }

    /// Returns once everything written so far is on disk: the last step of
    /// a clean shutdown.
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn sync(&self) -> Result<(), ProgramError> {
        Ok(self.store.sync().await?)
    }
}
