//! What each event does to a member under the rules: expiry, points, the
//! ledger entry and the tier decision, with no I/O.
//!
//! This is the one code path for every event kind. The service
//! (`crate::app`) validates a request, applies it here and commits the
//! result; `tierd rules test` plays marketers' dated event stories through
//! the same functions, `simulate` sweeps copies of stored members with
//! them, and the seeding tool grows synthetic members with them. Each
//! function takes the moment the event is received (`now`) apart from when
//! it happened (`occurred_at`): a late purchase counts on its own day but
//! is judged by today's window.
//!
//! Every event first lets points due by `now` expire. Lots that lapse are
//! reported in [`Effect::lapsed`], so that whoever keeps the purchases'
//! receipts can record what of each purchase lapsed (a later return must
//! not take those points a second time).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    decide::{self, Change, ChangeKind, Metrics, OverrideMode, Subject, TierOverride},
    earn::{self, Overearned, Purchase, PurchaseFacts},
    member::{InsufficientPoints, Lapse, MemberState},
    receipt::{LineTrack, OrderRedemptions, PurchaseTrack, ReturnRefused, Returned},
};
use crate::rules::{Activity, RuleSet, TierRateApplies, Unavailable};

/// What an event did to a member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    /// Points earned (purchase, activity), taken back from the balance
    /// (return), or moved (adjustment, redemption).
    pub points: i64,
    /// True when a daily or monthly cap kept an activity from earning.
    pub capped: bool,
    /// Tier changes, in order.
    pub changes: Vec<Change>,
    /// Lots that lapsed on the way, by the transaction that earned them.
    pub lapsed: Vec<Lapse>,
    /// Money a return refunded, minor units.
    pub refunded_minor: i64,
    /// Redeemed points a return gave back (its order's redemptions).
    pub points_recredited: i64,
    /// True when the event changed the member without deciding its tier
    /// (a redemption): its due moment is then now, for the next sweep.
    pub undecided: bool,
    /// Why the bonus script gave a purchase nothing, when it failed.
    pub script_failure: Option<String>,
}

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
    let initial = Change::new(
        ChangeKind::Initial,
        "",
        entry,
        enrolled_at,
        "enrolled".into(),
    );
    (member, vec![initial])
}

/// Runs the engine on a member at `at` and keeps the new tier state. An
/// AT_RISK event is told what it takes to stay: the `retain` thresholds
/// the member would still miss on the due date if nothing more happened.
/// A closed account is not decided: its tier stands still until it is
/// reopened (`super::account`).
pub fn evaluate(rules: &RuleSet, member: &mut MemberState, at: DateTime<Utc>) -> Option<Change> {
    if member.closed.is_some() {
        return None;
    }
    let metrics = metrics(rules, member, at);
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
        lifecycle: None,
    };
    let evaluation = decide::evaluate(rules, &member.tier, subject, at);
    member.tier = evaluation.state;
    let mut change = evaluation.change?;
    if let Some(at_risk) = change.at_risk.as_mut() {
        let due = at_risk.demotion_at;
        let then = self::metrics(rules, member, due);
        let subject = Subject {
            metrics: &then,
            ..subject
        };
        let (words, to_stay) = decide::to_keep(rules, &change.from_tier, subject);
        if let Some(words) = words {
            change
                .reason
                .push_str(&format!("; to stay: {words} by {}", due.date_naive()));
        }
        at_risk.to_stay = to_stay;
    }
    Some(change)
}

/// The member's metrics over the rules' window ending at `at`.
pub fn metrics(rules: &RuleSet, member: &MemberState, at: DateTime<Utc>) -> Metrics {
    member.metrics(
        decide::window_start(rules.window, at, member.enrolled_at),
        at,
    )
}

/// When points earned at `at` lapse under `rules`.
fn expiry(rules: &RuleSet, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    rules.points_expiry.and_then(|e| e.lapse_at(at))
}

/// The periodic sweep (EvaluateTiers) of one member as of `as_of`: points
/// due expire, then the tier is decided.
pub fn sweep(rules: &RuleSet, member: &mut MemberState, as_of: DateTime<Utc>) -> Effect {
    let lapsed = member.expire(as_of);
    Effect {
        changes: evaluate(rules, member, as_of).into_iter().collect(),
        lapsed,
        ..Effect::default()
    }
}

