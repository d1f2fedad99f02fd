//! The reward catalogue: what members may spend their points on, priced by
//! the rules, so that the server, not the till, says what a reward costs
//! (Odoo's tests assert the server charges a reward's real cost, not the
//! one a client sent).
//!
//! ```yaml
//! rewards:
//!   - id: free-coffee
//!     name: A free coffee
//!     cost: 500                      # points
//!     min_tier: gold                 # optional: gold and the tiers above it
//!     from: 2026-12-01T00:00:00Z     # optional: offered from (UTC)
//!     until: 2027-01-01T00:00:00Z    # optional: and until, not included
//!     max_per_month: 2               # optional: per member, per calendar month
//! ```
//!
//! A limit counts the member's redemptions of the reward in the UTC day,
//! the week (Monday to Sunday), the calendar month or year of the
//! redemption, or over the membership (`max_per_member`); the member's
//! day totals keep the counts ([`Period`] says where a period starts).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;

use super::{Problem, RuleSet, Tier, values::Count};
use crate::script::did_you_mean;

/// One reward of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    /// What `RedeemPoints` names it by.
    pub id: String,
    /// In words, for the till and the app.
    pub name: String,
    /// Points it costs, charged by the server.
    pub cost: i64,
    /// The lowest tier that may have it (those above it too); `None`: all.
    pub min_tier: Option<String>,
    /// Offered from this moment; `None`: always was.
    pub from: Option<DateTime<Utc>>,
    /// Offered until just before this moment; `None`: no end.
    pub until: Option<DateTime<Utc>>,
    /// At most so many redemptions per member in a period, shortest
    /// period first.
    pub limits: Vec<Limit>,
}

/// The span a reward's limit counts a member's redemptions over (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Period {
    /// The day of the redemption.
    Day,
    /// Its week, Monday to Sunday.
    Week,
    /// Its calendar month.
    Month,
    /// Its calendar year.
    Year,
    /// The whole membership.
    Membership,
}

impl Period {
    /// The first day of the period holding `day`; `None` for the
    /// membership, which counts every redemption ever made.
    pub fn start(self, day: NaiveDate) -> Option<NaiveDate> {
        match self {
            Self::Day => Some(day),
            Self::Week => day.checked_sub_days(chrono::Days::new(u64::from(
                day.weekday().num_days_from_monday(),
            ))),
            Self::Month => day.with_day(1),
            Self::Year => day.with_ordinal(1),
            Self::Membership => None,
        }
    }

    /// "a day", "per member": how a limit's message says it.
    fn per(self) -> &'static str {
        match self {
            Self::Day => "a day",
            Self::Week => "a week (Monday to Sunday)",
            Self::Month => "a calendar month",
            Self::Year => "a calendar year",
            Self::Membership => "over the membership",
        }
    }
}

/// At most `max` redemptions per member in each `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The span counted.
    pub period: Period,
    /// Redemptions allowed in it, at least 1.
    pub max: i64,
}

/// Why a member cannot have a reward now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The member's tier is below the reward's lowest tier.
    #[error("reward `{reward}` is for {min_tier} and the tiers above it; the member is {tier}")]
    Tier {
        /// The reward's id.
        reward: String,
        /// Its lowest tier.
        min_tier: String,
        /// The member's tier.
        tier: String,
    },
    /// Not offered yet.
    #[error("reward `{reward}` is offered from {from}")]
    NotYet {
        /// The reward's id.
        reward: String,
        /// When it will be.
        from: DateTime<Utc>,
    },
    /// No longer offered.
    #[error("reward `{reward}` was offered until {until}")]
    Ended {
        /// The reward's id.
        reward: String,
        /// When it stopped.
        until: DateTime<Utc>,
    },
    /// The member has had it as often as its limit allows in the period.
    #[error(
        "reward `{reward}` is limited to {max} per member {}, and this member has had {had}",
        period.per()
    )]
    Limit {
        /// The reward's id.
        reward: String,
        /// The limit.
        max: i64,
        /// Its period.
        period: Period,
        /// Redemptions of it the member had in the period.
        had: i64,
    },
}

