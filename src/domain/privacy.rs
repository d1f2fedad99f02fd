//! Erasing what identifies a person (`EraseMember`, EU GDPR article 17)
//! while keeping the figures that reports, the points liability and audits
//! need.
//!
//! Erasure replaces the member's id, and every id merged into it, with one
//! pseudonym wherever they are stored (the member's record, the receipts of
//! its requests, its tier history, its redemptions against orders), and
//! removes what a person wrote about it: its attributes, and the reasons
//! staff gave for a placement, a close, a re-open or a merge. Amounts,
//! points, dates and tiers stay, so every report adds up as before. The
//! receipts of its earlier requests lose their fingerprints too (a digest
//! of the request, id included): a retry of one of them is refused from
//! then on, as the request of someone unknown.
//!
//! What was erased is recorded ([`Erasure`]: when, by whom, why) without
//! any of the erased data.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    decide::{ChangeKind, HistoryEntry},
    fingerprint::Fingerprint,
    member::MemberState,
    receipt::Receipt,
};

/// What an erased member's id is replaced with: this prefix, then random
/// hex (see [`pseudonym`]).
pub const PSEUDONYM_PREFIX: &str = "erased-";

/// The text that replaces a reason staff wrote.
pub const ERASED_REASON: &str = "(erased)";

/// The record of one erasure, kept under the pseudonym: nothing of what
/// was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    /// The pseudonym the member's ids were replaced with.
    pub pseudonym: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The API key that asked for it.
    pub actor: String,
    /// Why, as the caller wrote it (a request number, not personal data).
    pub reason: String,
}

/// A pseudonym made of `random` bytes: the same for every place the
/// member's ids were stored, and nothing derived from them.
pub fn pseudonym(random: [u8; 12]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PSEUDONYM_PREFIX}{hex}")
}

/// The member's record under `pseudonym`, without its attributes and the
/// reasons staff wrote (its override's, its closure's).
pub fn erase_member(member: &mut MemberState, pseudonym: &str) {
    member.member_id = pseudonym.to_owned();
    member.attributes.clear();
    if let Some(placement) = member.tier.tier_override.as_mut() {
        placement.reason = ERASED_REASON.to_owned();
    }
    if let Some(closure) = member.closed.as_mut() {
        closure.reason = ERASED_REASON.to_owned();
    }
}

/// A receipt of the member's under `pseudonym`, without the fingerprint
/// of the request it answered.
pub fn erase_receipt(receipt: &mut Receipt, pseudonym: &str) {
    receipt.member_id = pseudonym.to_owned();
    receipt.fingerprint = Fingerprint([0; 32]);
}

/// A history entry of the member's under `pseudonym`; a reason staff
/// wrote (a placement, a close, a re-open, a merge, which also names the
/// ids merged) is replaced, the engine's own reasons (thresholds met or
/// missed) stay.
pub fn erase_entry(entry: &mut HistoryEntry, pseudonym: &str) {
    entry.member_id = pseudonym.to_owned();
    let written_by_staff = matches!(
        entry.change.kind,
        ChangeKind::Manual | ChangeKind::Closed | ChangeKind::Reopened | ChangeKind::Merged
    );
    if written_by_staff {
        entry.change.reason = ERASED_REASON.to_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        decide::{Change, OverrideMode, TierOverride},
        tests::march,
    };

    /// Nothing of the id, the attributes or the staff's words is left;
    /// the figures are.
    #[test]
    fn erasure_keeps_the_figures_and_nothing_that_identifies() {
        let mut m = MemberState::new("ann@example.com", "bronze", march(1));
        m.record_purchase("p1", 10_000, 100, march(1), None);
        m.attributes
            .insert("email".into(), "ann@example.com".into());
        m.tier.tier_override = Some(TierOverride {
            tier_id: "gold".into(),
            mode: OverrideMode::Floor,
            until: None,
            reason: "ann is the CEO's aunt".into(),
        });
        let figures = (
            m.lifetime_value_minor,
            m.points_balance(march(2)),
            m.days.clone(),
        );
        let name = pseudonym([0xab; 12]);
        assert_eq!(name, "erased-abababababababababababab");
        erase_member(&mut m, &name);
        assert_eq!(m.member_id, name);
        assert!(m.attributes.is_empty());
        assert_eq!(
            (
                m.lifetime_value_minor,
                m.points_balance(march(2)),
                m.days.clone()
            ),
            figures
        );
        let text = format!("{m:?}");
        assert!(!text.contains("ann"), "{text}");

        let mut entry = HistoryEntry {
            seq: 3,
            member_id: "ann@example.com".into(),
            change: Change::new(
                ChangeKind::Merged,
                "bronze",
                "gold",
                march(2),
                "merged \"ann-card\" into \"ann@example.com\": same".into(),
            ),
            rules_version: "1".into(),
        };
        erase_entry(&mut entry, &name);
        assert_eq!(entry.change.reason, ERASED_REASON);
        assert_eq!(
            (
                entry.change.from_tier.as_str(),
                entry.change.to_tier.as_str()
            ),
            ("bronze", "gold")
        );
        let mut promoted = entry.clone();
        promoted.change.kind = ChangeKind::Promotion;
        promoted.change.reason = "qualifying_points 600 >= 500".into();
        erase_entry(&mut promoted, &name);
        assert_eq!(promoted.change.reason, "qualifying_points 600 >= 500");
    }
}
