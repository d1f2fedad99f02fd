//! The write requests one at a time, and many at once (`RecordEvents`: a
//! till that was offline syncs a day of sales in one call).
//!
//! A batch keeps every event's own transaction id and idempotency: each is
//! checked and applied exactly as it would be alone, in the order sent, and
//! has its own outcome. One bad event refuses only itself. The events run
//! as writer jobs of up to [`EVENTS_PER_ROUND`] each, so a batch costs one
//! fsync per that many events and never holds the writer for long.

use super::{
    Program, ProgramError,
    command::{ActivityEvent, Adjustment, Event, OverrideCommand, Purchase, Redemption, Return},
    write::{Recorded, WriteJob},
};

/// The most events one `RecordEvents` call may carry.
pub const MAX_EVENTS: usize = 10_000;

/// Events applied per writer job.
pub const EVENTS_PER_ROUND: usize = 256;

impl Program {
    /// Records a purchase; creates the member on its first purchase.
    ///
    /// # Errors
    /// Invalid fields, a reused transaction id, or a storage failure.
    pub async fn record_purchase(
        &self,
        cmd: Purchase,
        actor: &str,
    ) -> Result<Recorded, ProgramError> {
        self.run(self.purchase_job(cmd, actor).await?).await
    }

    /// Records an activity: points by its kind within the caps (0 when a
    /// cap is reached: `points` of the outcome is 0), engagement always.
    ///
    /// # Errors
    /// Invalid fields or an unknown kind, a reused transaction id, or a
    /// storage failure.
    pub async fn record_activity(
        &self,
        cmd: ActivityEvent,
        actor: &str,
    ) -> Result<Recorded, ProgramError> {
        self.run(self.activity_job(cmd, actor).await?).await
    }

    /// Records a return against an earlier purchase of the same member.
    ///
    /// # Errors
    /// Invalid fields, an unknown original (`NotFound`), a return that does
    /// not fit what is left of the purchase, a reused transaction id, or a
    /// storage failure.
    pub async fn record_return(&self, cmd: Return, actor: &str) -> Result<Recorded, ProgramError> {
        self.run(self.return_job(cmd, actor).await?).await
    }

    /// Adjusts points by hand (goodwill or correction).
    ///
    /// # Errors
    /// An unknown member, a reused transaction id, or a storage failure.
    pub async fn adjust_points(
        &self,
        cmd: Adjustment,
        actor: &str,
    ) -> Result<Recorded, ProgramError> {
        self.run(self.adjustment_job(cmd, actor).await?).await
    }

    /// Sets or clears a manual tier override (see
    /// [`Program::override_job`]).
    ///
    /// # Errors
    /// Invalid fields (unknown tier, past `until`), an unknown member, a
    /// reused transaction id, or a storage failure.
    pub async fn set_override(
        &self,
        cmd: OverrideCommand,
        actor: &str,
    ) -> Result<Recorded, ProgramError> {
        self.run(self.override_job(cmd, actor).await?).await
    }

    /// Redeems points, oldest first; never below zero, never a tier change.
    ///
    /// # Errors
    /// An unknown member, a balance too small (`FailedPrecondition`), an
    /// order that is another member's transaction, a reused transaction
    /// id, or a storage failure.
    pub async fn redeem_points(
        &self,
        cmd: Redemption,
        actor: &str,
    ) -> Result<Recorded, ProgramError> {
        self.run(self.redemption_job(cmd, actor).await?).await
    }

    /// Records `events` in order, each as it would be alone; the outcomes
    /// come back in the same order.
    pub async fn record_events(
        &self,
        events: Vec<Event>,
        actor: &str,
    ) -> Vec<Result<Recorded, ProgramError>> {
        let mut outcomes: Vec<Option<Result<Recorded, ProgramError>>> =
            (0..events.len()).map(|_| None).collect();
        let mut jobs: Vec<(usize, WriteJob)> = Vec::new();
        for (slot, event) in events.into_iter().enumerate() {
            match self.event_job(event, actor).await {
                Ok(job) => jobs.push((slot, job)),
                Err(err) => outcomes[slot] = Some(Err(err)),
            }
        }
        while !jobs.is_empty() {
            let rest = jobs.split_off(jobs.len().min(EVENTS_PER_ROUND));
            let (slots, round): (Vec<usize>, Vec<WriteJob>) = jobs.into_iter().unzip();
            for (slot, outcome) in slots.into_iter().zip(self.run_all(round).await) {
                outcomes[slot] = Some(outcome);
            }
            jobs = rest;
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ProgramError::Unavailable("not run".into()))))
            .collect()
    }

    async fn event_job(&self, event: Event, actor: &str) -> Result<WriteJob, ProgramError> {
        match event {
            Event::Purchase(cmd) => self.purchase_job(cmd, actor).await,
            Event::Return(cmd) => self.return_job(cmd, actor).await,
            Event::Activity(cmd) => self.activity_job(cmd, actor).await,
            Event::Adjustment(cmd) => self.adjustment_job(cmd, actor).await,
            Event::Redemption(cmd) => self.redemption_job(cmd, actor).await,
        }
    }
}