/// Records a purchase received at `now`; returns what a return will need
/// (points earned included) and the effect.
///
/// # Errors
/// [`Overearned`] when the rules would pay it more than
/// `earning.max_points_per_event`; the caller keeps nothing of `member`.
pub fn purchase(
    rules: &RuleSet,
    member: &mut MemberState,
    purchase: &Purchase<'_>,
    now: DateTime<Utc>,
) -> Result<(PurchaseTrack, Effect), Overearned> {
    let lapsed = member.expire(now);
    let earned = purchase_points(rules, member, purchase, now)?;
    let script_failure = earned.script_failure.clone();
    let track = track_of(rules, purchase, earned);
    let points = track.points;
    member.record_qualified_purchase(
        purchase.transaction_id,
        track.qualified(),
        points,
        purchase.occurred_at,
        expiry(rules, purchase.occurred_at),
    );
    let effect = Effect {
        points,
        changes: evaluate(rules, member, now).into_iter().collect(),
        lapsed,
        script_failure,
        ..Effect::default()
    };
    Ok((track, effect))
}

/// What returns will need of `purchase`, which `earned` what it did: its
/// lines with what each earned and whether it counts toward the tier, and
/// what rules with a minimum paid.
fn track_of(rules: &RuleSet, purchase: &Purchase<'_>, earned: earn::Earned) -> PurchaseTrack {
    PurchaseTrack {
        lines: purchase
            .lines
            .iter()
            .zip(earned.per_line)
            .map(|(line, points)| LineTrack {
                qualifies: rules.qualifying.counts(line.view()),
                ..LineTrack::new(&line.sku, line.quantity, line.amount_minor, points)
            })
            .collect(),
        minimums: earned.minimums,
        ..PurchaseTrack::new(purchase.amount_minor, earned.points, purchase.occurred_at)
    }
}

/// What `purchase` earns `member` (not yet recorded), line by line. With
/// `tier_rate_applies: after`, the tier multiplier is the one of the tier
/// the purchase brings the member to, judged on a copy of the member that
/// holds the purchase with its points before any tier multiplier.
fn purchase_points(
    rules: &RuleSet,
    member: &MemberState,
    purchase: &Purchase<'_>,
    now: DateTime<Utc>,
) -> Result<earn::Earned, Overearned> {
    let metrics = metrics(rules, member, now);
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
        lifecycle: None,
    };
    let before = member.tier.tier_id.as_str();
    let facts = PurchaseFacts {
        purchase,
        tier_id: before,
        rate_tier: Some(before),
    };
    if rules.earning.tier_rate_applies == TierRateApplies::Before
        || rules.earning.tier_multipliers.is_empty()
    {
        return earn::purchase_earnings(rules, facts, subject);
    }
    let untiered = PurchaseFacts {
        rate_tier: None,
        ..facts
    };
    let untiered = track_of(
        rules,
        purchase,
        earn::purchase_earnings(rules, untiered, subject)?,
    );
    let mut reached = member.clone();
    reached.record_qualified_purchase(
        purchase.transaction_id,
        untiered.qualified(),
        untiered.points,
        purchase.occurred_at,
        expiry(rules, purchase.occurred_at),
    );
    evaluate(rules, &mut reached, now);
    let after = PurchaseFacts {
        rate_tier: Some(&reached.tier.tier_id),
        ..facts
    };
    earn::purchase_earnings(rules, after, subject)
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
///
/// # Errors
/// [`Overearned`] when the rules would pay it more than
/// `earning.max_points_per_event`; the caller keeps nothing of `member`.
pub fn activity(
    rules: &RuleSet,
    member: &mut MemberState,
    activity: &Activity,
    facts: &ActivityFacts<'_>,
    now: DateTime<Utc>,
) -> Result<Effect, Overearned> {
    let ActivityFacts {
        transaction_id,
        kind,
        details,
        occurred_at,
    } = *facts;
    let lapsed = member.expire(now);
    let (today, month) = member.activities_of(kind, occurred_at);
    let capped = activity.max_per_day.is_some_and(|cap| today >= cap)
        || activity.max_per_month.is_some_and(|cap| month >= cap);
    let metrics = metrics(rules, member, now);
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
        lifecycle: None,
    };
    let ceiling = rules.earning.max_points_per_event;
    let earned = earn::points_for_activity(activity, kind, details, subject, ceiling)?;
    let points = if capped { 0 } else { earned };
    member.record_activity(
        transaction_id,
        kind,
        points,
        occurred_at,
        expiry(rules, occurred_at),
    );
    Ok(Effect {
        points,
        capped,
        changes: evaluate(rules, member, now).into_iter().collect(),
        lapsed,
        ..Effect::default()
    })
}

