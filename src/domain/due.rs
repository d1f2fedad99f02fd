//! When the periodic sweep next has something to do for a member.
//!
//! Between events, only time changes a member: a points lot lapses, a day
//! of its totals leaves the qualification window, a grace period or its
//! early warning comes due, a manual override runs out. Each of these
//! happens at a moment known as soon as the member has been decided, so
//! the store keeps that moment per member and the sweep (`EvaluateTiers`)
//! reads only the members whose moment has come instead of all of them.
//!
//! The promise, checked by a property test on random event stories: a
//! member decided at `at` and swept at any moment before [`next_due`]'s
//! answer changes in nothing, so skipping it is exactly what the full
//! sweep would have done. The moment may come early (then the sweep
//! decides the member, finds nothing to do, and works out the next
//! moment), never late.
//!
//! The moment depends on the rules (the window, the grace period), so it is
//! kept with the rules it was worked out under ([`RulesId`]): after a
//! reload every member is due until it has been decided under the new
//! rules.

use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};

use super::{
    apply::metrics,
    decide::{self, Subject, window_start},
    member::{MemberState, day_number},
};
use crate::rules::{RuleSet, Window};

/// Which rules a due moment was worked out under: the first eight bytes of
/// the rules' content hash, so that two files with the same content (and
/// so the same decisions) share it whatever their version labels.
pub type RulesId = u64;

/// The identity of `rules` for due moments.
pub fn rules_id(rules: &RuleSet) -> RulesId {
    rules
        .content_hash
        .get(..16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(0)
}

/// When the sweep must next decide a member, under which rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The rules the moment was worked out under; under other rules the
    /// member is due at once.
    pub rules: RulesId,
    /// The moment; `None` when time alone can never change the member.
    pub at: Option<DateTime<Utc>>,
}

impl Due {
    /// Due at `at` whatever happens: for a member changed without being
    /// decided (a redemption), which the next sweep decides.
    pub fn now(rules: &RuleSet, at: DateTime<Utc>) -> Self {
        Due {
            rules: rules_id(rules),
            at: Some(at),
        }
    }
}

/// The first moment after `at` at which time alone can change `member`,
/// decided under `rules` at `at` (by an event or a sweep); `at` itself
/// when deciding it again would change it.
///
/// `moved` says whether that decision made a change. A decision that made
/// none is its own fixpoint (deciding again at `at` changes nothing), so
/// only after a change is the member decided a second time to see whether
/// it has settled: the common event, which changes no tier, pays nothing
/// for it.
pub fn next_due(rules: &RuleSet, member: &MemberState, at: DateTime<Utc>, moved: bool) -> Due {
    // A lot past its time that no event has lapsed yet (a manual placement
    // lapses none) is due at once.
    let lapse = member
        .lots
        .front()
        .and_then(|lot| lot.expires_at)
        .map(|lapse| lapse.max(at));
    if member.closed.is_some() {
        // Nothing is decided for a closed account: only its points lapse.
        return Due {
            rules: rules_id(rules),
            at: lapse,
        };
    }
    if moved && !settled(rules, member, at) {
        return Due::now(rules, at);
    }
    let tier = &member.tier;
    let override_ends = tier.tier_override.as_ref().and_then(|o| o.until);
    let grace = TimeDelta::days(i64::from(rules.demotion.grace_days));
    let demotion = tier.retain_failing_since.map(|since| since + grace);
    let warning = demotion
        .zip(rules.demotion.warn_days_before)
        .filter(|_| !tier.warned)
        .map(|(due, days)| due - TimeDelta::days(i64::from(days)));
    let decay = window_decay(rules.window, member, at);
    let due = [override_ends, demotion, warning, decay]
        .into_iter()
        .flatten()
        .filter(|&moment| moment > at)
        .chain(lapse)
        .min();
    Due {
        rules: rules_id(rules),
        at: due,
    }
}

/// Whether deciding `member` again at `at` would change nothing. A
/// promotion leaves it unsettled: the new tier's `retain` is first checked
/// at the next decision (which may start its grace period).
fn settled(rules: &RuleSet, member: &MemberState, at: DateTime<Utc>) -> bool {
    let metrics = metrics(rules, member, at);
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
        lifecycle: None,
    };
    let again = decide::evaluate(rules, &member.tier, subject, at);
    again.change.is_none() && again.state == member.tier
}

/// How far before the true moment the estimate of when a day leaves the
/// window may lie: months of different lengths, and 29 February, move it
/// by at most three days.
const SLACK_DAYS: i64 = 4;

/// When the oldest day with totals inside the window at `at` leaves it (the
/// window's metrics change by themselves then); `None` when the window
/// holds no day.
fn window_decay(window: Window, member: &MemberState, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = window_start(window, at, member.enrolled_at);
    if start > at {
        return None;
    }
    let (&oldest, _) = member
        .days
        .range(day_number(start)..=day_number(at))
        .next()?;
    let after = midnight_after(oldest)?;
    let estimate = match window {
        Window::RollingMonths(months) => after.checked_add_months(Months::new(months))?,
        // Every day of a calendar or anniversary window leaves at once, a
        // year after the window started.
        Window::CalendarYear | Window::AnniversaryYear => {
            start.checked_add_months(Months::new(12))?
        }
    } - TimeDelta::days(SLACK_DAYS);
    // The window's first day moves only at midnights: step from the
    // estimate to the first midnight that leaves `oldest` behind (or stop
    // early, which only makes the sweep look sooner).
    let mut moment = estimate.max(after);
    for _ in 0..2 * SLACK_DAYS {
        if day_number(window_start(window, moment, member.enrolled_at)) > oldest {
            break;
        }
        moment += TimeDelta::days(1);
    }
    Some(moment)
}

/// Midnight (UTC) at the end of day number `day`.
fn midnight_after(day: i32) -> Option<DateTime<Utc>> {
    NaiveDate::from_num_days_from_ce_opt(day.checked_add(1)?)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
}
