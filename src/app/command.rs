//! The commands the service takes, built only from validated values
//! ([`super::input`]): a command that exists has been checked at the
//! boundary (the gRPC conversion builds them). Who sent a command is not
//! part of it; the service takes the sender beside the command.

use chrono::{DateTime, Utc};

use super::input::{
    Amount, Attributes, Basket, MemberId, Reason, ReturnLines, SignedPoints, Tags, Text,
    TransactionId,
};
use crate::{
    domain::{decide::OverrideMode, fingerprint::RequestFacts, receipt::RequestKind},
    money::Currency,
};

/// A purchase from a till or web shop; creates the member on a first one.
#[derive(Debug, Clone)]
pub struct Purchase {
    /// The member buying.
    pub member_id: MemberId,
    /// The idempotency key.
    pub transaction_id: TransactionId,
    /// Amount paid, minor units.
    pub amount: Amount,
    /// The currency sent; must be the program's.
    pub currency: Currency,
    /// When the purchase happened.
    pub occurred_at: DateTime<Utc>,
    /// Channel ("pos", "web", "app").
    pub channel: Text,
    /// Store id.
    pub store_id: Text,
    /// Purchase tags.
    pub tags: Tags,
    /// The basket's lines (empty: a sum only).
    pub lines: Basket,
}

/// A (partial) return of an earlier purchase of the same member.
#[derive(Debug, Clone)]
pub struct Return {
    /// The member returning goods.
    pub member_id: MemberId,
    /// The return's own idempotency key.
    pub transaction_id: TransactionId,
    /// The purchase being returned.
    pub original_transaction_id: TransactionId,
    /// Amount refunded, minor units; always given without lines, optional
    /// with them (then what the lines come to).
    pub amount: Option<Amount>,
    /// The lines returned (empty: an amount in proportion).
    pub lines: ReturnLines,
    /// The currency sent, if any; must be the program's.
    pub currency: Option<Currency>,
    /// When the return happened.
    pub occurred_at: DateTime<Utc>,
}

/// An activity that is not a purchase.
#[derive(Debug, Clone)]
pub struct ActivityEvent {
    /// The member; created if new.
    pub member_id: MemberId,
    /// The idempotency key.
    pub transaction_id: TransactionId,
    /// A kind the rules list under `activities`.
    pub kind: Text,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Free details, readable by activity scripts.
    pub details: Attributes,
}

