//! A member as a client sees it at one moment: tier, metrics, and what the
//! next tier still needs, rendered from the state and the rules when the
//! answer is given (never stored, so wording can change without touching
//! stored data).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    account, apply,
    decide::{self, Metrics, NextTier, Subject, TierOverride},
    member::{Closure, MemberState},
    merge::Alias,
    projection::{self, Projection},
};
use crate::rules::{Benefit, Reward, RuleSet};

/// A member as answered to a client at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The member's id.
    pub member_id: String,
    /// The current tier.
    pub tier_id: String,
    /// When the member entered it.
    pub tier_since: DateTime<Utc>,
    /// Metrics as of the answer's time.
    pub metrics: Metrics,
    /// What the next tier needs; `None` at the top.
    pub next_tier: Option<NextTier>,
    /// The rules version that answered.
    pub rules_version: String,
    /// The program currency.
    pub currency: String,
    /// Descriptive attributes.
    pub attributes: BTreeMap<String, String>,
    /// When the member joined.
    pub enrolled_at: DateTime<Utc>,
    /// The manual override in force, if any.
    pub tier_override: Option<TierOverride>,
    /// Set while the account is closed.
    pub closed: Option<ClosedView>,
    /// What the current tier gives.
    pub benefits: Vec<Benefit>,
    /// What the next tier gives (empty at the top).
    pub next_benefits: Vec<Benefit>,
    /// The balance's worth at `reporting.point_value`, minor units.
    pub points_value_minor: i64,
    /// Where the member is heading at its pace.
    pub projection: Option<Projection>,
    /// What does not count toward the tier (the rules' `qualifying`), in
    /// words, so that a till can explain the figures; `None`: everything
    /// counts.
    pub qualifying_basis: Option<String>,
    /// Rewards the member may have now (tier, dates, limits).
    pub rewards: Vec<RewardOffer>,
    /// Rewards the next tier opens (empty at the top).
    pub next_rewards: Vec<RewardOffer>,
    /// When the member was asked for by an id merged into it: that id's
    /// alias (where it went, when and why). Filled by the reader, who
    /// knows what was asked.
    pub asked_as: Option<Alias>,
    /// The ids merged into this member, filled by the reader (empty when
    /// it did not look).
    pub merged_ids: Vec<String>,
}

/// A closed account as answered: why and when, and until when it may be
/// reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedView {
    /// The closure as stored.
    pub closure: Closure,
    /// The last moment `ReopenMember` restores it.
    pub reopen_until: DateTime<Utc>,
}

/// A reward of the catalogue as offered to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardOffer {
    /// Its id, for `RedeemPoints`.
    pub id: String,
    /// In words.
    pub name: String,
    /// Points it costs.
    pub cost: i64,
    /// Whether the member's balance covers it now.
    pub affordable: bool,
}

/// The rewards of the catalogue `may_have` lets through, as offered to a
/// member with `balance` points.
fn offers(rules: &RuleSet, balance: i64, may_have: impl Fn(&Reward) -> bool) -> Vec<RewardOffer> {
    rules
        .rewards
        .iter()
        .filter(|reward| may_have(reward))
        .map(|reward| RewardOffer {
            id: reward.id.clone(),
            name: reward.name.clone(),
            cost: reward.cost,
            affordable: balance >= reward.cost,
        })
        .collect()
}

/// The member as answered to clients at `at`, under `rules`.
pub fn view(rules: &RuleSet, member: &MemberState, at: DateTime<Utc>) -> MemberView {
    let metrics = apply::metrics(rules, member, at);
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
        lifecycle: None,
    };
    let next_tier = decide::next_tier(rules, &member.tier.tier_id, subject);
    let projection =
        projection::project(rules, &member.tier.tier_id, subject, member.enrolled_at, at);
    let balance = metrics.points_balance;
    let tier_id = member.tier.tier_id.as_str();
    let open = |tier: &str, reward: &Reward| reward.available(rules, tier, at).is_ok();
    let within_limits = |reward: &Reward| {
        reward
            .within_limits(|period| member.rewards_had(&reward.id, period, at))
            .is_ok()
    };
    let rewards = offers(rules, balance, |r| open(tier_id, r) && within_limits(r));
    let next_rewards = next_tier.as_ref().map_or_else(Vec::new, |next| {
        offers(rules, balance, |r| {
            open(&next.tier_id, r) && !open(tier_id, r)
        })
    });
    let benefits_of = |id: Option<&str>| {
        rules
            .tiers
            .iter()
            .find(|t| Some(t.id.as_str()) == id)
            .map(|t| t.benefits.clone())
            .unwrap_or_default()
    };
    MemberView {
        member_id: member.member_id.clone(),
        tier_id: member.tier.tier_id.clone(),
        tier_since: member.tier.since,
        benefits: benefits_of(Some(&member.tier.tier_id)),
        next_benefits: benefits_of(next_tier.as_ref().map(|n| n.tier_id.as_str())),
        points_value_minor: metrics
            .points_balance
            .saturating_mul(rules.reporting.point_value_minor),
        next_tier,
        projection,
        metrics,
        rules_version: rules.version.clone(),
        currency: rules.currency.code().to_owned(),
        attributes: member.attributes.clone(),
        enrolled_at: member.enrolled_at,
        tier_override: member.tier.tier_override.clone(),
        closed: member.closed.as_ref().map(|closure| ClosedView {
            closure: closure.clone(),
            reopen_until: account::reopen_until(rules, closure),
        }),
        qualifying_basis: rules.qualifying.describe().map(str::to_owned),
        rewards,
        next_rewards,
        asked_as: None,
        merged_ids: Vec::new(),
    }
}
