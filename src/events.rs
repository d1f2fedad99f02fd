//! What each event does to a member under the rules: expiry, points, the
//! ledger entry and the tier decision, with no I/O.
//!
//! The service ([`crate::program`]) validates a request, applies it here and
//! commits the result; `tierd rules test` plays marketers' dated event
//! sequences through the very same functions, so a rules test exercises
//! exactly what production does. Each function takes the moment the event
//! is received (`now`) apart from when it happened (`occurred_at`): a late
//! purchase counts on its own day but is judged by today's window.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::{
    engine::{self, Change, ChangeKind, Metrics, PurchaseFacts, Subject},
    ledger::{InsufficientPoints, MemberState, PurchaseTrack},
    rules::{Activity, RuleSet},
};

/// The member as stored, or a new one in the entry tier with its INITIAL
/// change (a member exists from its first event).
pub fn member_or_new(
    rules: &RuleSet,
    existing: Option<MemberState>,
    member_id: &str,
    enrolled_at: DateTime<Utc>,
) -> (MemberState, Vec<Change>) {
    if let Some(member) = existing {
        return (member, Vec::new());
    }
    let entry = &rules.entry_tier().id;
    let member = MemberState::new(member_id, entry, enrolled_at);
    let initial = Change {
        from_tier: String::new(),
        to_tier: entry.clone(),
        kind: ChangeKind::Initial,
        at: enrolled_at,
        reason: String::from("enrolled"),
    };
    (member, vec![initial])
}

/// Runs the engine on a member at `at` and keeps the new tier state.
pub fn evaluate(rules: &RuleSet, member: &mut MemberState, at: DateTime<Utc>) -> Option<Change> {
    let metrics = metrics(rules, member, at);
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
    };
    let evaluation = engine::evaluate(rules, &member.tier, subject, at);
    member.tier = evaluation.state;
    evaluation.change
}

/// The periodic sweep (EvaluateTiers) of one member as of `as_of`: points
/// due expire, then the tier is decided. Returns the points that lapsed.
pub fn sweep(
    rules: &RuleSet,
    member: &mut MemberState,
    as_of: DateTime<Utc>,
) -> (i64, Option<Change>) {
    let expired = member.expire(as_of);
    (expired, evaluate(rules, member, as_of))
}

/// A purchase as the till reports it.
#[derive(Debug, Clone, Copy)]
pub struct Purchase<'a> {
    /// Its transaction id: the points lot is named after it.
    pub transaction_id: &'a str,
    /// Amount paid, minor units.
    pub amount_minor: i64,
    /// Sales channel.
    pub channel: &'a str,
    /// Store.
    pub store_id: &'a str,
    /// Tags (for tag multipliers and campaigns).
    pub tags: &'a [String],
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// Records a purchase received at `now`; returns what a return will need
/// (points earned included) and the tier change it caused.
pub fn purchase(
    rules: &RuleSet,
    member: &mut MemberState,
    purchase: &Purchase<'_>,
    now: DateTime<Utc>,
) -> (PurchaseTrack, Option<Change>) {
    member.expire(now);
    let metrics = metrics(rules, member, now);
    let facts = PurchaseFacts {
        amount_minor: purchase.amount_minor,
        channel: purchase.channel,
        store_id: purchase.store_id,
        tags: purchase.tags,
        occurred_at: purchase.occurred_at,
        tier_id: &member.tier.tier_id,
    };
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
    };
    let points = engine::points_for_purchase(rules, facts, subject);
    member.record_purchase(
        purchase.transaction_id,
        purchase.amount_minor,
        points,
        purchase.occurred_at,
        rules.points_expiry_months,
    );
    let track = PurchaseTrack {
        amount_minor: purchase.amount_minor,
        points,
        occurred_at: purchase.occurred_at,
        returned_minor: 0,
        points_reversed: 0,
    };
    (track, evaluate(rules, member, now))
}

