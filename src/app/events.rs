//! One method per write the service takes. Each follows the same steps:
//! take the rules in force once, check what needs the rules or the clock
//! under exactly that version, then apply the event on the writer thread
//! under the same version ([`super::write`]).

use chrono::{DateTime, Utc};

use super::{
    Program, ProgramError,
    command::{
        ActivityEvent, Adjustment, Keyed, OverrideCommand, Purchase, Redemption, Return, Upsert,
    },
    input::{Amount, LIMITS, event_time},
    write::{Applied, WriteJob, WriteKey, job, landing, number},
};
use crate::{
    domain::{
        apply::{self, Effect, Placement, RewardRefused},
        books::{self, Books as _, ReturnError},
        decide::TierOverride,
        due, earn,
        member::MemberState,
        receipt::{OrderRedemptions, ReturnRefused, Returned},
        view::{self, MemberView},
    },
    money::Currency,
    rules::{self, RuleSet},
    store::{Commit, Writer},
};

/// The error for a return that does not fit its purchase `original_id`.
fn return_refused(original_id: &str, refused: ReturnRefused) -> ProgramError {
    match refused {
        ReturnRefused::TooLarge { returnable_minor } => ProgramError::invalid(
            "amount_minor",
            format!(
                "the return exceeds what is left unreturned of {original_id:?}: {returnable_minor}"
            ),
        ),
        ReturnRefused::NoLines => ProgramError::precondition(
            "lines",
            format!(
                "lines: purchase {original_id:?} was recorded without lines; return it by amount_minor"
            ),
        ),
        ReturnRefused::AmountMismatch { .. } => {
            ProgramError::invalid("amount_minor", refused.to_string())
        }
        ReturnRefused::UnknownSku { .. } | ReturnRefused::LineTooLarge { .. } => {
            ProgramError::invalid("lines", format!("{refused} {original_id:?}"))
        }
    }
}

/// The redemptions of `member_id` against `order_id` so far (none for a
/// new order). An order may be recorded after its redemption, but one
/// recorded already must be a purchase of the same member.
fn redeemable_order(
    writer: &Writer,
    member_id: &str,
    order_id: &str,
) -> Result<OrderRedemptions, ProgramError> {
    if let Some(receipt) = writer.receipt(order_id)?
        && (writer.owner(&receipt.member_id)? != member_id || receipt.purchase.is_none())
    {
        return Err(ProgramError::invalid(
            "order_id",
            format!("{order_id:?} is not a purchase of member {member_id:?}"),
        ));
    }
    Ok(writer.order(member_id, order_id)?.unwrap_or_default())
}

/// Refuses a currency other than the program's.
fn program_currency(rules: &RuleSet, currency: Option<Currency>) -> Result<(), ProgramError> {
    match currency {
        Some(currency) if currency != rules.currency => Err(ProgramError::invalid(
            "currency",
            format!(
                "{:?} is not the program currency {}",
                currency.code(),
                rules.currency
            ),
        )),
        _ => Ok(()),
    }
}

impl Program {
    /// The write job of [`Program::record_purchase`], checked under the
    /// rules in force.
    pub(super) async fn purchase_job(
        &self,
        cmd: Purchase,
        actor: &str,
    ) -> Result<WriteJob, ProgramError> {
        let now = self.now();
        let rules = self.rules_at(now).await?;
        program_currency(&rules, Some(cmd.currency))?;
        let occurred_at = event_time("occurred_at", cmd.occurred_at, now)?;
        let key = WriteKey::of(&cmd, actor, now);
        Ok(job(rules, key, move |rules, _, existing| {
            let (mut member, enrolment) = apply::member_or_new(
                rules,
                existing,
                cmd.member_id.as_str(),
                occurred_at.min(now),
            );
            let purchase = earn::Purchase {
                transaction_id: cmd.transaction_id.as_str(),
                amount_minor: cmd.amount.get(),
                channel: cmd.channel.as_str(),
                store_id: cmd.store_id.as_str(),
                tags: cmd.tags.as_slice(),
                occurred_at,
                lines: cmd.lines.as_slice(),
            };
            let (track, effect) = apply::purchase(rules, &mut member, &purchase, now)?;
            Ok(Applied {
                purchase: Some(track),
                ..Applied::new(member, enrolment, effect)
            })
        }))
    }

