//! Merging two members into one (`MergeMembers`): the same customer
//! enrolled twice, say a card at the till and an account online.
//!
//! The member merged away (the source) gives everything it holds to the
//! member that remains (the target), as if one member had done what both
//! did ([`MemberState::absorb`]), and becomes an [`Alias`]: events naming
//! it land on the target from then on. The target keeps the better
//! standing of the two (the tier state of whichever ranks higher, with its
//! `since`, grace clock and override; the target's on equal rank), so a
//! merge never takes a tier away from the customer; then the combined
//! figures are decided under the rules in force, which may promote. A
//! demotion can follow only when it was due anyway (a grace period that
//! ran out), never because of the merge.
//!
//! A closed account is neither merged nor merged into: it is reopened
//! first, so that what it forfeited or kept is settled by one rule.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    apply::{Effect, evaluate},
    decide::{Change, ChangeKind},
    member::MemberState,
};
use crate::rules::RuleSet;

/// A member id merged into another: what events naming it are redirected
/// by, and what `GetMember` tells of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alias {
    /// The id merged away.
    pub member_id: String,
    /// The member its events land on now (always one that exists: when
    /// that member is merged in turn, its aliases follow it).
    pub into: String,
    /// When it was merged.
    pub at: DateTime<Utc>,
    /// Why, as the caller wrote it.
    pub reason: String,
}

/// Why a merge is refused; nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeRefused {
    /// Source and target are the same member.
    #[error("a member cannot be merged into itself ({member:?})")]
    Itself {
        /// The member.
        member: String,
    },
    /// One of them is a closed account.
    #[error("member {member:?} is closed (since {since}); reopen it before merging")]
    Closed {
        /// The closed member.
        member: String,
        /// When it was closed.
        since: DateTime<Utc>,
    },
}

/// A merge's effect: the target's, and the source's last history entry.
#[derive(Debug)]
pub struct Merged {
    /// On the target: MERGED (and a promotion the combined figures reach),
    /// the lots that lapsed on the way.
    pub effect: Effect,
    /// The source's MERGED entry, the last under its id.
    pub source_change: Change,
    /// The alias the source becomes.
    pub alias: Alias,
}