/// A staff adjustment of points.
#[derive(Debug, Clone)]
pub struct Adjustment {
    /// The member adjusted.
    pub member_id: MemberId,
    /// The idempotency key.
    pub transaction_id: TransactionId,
    /// Points granted or taken.
    pub points: SignedPoints,
    /// Why.
    pub reason: Reason,
    /// When the points were earned or lost; `None`: when received.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A redemption of points.
#[derive(Debug, Clone)]
pub struct Redemption {
    /// The member redeeming.
    pub member_id: MemberId,
    /// The idempotency key.
    pub transaction_id: TransactionId,
    /// Points to spend; `None` with a reward: its cost, which the server
    /// charges (a client's own figure for a reward must be that cost).
    pub points: Option<Amount>,
    /// The order (a purchase's transaction id) the points pay for, if
    /// named: its returns give them back.
    pub order_id: Option<TransactionId>,
    /// The reward of the rules' catalogue the points buy, if named.
    pub reward_id: Option<Text>,
}

/// One event of a batch (`RecordEvents`): any write a till sends.
#[derive(Debug, Clone)]
pub enum Event {
    /// A purchase.
    Purchase(Purchase),
    /// A return.
    Return(Return),
    /// An activity.
    Activity(ActivityEvent),
    /// A staff adjustment.
    Adjustment(Adjustment),
    /// A redemption.
    Redemption(Redemption),
}

impl Event {
    /// What kind of request it is.
    pub fn kind(&self) -> RequestKind {
        match self {
            Event::Purchase(_) => RequestKind::Purchase,
            Event::Return(_) => RequestKind::Return,
            Event::Activity(_) => RequestKind::Activity,
            Event::Adjustment(_) => RequestKind::Adjustment,
            Event::Redemption(_) => RequestKind::Redemption,
        }
    }
}

/// A manual tier placement by customer service.
#[derive(Debug, Clone)]
pub struct OverrideCommand {
    /// The member placed.
    pub member_id: MemberId,
    /// The idempotency key.
    pub transaction_id: TransactionId,
    /// The tier and how it holds, or `None` to clear the override.
    pub placement: Option<(Text, OverrideMode)>,
    /// When it lapses; `None`: until cleared.
    pub until: Option<DateTime<Utc>>,
    /// Why.
    pub reason: Reason,
}

/// An account closed by customer service (`CloseMember`).
#[derive(Debug, Clone)]
pub struct CloseCommand {
    /// The member whose account closes.
    pub member_id: MemberId,
    /// The idempotency key.
    pub transaction_id: TransactionId,
    /// Why.
    pub reason: Reason,
    /// Whether the outstanding points are forfeited (breakage) or kept for
    /// a re-open.
    pub forfeit_points: bool,
}

/// A closed account reopened (`ReopenMember`).
#[derive(Debug, Clone)]
pub struct ReopenCommand {
    /// The member whose account reopens.
    pub member_id: MemberId,
    /// The idempotency key.
    pub transaction_id: TransactionId,
    /// Why.
    pub reason: Reason,
}

/// Two enrolments of one customer merged (`MergeMembers`).
#[derive(Debug, Clone)]
pub struct MergeCommand {
    /// The member merged away, which becomes an alias.
    pub source_member_id: MemberId,
    /// The member that remains.
    pub target_member_id: MemberId,
    /// The idempotency key.
    pub transaction_id: TransactionId,
    /// Why.
    pub reason: Reason,
}

/// A member's identifying data erased (`EraseMember`).
#[derive(Debug, Clone)]
pub struct EraseCommand {
    /// The member (or an id merged into it).
    pub member_id: MemberId,
    /// The idempotency key.
    pub transaction_id: TransactionId,
    /// Why (a request number, not personal data).
    pub reason: Reason,
}

/// Creation or update of a member's descriptive attributes.
#[derive(Debug, Clone)]
pub struct Upsert {
    /// The member created or updated.
    pub member_id: MemberId,
    /// Merged in; an empty value removes the key.
    pub attributes: Attributes,
    /// Enrolment time; kept when `None`.
    pub enrolled_at: Option<DateTime<Utc>>,
}

/// A command that carries a transaction id: what identifies it.
pub trait Keyed {
    /// The request's identifying fields (see
    /// [`crate::domain::fingerprint`]).
    fn facts(&self) -> RequestFacts<'_>;
}

impl Keyed for Purchase {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::Purchase {
            member_id: self.member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            amount_minor: self.amount.get(),
            currency: self.currency.code(),
            occurred_at: self.occurred_at,
            channel: self.channel.as_str(),
            store_id: self.store_id.as_str(),
            tags: self.tags.as_slice(),
            lines: self.lines.as_slice(),
        }
    }
}

impl Keyed for Return {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::Return {
            member_id: self.member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            original_transaction_id: self.original_transaction_id.as_str(),
            amount_minor: self.amount.map_or(0, Amount::get),
            currency: self.currency.as_ref().map_or("", Currency::code),
            occurred_at: self.occurred_at,
            lines: self.lines.as_slice(),
        }
    }
}

impl Keyed for ActivityEvent {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::Activity {
            member_id: self.member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            kind: self.kind.as_str(),
            occurred_at: self.occurred_at,
            details: self.details.as_map(),
        }
    }
}

impl Keyed for Adjustment {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::Adjustment {
            member_id: self.member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            points: self.points.get(),
            reason: self.reason.as_str(),
            occurred_at: self.occurred_at,
        }
    }
}

impl Keyed for OverrideCommand {
    fn facts(&self) -> RequestFacts<'_> {
        let (tier_id, mode) = match &self.placement {
            Some((tier_id, OverrideMode::Floor)) => (tier_id.as_str(), "floor"),
            Some((tier_id, OverrideMode::Lock)) => (tier_id.as_str(), "lock"),
            None => ("", "clear"),
        };
        RequestFacts::Override {
            member_id: self.member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            tier_id,
            mode,
            until: self.until,
            reason: self.reason.as_str(),
        }
    }
}

impl Keyed for CloseCommand {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::Close {
            member_id: self.member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            reason: self.reason.as_str(),
            forfeit_points: self.forfeit_points,
        }
    }
}

impl Keyed for ReopenCommand {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::Reopen {
            member_id: self.member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            reason: self.reason.as_str(),
        }
    }
}

impl Keyed for MergeCommand {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::Merge {
            member_id: self.target_member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            source_member_id: self.source_member_id.as_str(),
            reason: self.reason.as_str(),
        }
    }
}

impl Keyed for EraseCommand {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::Erase {
            member_id: self.member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            reason: self.reason.as_str(),
        }
    }
}

impl Keyed for Redemption {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts::Redemption {
            member_id: self.member_id.as_str(),
            transaction_id: self.transaction_id.as_str(),
            points: self.points.map_or(0, Amount::get),
            order_id: self.order_id.as_ref().map(TransactionId::as_str),
            reward_id: self.reward_id.as_ref().map(Text::as_str),
        }
    }
}