    /// The write job of [`Program::record_activity`]: the kind must be one
    /// the rules in force know.
    pub(super) async fn activity_job(
        &self,
        cmd: ActivityEvent,
        actor: &str,
    ) -> Result<WriteJob, ProgramError> {
        let now = self.now();
        let rules = self.rules_at(now).await?;
        let occurred_at = event_time("occurred_at", cmd.occurred_at, now)?;
        let Some(activity) = rules.activities.get(cmd.kind.as_str()).cloned() else {
            let known: Vec<&str> = rules.activities.keys().map(String::as_str).collect();
            return Err(ProgramError::invalid(
                "kind",
                format!(
                    "unknown activity {:?}; the rules know {}{}",
                    cmd.kind.as_str(),
                    known.join(", "),
                    rules::did_you_mean(cmd.kind.as_str(), &known)
                ),
            ));
        };
        let key = WriteKey::of(&cmd, actor, now);
        Ok(job(rules, key, move |rules, _, existing| {
            let (mut member, enrolment) = apply::member_or_new(
                rules,
                existing,
                cmd.member_id.as_str(),
                occurred_at.min(now),
            );
            let facts = apply::ActivityFacts {
                transaction_id: cmd.transaction_id.as_str(),
                kind: cmd.kind.as_str(),
                details: cmd.details.as_map(),
                occurred_at,
            };
            let effect = apply::activity(rules, &mut member, &activity, &facts, now)?;
            Ok(Applied::new(member, enrolment, effect))
        }))
    }

    /// The write job of [`Program::record_return`].
    pub(super) async fn return_job(
        &self,
        cmd: Return,
        actor: &str,
    ) -> Result<WriteJob, ProgramError> {
        let now = self.now();
        let rules = self.rules_at(now).await?;
        program_currency(&rules, cmd.currency)?;
        event_time("occurred_at", cmd.occurred_at, now)?;
        let key = WriteKey::of(&cmd, actor, now);
        Ok(job(rules, key, move |rules, writer, existing| {
            let original_id = cmd.original_transaction_id.as_str();
            let not_found = || ProgramError::NotFound {
                field: "original_transaction_id",
                message: format!(
                    "no purchase {original_id:?} of member {:?}",
                    cmd.member_id.as_str()
                ),
            };
            let mut member = existing.ok_or_else(not_found)?;
            let what = match cmd.amount {
                _ if !cmd.lines.as_slice().is_empty() => Returned::Lines {
                    lines: cmd.lines.as_slice(),
                    amount_minor: cmd.amount.map(Amount::get),
                },
                Some(amount) => Returned::Amount(amount.get()),
                None => {
                    return Err(ProgramError::invalid(
                        "amount_minor",
                        "must be greater than 0",
                    ));
                }
            };
            let occurred_at = Some(cmd.occurred_at);
            let (effect, entries) = books::return_purchase(
                writer,
                rules,
                &mut member,
                original_id,
                what,
                occurred_at,
                now,
            )
            .map_err(|error| match error {
                ReturnError::NotFound => not_found(),
                ReturnError::BeforePurchase { purchased_at } => ProgramError::invalid(
                    "occurred_at",
                    format!(
                        "{} is before the purchase {original_id:?} it returns ({purchased_at})",
                        cmd.occurred_at
                    ),
                ),
                ReturnError::Refused(refused) => return_refused(original_id, refused),
                ReturnError::Books(store) => ProgramError::Store(store),
            })?;
            Ok(Applied {
                other_receipts: entries.receipts,
                orders: entries.orders,
                ..Applied::new(member, Vec::new(), effect)
            })
        }))
    }