/// Merges `source` into `target` at `now` for `reason`, under `rules`.
///
/// # Errors
/// [`MergeRefused`]; nothing changes.
pub fn merge(
    rules: &RuleSet,
    target: &mut MemberState,
    mut source: MemberState,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Merged, MergeRefused> {
    if source.member_id == target.member_id {
        return Err(MergeRefused::Itself {
            member: source.member_id,
        });
    }
    for member in [&*target, &source] {
        if let Some(closure) = &member.closed {
            return Err(MergeRefused::Closed {
                member: member.member_id.clone(),
                since: closure.at,
            });
        }
    }
    let mut lapsed = target.expire(now);
    lapsed.extend(source.expire(now));
    let words = format!(
        "merged {:?} into {:?}: {reason}",
        source.member_id, target.member_id
    );
    let source_tier = source.tier.tier_id.clone();
    let source_change = Change::new(
        ChangeKind::Merged,
        &source_tier,
        &source_tier,
        now,
        words.clone(),
    );
    let before = target.tier.tier_id.clone();
    if ranks_above(rules, &source_tier, &before) {
        target.tier = source.tier.clone();
    }
    let alias = Alias {
        member_id: source.member_id.clone(),
        into: target.member_id.clone(),
        at: now,
        reason: reason.to_owned(),
    };
    target.absorb(source);
    let merged = Change::new(
        ChangeKind::Merged,
        &before,
        &target.tier.tier_id,
        now,
        words,
    );
    let changes = std::iter::once(merged)
        .chain(evaluate(rules, target, now))
        .collect();
    Ok(Merged {
        effect: Effect {
            changes,
            lapsed,
            ..Effect::default()
        },
        source_change,
        alias,
    })
}

/// Whether tier `a` ranks above `b` on the rules' ladder (a tier the rules
/// no longer have ranks below every tier they have).
fn ranks_above(rules: &RuleSet, a: &str, b: &str) -> bool {
    // `None` (no longer on the ladder) orders below every `Some`.
    rules.tier_index(a) > rules.tier_index(b)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::{member::day_number, tests::march as at};

    fn rules() -> RuleSet {
        let yaml = "\
program: test
version: t1
currency: EUR
window: rolling 12 months
earning: { points_per_unit: 1 }
tiers:
  - id: bronze
  - id: silver
    qualify: { qualifying_points: 500 }
  - id: gold
    qualify: { qualifying_points: 5000 }
";
        crate::rules::load(&crate::rules::Candidate::new("merge.yaml", yaml)).expect("valid rules")
    }

    /// Two members' figures add up exactly in the one that remains: days
    /// (the same day summed), lots with their own expiry, debt settled
    /// from the lots, the all-time figures and the earlier enrolment.
    #[test]
    fn the_remaining_member_holds_both_members_figures() {
        let rules = rules();
        let mut card = MemberState::new("card", "bronze", at(1));
        card.record_purchase("c1", 10_000, 100, at(1), Some(at(1) + TimeDelta::days(400)));
        card.record_purchase("c2", 5_000, 50, at(3), None);
        card.attributes.insert("region".into(), "north".into());
        let mut web = MemberState::new("web", "bronze", at(2));
        web.record_purchase("w1", 2_000, 20, at(3), Some(at(3) + TimeDelta::days(30)));
        web.points_debt = 0;
        web.attributes.insert("region".into(), "south".into());
        web.attributes
            .insert("email".into(), "x@example.com".into());
        let merged = merge(&rules, &mut web, card.clone(), "same customer", at(4)).expect("open");
        assert_eq!(web.lifetime_value_minor, 17_000);
        assert_eq!(web.enrolled_at, at(1), "the earlier enrolment");
        assert_eq!(
            web.days[&day_number(at(3))].spend_minor,
            7_000,
            "one day, both"
        );
        assert_eq!(web.days[&day_number(at(1))].purchases, 1);
        let lots: Vec<(&str, i64)> = web
            .lots
            .iter()
            .map(|l| (l.source.as_str(), l.remaining))
            .collect();
        assert_eq!(lots, [("w1", 20), ("c1", 100), ("c2", 50)], "expiry order");
        assert_eq!(web.points_balance(at(4)), 170);
        assert_eq!(web.attributes["region"], "south", "the target's value wins");
        assert_eq!(web.attributes["email"], "x@example.com");
        assert_eq!(merged.alias.into, "web");
        assert_eq!(merged.source_change.kind, ChangeKind::Merged);
        assert!(
            merged
                .source_change
                .reason
                .contains("\"card\" into \"web\"")
        );
    }

    /// The remaining member takes the better tier of the two, and the
    /// combined figures are decided at once: a promotion when they reach
    /// higher.
    #[test]
    fn the_better_tier_is_kept_and_the_combined_figures_may_promote() {
        let rules = rules();
        let mut gold = MemberState::new("card", "bronze", at(1));
        gold.record_purchase("c1", 500_000, 5_000, at(1), None);
        gold.tier.tier_id = "gold".into();
        let mut web = MemberState::new("web", "bronze", at(1));
        web.record_purchase("w1", 1_000, 10, at(1), None);
        let merged = merge(&rules, &mut web, gold, "same customer", at(2)).expect("open");
        assert_eq!(web.tier.tier_id, "gold");
        let first = &merged.effect.changes[0];
        assert_eq!(
            (first.from_tier.as_str(), first.to_tier.as_str()),
            ("bronze", "gold")
        );

        let mut a = MemberState::new("a", "bronze", at(1));
        a.record_purchase("a1", 30_000, 300, at(1), None);
        let mut b = MemberState::new("b", "bronze", at(1));
        b.record_purchase("b1", 30_000, 300, at(1), None);
        let merged = merge(&rules, &mut a, b, "dup", at(2)).expect("open");
        let kinds: Vec<ChangeKind> = merged.effect.changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ChangeKind::Merged, ChangeKind::Promotion]);
        assert_eq!(a.tier.tier_id, "silver", "600.00 together reach silver");
    }

    /// Merging a member into itself, or a closed account either way, is
    /// refused.
    #[test]
    fn itself_and_closed_accounts_are_refused() {
        let rules = rules();
        let mut a = MemberState::new("a", "bronze", at(1));
        assert!(matches!(
            merge(&rules, &mut a.clone(), a.clone(), "x", at(2)),
            Err(MergeRefused::Itself { .. })
        ));
        let mut closed = MemberState::new("c", "bronze", at(1));
        crate::domain::account::close(&mut closed, "left", false, at(2)).expect("open");
        assert!(matches!(
            merge(&rules, &mut a, closed, "x", at(3)),
            Err(MergeRefused::Closed { .. })
        ));
    }
}
