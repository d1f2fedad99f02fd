//! Closing an account and reopening it (`CloseMember`, `ReopenMember`).
//!
//! A closed account earns and redeems nothing (the service refuses those
//! requests) and its tier stands still: no evaluation decides it until it
//! is reopened ([`super::apply::evaluate`]), and the sweep only lets its
//! points lapse. Its points are either forfeited on closing, as breakage
//! that day, or kept for a re-open. Reopening is possible within the
//! rules' `accounts.reopen_within_days` of closing, and decides the tier
//! under the rules then in force. Returns of its purchases are still taken
//! (money goes back whatever the account's state).

use chrono::{DateTime, TimeDelta, Utc};

use super::{
    apply::{Effect, evaluate},
    decide::{Change, ChangeKind},
    member::{Closure, MemberState},
};
use crate::rules::RuleSet;

/// Why a close or re-open is refused; nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountRefused {
    /// Closing an account that is closed.
    #[error("member {member:?} is closed already, since {since}")]
    AlreadyClosed {
        /// The member.
        member: String,
        /// When it was closed.
        since: DateTime<Utc>,
    },
    /// Reopening an account that is open.
    #[error("member {member:?} is not closed")]
    NotClosed {
        /// The member.
        member: String,
    },
    /// Reopening after the rules' period.
    #[error(
        "member {member:?} was closed on {since}; the rules allow reopening within {days} days of closing (until {until})"
    )]
    TooLate {
        /// The member.
        member: String,
        /// When it was closed.
        since: DateTime<Utc>,
        /// The rules' period.
        days: u32,
        /// The last moment it could have been reopened.
        until: DateTime<Utc>,
    },
}

/// The last moment an account closed as `closure` says may be reopened
/// under `rules`.
pub fn reopen_until(rules: &RuleSet, closure: &Closure) -> DateTime<Utc> {
    closure.at + TimeDelta::days(i64::from(rules.accounts.reopen_within_days))
}

/// Closes `member`'s account at `now` for `reason`, forfeiting its points
/// (as breakage that day) when `forfeit` says so. The effect's points are
/// those forfeited; its one change is CLOSED, the tier unchanged.
///
/// # Errors
/// [`AccountRefused::AlreadyClosed`]; nothing changes.
pub fn close(
    member: &mut MemberState,
    reason: &str,
    forfeit: bool,
    now: DateTime<Utc>,
) -> Result<Effect, AccountRefused> {
    if let Some(closure) = &member.closed {
        return Err(AccountRefused::AlreadyClosed {
            member: member.member_id.clone(),
            since: closure.at,
        });
    }
    let mut lapsed = member.expire(now);
    let forfeited = if forfeit {
        member.forfeit(now)
    } else {
        Vec::new()
    };
    let points = forfeited
        .iter()
        .fold(0_i64, |sum, lapse| sum.saturating_add(lapse.points));
    lapsed.extend(forfeited);
    member.closed = Some(Closure {
        at: now,
        reason: reason.to_owned(),
        points_forfeited: points,
    });
    let kept = if forfeit {
        format!("{points} points forfeited")
    } else {
        "points kept for a re-open".to_owned()
    };
    let tier = member.tier.tier_id.as_str();
    let closed = Change::new(
        ChangeKind::Closed,
        tier,
        tier,
        now,
        format!("closed: {reason}; {kept}"),
    );
    Ok(Effect {
        points,
        changes: vec![closed],
        lapsed,
        ..Effect::default()
    })
}

/// Reopens `member`'s closed account at `now` for `reason`, within the
/// rules' period: REOPENED, then the tier decided under `rules` at `now`
/// (points it kept lapse if their time came meanwhile; forfeited points
/// stay forfeited).
///
/// # Errors
/// [`AccountRefused::NotClosed`] or [`AccountRefused::TooLate`]; nothing
/// changes.
pub fn reopen(
    rules: &RuleSet,
    member: &mut MemberState,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Effect, AccountRefused> {
    let Some(closure) = &member.closed else {
        return Err(AccountRefused::NotClosed {
            member: member.member_id.clone(),
        });
    };
    let until = reopen_until(rules, closure);
    if now > until {
        return Err(AccountRefused::TooLate {
            member: member.member_id.clone(),
            since: closure.at,
            days: rules.accounts.reopen_within_days,
            until,
        });
    }
    member.closed = None;
    let lapsed = member.expire(now);
    let tier = member.tier.tier_id.as_str();
    let reopened = Change::new(
        ChangeKind::Reopened,
        tier,
        tier,
        now,
        format!("reopened: {reason}"),
    );
    let changes = std::iter::once(reopened)
        .chain(evaluate(rules, member, now))
        .collect();
    Ok(Effect {
        changes,
        lapsed,
        ..Effect::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{member::MemberState, tests::march as at};

    /// Forfeiting settles what the member owes from its lots first: only
    /// the balance is breakage, and nothing is owed afterwards.
    #[test]
    fn forfeiting_settles_a_debt_first_and_lapses_the_balance() {
        let mut m = MemberState::new("ann", "member", at(1));
        m.record_purchase("p1", 10_000, 100, at(1), None);
        m.record_purchase("p2", 5_000, 50, at(2), None);
        m.points_debt = 30;
        assert_eq!(m.points_balance(at(3)), 120);
        let effect = close(&mut m, "fraud", true, at(3)).expect("open");
        assert_eq!(effect.points, 120);
        let lapsed: Vec<(&str, i64)> = effect
            .lapsed
            .iter()
            .map(|l| (l.source.as_str(), l.points))
            .collect();
        assert_eq!(
            lapsed,
            [("p1", 120)],
            "the never-expiring points share one lot"
        );
        assert_eq!((m.points_balance(at(3)), m.points_debt), (0, 0));
        assert_eq!(
            m.days[&crate::domain::member::day_number(at(3))].points_lapsed,
            120
        );
        assert!(matches!(
            close(&mut m, "again", true, at(4)),
            Err(AccountRefused::AlreadyClosed { .. })
        ));
    }
}