/// A return of `what` of the purchase `original` (tracked by `track`,
/// which is updated, lapses of its own points included), received at
/// `now`. When points were redeemed against the purchase as an order
/// (`order`, updated), the same share of them comes back as redeemable
/// points. The effect's points are the redeemable points taken back; its
/// lapses are those of the member's other lots.
///
/// # Errors
/// [`ReturnRefused`] when the return does not fit what is left of the
/// purchase; nothing changes.
pub fn return_purchase(
    rules: &RuleSet,
    member: &mut MemberState,
    original: &str,
    track: &mut PurchaseTrack,
    what: Returned<'_>,
    order: Option<&mut OrderRedemptions>,
    now: DateTime<Utc>,
) -> Result<Effect, ReturnRefused> {
    track.take_back(what)?;
    let mut lapsed = member.expire(now);
    lapsed.retain(|lapse| {
        let own = lapse.source == original;
        if own {
            track.record_lapse(lapse.points);
        }
        !own
    });
    let back = track.take_back(what)?;
    member.record_return(original, track.occurred_at, now, &back);
    track.record_return(&back);
    let recredited = order.map_or(0, |order| {
        let due = order.due_after(track);
        order.recredited = order.recredited.saturating_add(due);
        due
    });
    if recredited > 0 {
        member.recredit(original, recredited, now, expiry(rules, now));
    }
    Ok(Effect {
        points: back.redeemable_points,
        changes: evaluate(rules, member, now).into_iter().collect(),
        lapsed,
        refunded_minor: back.amount_minor,
        points_recredited: recredited,
        ..Effect::default()
    })
}

/// A staff adjustment of `points` (either sign) received at `now`, booked
/// at `occurred_at` (its day, its window, its expiry).
pub fn adjust(
    rules: &RuleSet,
    member: &mut MemberState,
    transaction_id: &str,
    points: i64,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Effect {
    let mut lapsed = member.expire(now);
    member.adjust(
        transaction_id,
        points,
        occurred_at,
        expiry(rules, occurred_at),
    );
    // Points backdated past their expiry lapse at once.
    lapsed.extend(member.expire(now));
    Effect {
        points,
        changes: evaluate(rules, member, now).into_iter().collect(),
        lapsed,
        ..Effect::default()
    }
}

/// Spends `points` of the balance at `now`, for the catalogue's `reward`
/// if one is named (its limits count it). Redeeming never costs a member
/// their tier: it changes nothing a tier condition may read (the rules
/// refuse `points_balance` in tier conditions), so the tier is not even
/// evaluated here; a demotion that time has made due waits for the next
/// event or sweep.
///
/// # Errors
/// [`InsufficientPoints`] when the balance is smaller; nothing but the
/// expiry of due points changes.
pub fn redeem(
    member: &mut MemberState,
    points: i64,
    reward: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Effect, InsufficientPoints> {
    let lapsed = member.expire(now);
    member.redeem(points, reward, now)?;
    Ok(Effect {
        points,
        lapsed,
        undecided: true,
        ..Effect::default()
    })
}

/// Why a redemption of a reward is refused; nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewardRefused {
    /// The catalogue has no such reward.
    #[error("no reward {id:?} in the catalogue of rules {version}{suggestion}")]
    Unknown {
        /// The id asked for.
        id: String,
        /// The rules' version label.
        version: String,
        /// "; did you mean `x`?", or nothing.
        suggestion: String,
    },
    /// The client's own figure is not the reward's cost.
    #[error(
        "reward `{id}` costs {cost} points, not {sent}: send 0 (or {cost}) and the server charges its cost"
    )]
    Cost {
        /// The reward.
        id: String,
        /// What it costs.
        cost: i64,
        /// What the client sent.
        sent: i64,
    },
    /// The member may not have it now (tier, dates).
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// The points redeeming reward `id` of the catalogue costs `member` at
/// `now`: its cost, which the server charges. A client's own figure
/// (`sent`) must be that cost, and the member must be allowed the reward
/// now (its tier, its dates) and within the reward's limits.
///
/// # Errors
/// [`RewardRefused`], saying why.
pub fn reward_cost(
    rules: &RuleSet,
    member: &MemberState,
    id: &str,
    sent: Option<i64>,
    now: DateTime<Utc>,
) -> Result<i64, RewardRefused> {
    let reward = rules.reward(id).ok_or_else(|| {
        let known: Vec<&str> = rules.rewards.iter().map(|r| r.id.as_str()).collect();
        RewardRefused::Unknown {
            id: id.to_owned(),
            version: rules.version.clone(),
            suggestion: crate::rules::did_you_mean(id, &known),
        }
    })?;
    if let Some(sent) = sent.filter(|sent| *sent != reward.cost) {
        return Err(RewardRefused::Cost {
            id: id.to_owned(),
            cost: reward.cost,
            sent,
        });
    }
    reward.available(rules, &member.tier.tier_id, now)?;
    reward.within_limits(|period| member.rewards_had(id, period, now))?;
    Ok(reward.cost)
}