impl Reward {
    /// Whether a member in tier `tier_id` may have it at `at`, under
    /// `rules` (whose ladder ranks the tiers), and if not, why.
    ///
    /// # Errors
    /// [`Unavailable`], saying why.
    pub fn available(
        &self,
        rules: &RuleSet,
        tier_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Unavailable> {
        if let Some(min_tier) = &self.min_tier
            && rules.tier_index(tier_id) < rules.tier_index(min_tier)
        {
            return Err(Unavailable::Tier {
                reward: self.id.clone(),
                min_tier: min_tier.clone(),
                tier: tier_id.to_owned(),
            });
        }
        if let Some(from) = self.from.filter(|from| at < *from) {
            return Err(Unavailable::NotYet {
                reward: self.id.clone(),
                from,
            });
        }
        if let Some(until) = self.until.filter(|until| at >= *until) {
            return Err(Unavailable::Ended {
                reward: self.id.clone(),
                until,
            });
        }
        Ok(())
    }

    /// Whether one more redemption stays within every limit, `had` saying
    /// how many the member had in a period; if not, the first limit
    /// reached.
    ///
    /// # Errors
    /// [`Unavailable::Limit`].
    pub fn within_limits(&self, had: impl Fn(Period) -> i64) -> Result<(), Unavailable> {
        for limit in &self.limits {
            let had = had(limit.period);
            if had >= limit.max {
                return Err(Unavailable::Limit {
                    reward: self.id.clone(),
                    max: limit.max,
                    period: limit.period,
                    had,
                });
            }
        }
        Ok(())
    }
}

/// A reward as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RewardFile {
    id: String,
    name: String,
    cost: Count,
    #[serde(default)]
    min_tier: Option<String>,
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    until: Option<DateTime<Utc>>,
    #[serde(default)]
    max_per_day: Option<Count>,
    #[serde(default)]
    max_per_week: Option<Count>,
    #[serde(default)]
    max_per_month: Option<Count>,
    #[serde(default)]
    max_per_year: Option<Count>,
    #[serde(default)]
    max_per_member: Option<Count>,
}

impl RewardFile {
    /// The limits as written, shortest period first, with their keys.
    fn limits(&self) -> impl Iterator<Item = (&'static str, Limit)> {
        [
            ("max_per_day", Period::Day, self.max_per_day),
            ("max_per_week", Period::Week, self.max_per_week),
            ("max_per_month", Period::Month, self.max_per_month),
            ("max_per_year", Period::Year, self.max_per_year),
            ("max_per_member", Period::Membership, self.max_per_member),
        ]
        .into_iter()
        .filter_map(|(key, period, max)| max.map(|max| (key, Limit { period, max: max.0 })))
    }
}

/// Checks each reward against the ladder and the others: a known lowest
/// tier (with a did-you-mean), a cost above 0, an end after the start,
/// limits of at least 1, an id of its own.
pub(super) fn compile(
    raw: Vec<RewardFile>,
    tiers: &[Tier],
    problems: &mut Vec<Problem>,
) -> Vec<Reward> {
    let known: Vec<&str> = tiers.iter().map(|t| t.id.as_str()).collect();
    let mut rewards: Vec<Reward> = Vec::with_capacity(raw.len());
    for r in raw {
        let anchor = format!("id: {}", r.id);
        // At the reward's id, or at `needle` within the reward.
        let mut problem = |needle: Option<&str>, message: String| {
            problems.push(match needle {
                Some(needle) => Problem::inside(anchor.clone(), needle, message),
                None => Problem::inside("rewards:", anchor.clone(), message),
            });
        };
        if rewards.iter().any(|earlier| earlier.id == r.id) {
            problem(None, format!("reward `{}` is in the catalogue twice", r.id));
        }
        if r.cost.0 <= 0 {
            problem(
                None,
                format!("reward `{}` costs nothing: give it a `cost` above 0", r.id),
            );
        }
        if let Some(unknown) = r.min_tier.as_ref().filter(|t| !known.contains(&t.as_str())) {
            let message = format!(
                "reward `{}` names tier `{unknown}`, which the ladder does not have{}",
                r.id,
                did_you_mean(unknown, &known)
            );
            problem(Some(unknown), message);
        }
        if let (Some(from), Some(until)) = (r.from, r.until)
            && until <= from
        {
            problem(None, format!("reward `{}` ends before it starts", r.id));
        }
        for (key, limit) in r.limits().filter(|(_, limit)| limit.max < 1) {
            problem(
                Some(key),
                format!(
                    "reward `{}` has `{key}: {}`: a limit is at least 1 (to stop offering a reward, give it `until`)",
                    r.id, limit.max
                ),
            );
        }
        let limits = r.limits().map(|(_, limit)| limit).collect();
        rewards.push(Reward {
            id: r.id,
            name: r.name,
            cost: r.cost.0,
            min_tier: r.min_tier,
            from: r.from,
            until: r.until,
            limits,
        });
    }
    rewards
}
