//! Erasing a member (`EraseMember`): what identifies the person goes, the
//! figures stay under a pseudonym ([`crate::domain::privacy`]).
//!
//! Everything stored about the member is gathered first
//! ([`Program::prepare_erasure`], blocking: on sled it reads every
//! receipt, seconds on a large store, which neither the async workers nor
//! the writer must spend). The write job then checks that the member is
//! as gathered (a write in between would have added what the gathering
//! missed: the caller is asked to send the request again) and rewrites it
//! all in one atomic commit with the erasure's record and receipt. A retry
//! of the request is answered with the pseudonym it made.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{
    Program, ProgramError,
    command::{EraseCommand, Keyed},
};
use crate::{
    domain::{
        books::Books as _,
        due::Due,
        fingerprint::Fingerprint,
        privacy::{self, Erasure},
        receipt::{Receipt, RequestKind},
    },
    rules::RuleSet,
    store::{EraseCommit, Writer},
    tools::export::{self, MemberExport},
};

/// What an erasure did, as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The pseudonym that replaced the member's ids.
    pub pseudonym: String,
    /// Receipts rewritten under it (the erasure's own not counted).
    pub receipts: u64,
    /// History entries rewritten under it.
    pub history_entries: u64,
    /// True when the transaction id had been recorded before: the
    /// erasure was done then.
    pub duplicate: bool,
}

/// An erasure asked for, with everything stored about the member as it
/// was gathered ([`Program::prepare_erasure`]).
pub struct ErasurePlan {
    cmd: EraseCommand,
    now: DateTime<Utc>,
    /// `None` for an id that names no member (or one erased already: a
    /// retry is answered from its receipt).
    gathered: Option<MemberExport>,
}

impl Program {
    /// Gathers everything stored about the member `cmd` names (and every
    /// id merged into it). Blocking: on sled it reads every receipt; call
    /// it off the async workers.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn prepare_erasure(&self, cmd: EraseCommand) -> Result<ErasurePlan, ProgramError> {
        let now = self.now();
        let gathered = export::export(&self.store, cmd.member_id.as_str(), now)?;
        Ok(ErasurePlan { cmd, now, gathered })
    }

    /// Erases what identifies the member `plan` gathered, keeping its
    /// figures under a new pseudonym.
    ///
    /// # Errors
    /// An unknown member, a transaction id used for another request, a
    /// member that changed while the erasure was prepared (send it again),
    /// or a storage failure.
    pub async fn erase_member(
        &self,
        plan: ErasurePlan,
        actor: &str,
    ) -> Result<Erased, ProgramError> {
        let ErasurePlan { cmd, now, gathered } = plan;
        let rules = self.rules_at(now).await?;
        let mut random = [0; 12];
        getrandom::fill(&mut random).map_err(|err| {
            ProgramError::Unavailable(format!("no randomness for a pseudonym: {err}"))
        })?;
        let erasing = Erasing {
            pseudonym: privacy::pseudonym(random),
            transaction_id: cmd.transaction_id.as_str().to_owned(),
            fingerprint: cmd.facts().fingerprint(),
            erasure_reason: cmd.reason.as_str().to_owned(),
            actor: actor.to_owned(),
            now,
            rules,
            gathered,
        };
        let erased = self
            .store
            .write(move |writer| erasing.run(writer))
            .await??;
        tracing::info!(
            pseudonym = erased.pseudonym,
            caller = actor,
            receipts = erased.receipts,
            history_entries = erased.history_entries,
            duplicate = erased.duplicate,
            "member erased"
        );
        Ok(erased)
    }
}

/// An erasure ready to run on the writer.
struct Erasing {
    pseudonym: String,
    transaction_id: String,
    fingerprint: Fingerprint,
    erasure_reason: String,
    actor: String,
    now: DateTime<Utc>,
    rules: Arc<RuleSet>,
    /// Everything stored about the member when the request came; `None`
    /// for an id that names no member (or one erased already).
    gathered: Option<MemberExport>,
}

impl Erasing {
    /// On the writer: answers a retry, or checks the member is as gathered
    /// and commits the erasure.
    fn run(&self, writer: &mut Writer) -> Result<Erased, ProgramError> {
        if let Some(receipt) = writer.receipt(&self.transaction_id)? {
            if receipt.kind == RequestKind::Erase && receipt.fingerprint == self.fingerprint {
                return Ok(Erased {
                    pseudonym: receipt.member_id,
                    receipts: 0,
                    history_entries: 0,
                    duplicate: true,
                });
            }
            return Err(ProgramError::AlreadyExists(format!(
                "transaction_id: {:?} was already recorded with a different request",
                self.transaction_id
            )));
        }
        let gathered = self
            .gathered
            .as_ref()
            .ok_or_else(|| ProgramError::NotFound {
                field: "member_id",
                // Not echoed: after an erasure, nothing repeats the old id.
                message: "no member by that id (or it was erased)".into(),
            })?;
        let current = writer.member(&gathered.member.member_id)?;
        if current.as_ref() != Some(&gathered.member) {
            return Err(ProgramError::Unavailable(
                "member_id: the member changed while its erasure was prepared; send the request again"
                    .into(),
            ));
        }
        let commit = self.commit(gathered);
        let erased = Erased {
            pseudonym: self.pseudonym.clone(),
            receipts: gathered.receipts.len() as u64,
            history_entries: commit.history.len() as u64,
            duplicate: false,
        };
        writer.erase(&commit)?;
        Ok(erased)
    }

    /// The commit that puts `gathered` under the pseudonym.
    fn commit(&self, gathered: &MemberExport) -> EraseCommit {
        let pseudonym = self.pseudonym.as_str();
        let mut member = gathered.member.clone();
        privacy::erase_member(&mut member, pseudonym);
        let mut receipts: Vec<(String, Receipt)> = gathered
            .receipts
            .iter()
            .map(|r| {
                let mut receipt = r.receipt.clone();
                privacy::erase_receipt(&mut receipt, pseudonym);
                (r.transaction_id.clone(), receipt)
            })
            .collect();
        receipts.push((
            self.transaction_id.clone(),
            Receipt {
                kind: RequestKind::Erase,
                member_id: pseudonym.to_owned(),
                fingerprint: self.fingerprint,
                actor: self.actor.clone(),
                points: 0,
                capped: false,
                tier_changes: Vec::new(),
                purchase: None,
                refunded_minor: 0,
                points_recredited: 0,
            },
        ));
        let history = gathered
            .history
            .iter()
            .map(|entry| {
                let mut entry = entry.clone();
                privacy::erase_entry(&mut entry, pseudonym);
                entry
            })
            .collect();
        let ids = std::iter::once(gathered.member.member_id.clone())
            .chain(gathered.merged.iter().map(|alias| alias.member_id.clone()))
            .collect();
        EraseCommit {
            ids,
            member,
            due: Due::now(&self.rules, self.now),
            receipts,
            history,
            erasure: Erasure {
                pseudonym: pseudonym.to_owned(),
                at: self.now,
                actor: self.actor.clone(),
                reason: self.erasure_reason.clone(),
            },
        }
    }
}
