//! Closing and reopening accounts (`CloseMember`, `ReopenMember`): writes
//! like any other, idempotent on their transaction id, applied by
//! [`crate::domain::account`] on the writer thread.

use super::{
    Program, ProgramError,
    command::{CloseCommand, ReopenCommand},
    write::{Applied, Recorded},
};
use crate::domain::account::{self, AccountRefused};

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
}