    /// The write job of [`Program::adjust_points`].
    pub(super) async fn adjustment_job(
        &self,
        cmd: Adjustment,
        actor: &str,
    ) -> Result<WriteJob, ProgramError> {
        self.member_job(cmd, actor, |rules, _, mut member, cmd, now| {
            let points = cmd.points.get();
            let at = match cmd.occurred_at {
                Some(at) => event_time("occurred_at", at, now)?.min(now),
                None => now,
            };
            let txn = cmd.transaction_id.as_str();
            let effect = apply::adjust(rules, &mut member, txn, points, at, now);
            let reason = cmd.reason.as_str();
            tracing::info!(member_id = %member.member_id, points, reason, "points adjusted");
            Ok(Applied::new(member, Vec::new(), effect))
        })
        .await
    }

    /// The write job of [`Program::redeem_points`]. Points redeemed
    /// against an order are added to the order's redemptions, in the same
    /// commit, for its returns to give back.
    pub(super) async fn redemption_job(
        &self,
        cmd: Redemption,
        actor: &str,
    ) -> Result<WriteJob, ProgramError> {
        self.member_job(cmd, actor, |rules, writer, mut member, cmd, now| {
            let points = charge(rules, &member, cmd, now)?;
            let orders = match &cmd.order_id {
                Some(order_id) => {
                    let mut order = redeemable_order(writer, &member.member_id, order_id.as_str())?;
                    order.redeemed = order.redeemed.saturating_add(points);
                    vec![(
                        member.member_id.clone(),
                        order_id.as_str().to_owned(),
                        order,
                    )]
                }
                None => Vec::new(),
            };
            let reward = cmd.reward_id.as_ref().map(|id| id.as_str());
            let effect = apply::redeem(&mut member, points, reward, now).map_err(|short| {
                ProgramError::precondition(
                    "points",
                    format!(
                        "points: cannot redeem {points} points, the balance is {}",
                        short.balance
                    ),
                )
            })?;
            Ok(Applied {
                orders,
                ..Applied::new(member, Vec::new(), effect)
            })
        })
        .await
    }

    /// Writes `cmd`, sent by `actor`, to a member that must exist already:
    /// `change` applies it under the rules in force.
    pub(super) async fn member_job<C, F>(
        &self,
        cmd: C,
        actor: &str,
        change: F,
    ) -> Result<WriteJob, ProgramError>
    where
        C: Keyed + Send + 'static,
        F: Fn(&RuleSet, &Writer, MemberState, &C, DateTime<Utc>) -> Result<Applied, ProgramError>
            + Send
            + 'static,
    {
        let now = self.now();
        let rules = self.rules_at(now).await?;
        let key = WriteKey::of(&cmd, actor, now);
        Ok(job(rules, key, move |rules, writer, existing| {
            let member_id = cmd.facts().member_id().to_owned();
            let member = existing.ok_or_else(|| ProgramError::unknown_member(&member_id))?;
            change(rules, writer, member, &cmd, now)
        }))
    }