/// A manual placement by customer service: a floor or lock on `tier_id`
/// (`placement`), or `None` to clear the override in force.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The override to put in place; `None` clears it.
    pub tier_override: Option<TierOverride>,
    /// Why, as customer service wrote it.
    pub reason: String,
}

/// Sets or clears a manual override at `now`: one MANUAL change (even
/// when the tier stays), then an evaluation (which may promote at once,
/// and never demotes without the grace period). A placement that changes
/// nothing (the same tier, mode and end already in force, or a clear with
/// no override in force) changes nothing and makes no change entry.
pub fn place_by_hand(
    rules: &RuleSet,
    member: &mut MemberState,
    placement: Placement,
    now: DateTime<Utc>,
) -> Vec<Change> {
    if changes_nothing(member, &placement, now) {
        return Vec::new();
    }
    let from = member.tier.tier_id.clone();
    let current = rules.tier_index(&from).unwrap_or(0);
    let (to, reason) = match &placement.tier_override {
        None => (current, format!("override cleared: {}", placement.reason)),
        Some(placed) => {
            let target = rules.tier_index(&placed.tier_id).unwrap_or(0);
            let (to, word) = match placed.mode {
                OverrideMode::Lock => (target, "locked at"),
                OverrideMode::Floor => (current.max(target), "floor set at"),
            };
            (
                to,
                format!("{word} {}: {}", placed.tier_id, placement.reason),
            )
        }
    };
    member.tier.tier_override = placement.tier_override;
    let to = rules.tiers[to].id.clone();
    if to != from {
        member.tier.tier_id.clone_from(&to);
        member.tier.since = now;
    }
    member.tier.retain_failing_since = None;
    member.tier.warned = false;
    let manual = Change::new(ChangeKind::Manual, &from, &to, now, reason);
    std::iter::once(manual)
        .chain(evaluate(rules, member, now))
        .collect()
}

/// Whether `placement` is what is in force already at `now`.
fn changes_nothing(member: &MemberState, placement: &Placement, now: DateTime<Utc>) -> bool {
    let in_force = member
        .tier
        .tier_override
        .as_ref()
        .filter(|current| current.until.is_none_or(|until| now < until));
    match (in_force, &placement.tier_override) {
        (None, None) => true,
        (Some(current), Some(placed)) => {
            current.tier_id == placed.tier_id
                && current.mode == placed.mode
                && current.until == placed.until
        }
        _ => false,
    }
}

/// Merges descriptive attributes (an empty value removes its key), sets
/// the enrolment time when given, and re-evaluates at `now` (scripts may
/// read attributes).
pub fn update_profile(
    rules: &RuleSet,
    member: &mut MemberState,
    attributes: &BTreeMap<String, String>,
    enrolled_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Change> {
    member.enrolled_at = enrolled_at.unwrap_or(member.enrolled_at);
    for (key, value) in attributes {
        if value.is_empty() {
            member.attributes.remove(key);
        } else {
            member.attributes.insert(key.clone(), value.clone());
        }
    }
    evaluate(rules, member, now)
}