/// What an activity earned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityOutcome {
    /// Points earned (0 beyond a cap).
    pub points: i64,
    /// True when a daily or monthly cap kept it from earning.
    pub capped: bool,
    /// The tier change it caused.
    pub change: Option<Change>,
}

/// An activity as the service reports it.
#[derive(Debug, Clone, Copy)]
pub struct ActivityFacts<'a> {
    /// Its transaction id: a points lot is named after it.
    pub transaction_id: &'a str,
    /// The kind ("review"), which the rules know.
    pub kind: &'a str,
    /// What the activity scripts may read.
    pub details: &'a BTreeMap<String, String>,
    /// When it happened (caps count per day and month of this).
    pub occurred_at: DateTime<Utc>,
}

/// Records an activity (earning by `activity`, the rules for its kind)
/// received at `now`: points within the caps, engagement always.
pub fn activity(
    rules: &RuleSet,
    member: &mut MemberState,
    activity: &Activity,
    facts: &ActivityFacts<'_>,
    now: DateTime<Utc>,
) -> ActivityOutcome {
    let ActivityFacts {
        transaction_id,
        kind,
        details,
        occurred_at,
    } = *facts;
    member.expire(now);
    let (today, month) = member.activities_of(kind, occurred_at);
    let capped = activity.max_per_day.is_some_and(|cap| today >= cap)
        || activity.max_per_month.is_some_and(|cap| month >= cap);
    let metrics = metrics(rules, member, now);
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
    };
    let earned = engine::points_for_activity(activity, kind, details, subject);
    let points = if capped { 0 } else { earned };
    member.record_activity(
        transaction_id,
        kind,
        points,
        occurred_at,
        rules.points_expiry_months,
    );
    ActivityOutcome {
        points,
        capped,
        change: evaluate(rules, member, now),
    }
}

/// More was returned than is left of the purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnTooLarge {
    /// What is still returnable, minor units.
    pub returnable_minor: i64,
}

/// Takes back `amount_minor` of the purchase `original` (tracked by
/// `track`, which is updated) received at `now`; returns the points taken
/// back and the tier change.
///
/// # Errors
/// [`ReturnTooLarge`] when more is returned than is left; nothing changes.
pub fn return_purchase(
    rules: &RuleSet,
    member: &mut MemberState,
    original: &str,
    track: &mut PurchaseTrack,
    amount_minor: i64,
    now: DateTime<Utc>,
) -> Result<(i64, Option<Change>), ReturnTooLarge> {
    let returnable_minor = track.returnable_minor();
    if amount_minor > returnable_minor {
        return Err(ReturnTooLarge { returnable_minor });
    }
    let points = track.points_for_return(amount_minor);
    member.expire(now);
    member.record_return(
        original,
        track.occurred_at,
        amount_minor,
        points,
        amount_minor == returnable_minor,
    );
    track.returned_minor += amount_minor;
    track.points_reversed += points;
    Ok((points, evaluate(rules, member, now)))
}

/// A staff adjustment of `points` (either sign) at `now`.
pub fn adjust(
    rules: &RuleSet,
    member: &mut MemberState,
    transaction_id: &str,
    points: i64,
    now: DateTime<Utc>,
) -> Option<Change> {
    member.expire(now);
    member.adjust(transaction_id, points, now, rules.points_expiry_months);
    evaluate(rules, member, now)
}

/// Spends `points` of the balance at `now`.
///
/// # Errors
/// [`InsufficientPoints`] when the balance is smaller; nothing changes.
pub fn redeem(
    rules: &RuleSet,
    member: &mut MemberState,
    points: i64,
    now: DateTime<Utc>,
) -> Result<Option<Change>, InsufficientPoints> {
    member.redeem(points, now)?;
    Ok(evaluate(rules, member, now))
}

/// The member's metrics over the rules' window ending at `at`.
pub fn metrics(rules: &RuleSet, member: &MemberState, at: DateTime<Utc>) -> Metrics {
    member.metrics(
        engine::window_start(rules.window, at, member.enrolled_at),
        at,
    )
}