    /// The write job of [`Program::set_override`]: a manual tier placement,
    /// recorded as MANUAL unless it changes nothing, idempotent on its
    /// transaction id like every write.
    pub(super) async fn override_job(
        &self,
        cmd: OverrideCommand,
        actor: &str,
    ) -> Result<WriteJob, ProgramError> {
        let now = self.now();
        let rules = self.rules_at(now).await?;
        if let Some((tier_id, _)) = &cmd.placement
            && rules.tier_index(tier_id.as_str()).is_none()
        {
            let known: Vec<&str> = rules.tiers.iter().map(|t| t.id.as_str()).collect();
            return Err(ProgramError::invalid(
                "tier_id",
                format!(
                    "unknown tier {:?}; the tiers are {}",
                    tier_id.as_str(),
                    known.join(", ")
                ),
            ));
        }
        if cmd.until.is_some_and(|until| until <= now) {
            return Err(ProgramError::invalid("until", "must lie in the future"));
        }
        self.member_job(cmd, actor, |rules, _, mut member, cmd, now| {
            let placement = Placement {
                tier_override: cmd.placement.as_ref().map(|(tier_id, mode)| TierOverride {
                    tier_id: tier_id.as_str().to_owned(),
                    mode: *mode,
                    until: cmd.until,
                    reason: cmd.reason.as_str().to_owned(),
                }),
                reason: cmd.reason.as_str().to_owned(),
            };
            let effect = Effect {
                changes: apply::place_by_hand(rules, &mut member, placement, now),
                ..Effect::default()
            };
            Ok(Applied::new(member, Vec::new(), effect))
        })
        .await
    }

    /// Creates a member or merges its attributes.
    ///
    /// # Errors
    /// Invalid fields, too many attributes after the merge, or a storage
    /// failure.
    pub async fn upsert_member(&self, cmd: Upsert) -> Result<MemberView, ProgramError> {
        let now = self.now();
        let rules = self.rules_at(now).await?;
        if let Some(at) = cmd.enrolled_at {
            event_time("enrolled_at", at, now)
                .map_err(|_| ProgramError::invalid("enrolled_at", "must not lie in the future"))?;
        }
        let shown = std::sync::Arc::clone(&rules);
        let member = self
            .change_member(rules, move |rules, writer| {
                let stored = writer.member(cmd.member_id.as_str())?;
                let (member_id, existing) = landing(writer, cmd.member_id.as_str(), stored)?;
                let member_id = member_id.as_str();
                let enrolled_at = cmd.enrolled_at.unwrap_or(now);
                let (mut member, mut changes) =
                    apply::member_or_new(rules, existing, member_id, enrolled_at);
                changes.extend(apply::update_profile(
                    rules,
                    &mut member,
                    cmd.attributes.as_map(),
                    cmd.enrolled_at,
                    now,
                ));
                if member.attributes.len() > LIMITS.max_attributes {
                    return Err(ProgramError::invalid(
                        "attributes",
                        format!("a member has at most {} attributes", LIMITS.max_attributes),
                    ));
                }
                let due = due::next_due(rules, &member, now, !changes.is_empty());
                let history = number(rules, writer, member_id, changes)?;
                let mut commit = Commit {
                    dues: vec![(member_id.to_owned(), due)],
                    members: vec![member],
                    history,
                    ..Commit::default()
                };
                writer.commit(&commit)?;
                // The view is built off the writer thread, from the member put
                // in above.
                Ok(commit.members.swap_remove(0))
            })
            .await?;
        Ok(view::view(&shown, &member, now))
    }
}

/// The points `cmd` spends: the client's figure, or the cost of the
/// reward it names, which the server charges ([`apply::reward_cost`]).
fn charge(
    rules: &RuleSet,
    member: &MemberState,
    cmd: &Redemption,
    now: DateTime<Utc>,
) -> Result<i64, ProgramError> {
    let sent = cmd.points.map(Amount::get);
    let Some(id) = cmd.reward_id.as_ref().map(|id| id.as_str()) else {
        return sent
            .ok_or_else(|| ProgramError::invalid("points", "must be greater than 0, got 0"));
    };
    apply::reward_cost(rules, member, id, sent, now).map_err(|refused| match refused {
        RewardRefused::Unknown { .. } => ProgramError::invalid("reward_id", refused.to_string()),
        RewardRefused::Cost { .. } => ProgramError::invalid("points", refused.to_string()),
        RewardRefused::Unavailable(_) => {
            ProgramError::precondition("reward_id", format!("reward_id: {refused}"))
        }
    })
}
