//! Every conversion between the generated protobuf types and the service,
//! in one place. Requests become validated commands (checking what
//! protobuf itself cannot: a valid timestamp, a known enum value, and every
//! limit of [`crate::app::input`]); results become replies.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use super::pb;
use crate::{
    app::{
        Erased, EvaluationReport, Program, ProgramError, Recorded,
        command::{
            ActivityEvent, Adjustment, CloseCommand, EraseCommand, Event, MergeCommand,
            OverrideCommand, Purchase, Redemption, ReopenCommand, Return, Upsert,
        },
        input::{
            Amount, Attributes, Basket, MemberId, Reason, ReturnLines, SignedPoints, Tags, Text,
            TransactionId, required_time,
        },
        live_rules::ReloadFailure,
        watch::WatchFilter,
    },
    domain::{
        decide::{ChangeKind, HistoryEntry, OverrideMode, TierOverride},
        earn::Line,
        projection::Projection,
        receipt::RequestKind,
        view::{MemberView, RewardOffer},
    },
    money::Currency,
    rules::{Benefit, Campaign, Diagnostic, RuleSet, RulesVersion},
    tools::simulate::{Cell, Simulation, SlowScript, TierTotals},
};

/// A protobuf timestamp as a UTC time; `None` stays `None`.
///
/// # Errors
/// `InvalidArgument` naming `field` when the timestamp is out of range.
pub fn time_from(
    field: &'static str,
    ts: Option<Timestamp>,
) -> Result<Option<DateTime<Utc>>, ProgramError> {
    ts.map(|ts| {
        u32::try_from(ts.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(ts.seconds, nanos))
            .ok_or_else(|| ProgramError::invalid(field, "not a valid timestamp"))
    })
    .transpose()
}

/// A UTC time as a protobuf timestamp.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        // Always below 2 * 10^9 by chrono's contract.
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A required timestamp field.
fn required(field: &'static str, ts: Option<Timestamp>) -> Result<DateTime<Utc>, ProgramError> {
    required_time(field, time_from(field, ts)?)
}

/// An ISO 4217 currency code.
fn currency(code: &str) -> Result<Currency, ProgramError> {
    Currency::parse(code).map_err(|_| {
        ProgramError::invalid(
            "currency",
            format!("{code:?} is not an ISO 4217 currency code"),
        )
    })
}

/// An ISO 4217 currency code, or `None` when none is given.
fn optional_currency(code: &str) -> Result<Option<Currency>, ProgramError> {
    (!code.is_empty()).then(|| currency(code)).transpose()
}

/// The member id of a read request.
///
/// # Errors
/// `InvalidArgument` naming `member_id`.
pub fn member_id(id: String) -> Result<MemberId, ProgramError> {
    MemberId::parse("member_id", id)
}

/// The member ids of an evaluation request.
///
/// # Errors
/// `InvalidArgument` naming `member_ids`.
pub fn member_ids(ids: Vec<String>) -> Result<Vec<MemberId>, ProgramError> {
    ids.into_iter()
        .map(|id| MemberId::parse("member_ids", id))
        .collect()
}

/// The filter of a `WatchTierChanges` request: known kinds, and tiers of
/// `rules`.
///
/// # Errors
/// `InvalidArgument` naming `kinds` or `tiers`.
pub fn watch_filter(
    kinds: Vec<i32>,
    tiers: Vec<String>,
    rules: &RuleSet,
) -> Result<WatchFilter, ProgramError> {
    // The one mapping of kinds is `From<ChangeKind>`; read it backwards.
    let kinds = kinds
        .into_iter()
        .map(|k| {
            ChangeKind::ALL
                .into_iter()
                .find(|kind| pb::TierChangeKind::from(*kind) as i32 == k)
                .ok_or_else(|| {
                    ProgramError::invalid("kinds", format!("{k} is not a tier change kind"))
                })
        })
        .collect::<Result<_, _>>()?;
    let known: Vec<&str> = rules.tiers.iter().map(|t| t.id.as_str()).collect();
    if let Some(unknown) = tiers.iter().find(|t| !known.contains(&t.as_str())) {
        return Err(ProgramError::invalid(
            "tiers",
            format!(
                "unknown tier {unknown:?}; the tiers are {}{}",
                known.join(", "),
                crate::rules::did_you_mean(unknown, &known)
            ),
        ));
    }
    Ok(WatchFilter { kinds, tiers })
}

/// A page of history: entries after seq `after`, at most `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The last seq of the previous page (0: from the start).
    pub after: u64,
    /// Entries per page.
    pub size: usize,
}

/// The page a history request asks for: `page_size` 0 means `default`,
/// more than `max` is refused; `page_token` is empty or a token from a
/// previous response.
///
/// # Errors
/// `InvalidArgument` naming `page_size` or `page_token`.
pub fn history_page(
    page_size: u32,
    page_token: &str,
    max: u32,
    default: u32,
) -> Result<Page, ProgramError> {
    let size = match page_size {
        0 => default,
        n if n <= max => n,
        n => {
            return Err(ProgramError::invalid(
                "page_size",
                format!("{n} is above {max}"),
            ));
        }
    };
    let after = match page_token {
        "" => 0,
        token => token.parse::<u64>().map_err(|_| {
            ProgramError::invalid("page_token", "not a token from a previous response")
        })?,
    };
    Ok(Page {
        after,
        size: size as usize,
    })
}

impl From<(Vec<HistoryEntry>, bool)> for pb::GetTierHistoryResponse {
    fn from((entries, more): (Vec<HistoryEntry>, bool)) -> Self {
        let next_page_token = match entries.last() {
            Some(last) if more => last.seq.to_string(),
            _ => String::new(),
        };
        Self {
            entries: entries.into_iter().map(Into::into).collect(),
            next_page_token,
        }
    }
}

/// The rules in force, the staged and the failed versions, the campaigns.
pub fn rules_status(program: &Program) -> pb::GetRulesResponse {
    let (active, scheduled, last_failure) = program.rules_status();
    pb::GetRulesResponse {
        active: Some(active.into()),
        scheduled: scheduled.map(Into::into),
        campaigns: program.rules().campaigns.iter().map(Into::into).collect(),
        last_failure: last_failure.map(Into::into),
        script_failures: crate::script::failures(),
        tiers: program
            .rules()
            .tiers
            .iter()
            .map(|t| pb::TierInfo {
                id: t.id.clone(),
                name: t.name.clone(),
                benefits: benefits(t.benefits.clone()),
            })
            .collect(),
    }
}

fn benefits(list: Vec<Benefit>) -> Vec<pb::Benefit> {
    list.into_iter()
        .map(|b| pb::Benefit {
            text: b.text,
            details: b.details.into_iter().collect(),
        })
        .collect()
}

fn offers(list: Vec<RewardOffer>) -> Vec<pb::Reward> {
    list.into_iter()
        .map(|r| pb::Reward {
            id: r.id,
            name: r.name,
            cost_points: r.cost,
            affordable: r.affordable,
        })
        .collect()
}

/// One event of a batch as a command.
///
/// # Errors
/// `InvalidArgument` naming the event's field at fault, or `event` when
/// none of its kinds is set.
pub fn event(event: pb::Event) -> Result<Event, ProgramError> {
    use pb::event::Event as Kind;
    match event.event {
        Some(Kind::Purchase(r)) => Ok(Event::Purchase(r.try_into()?)),
        Some(Kind::Return(r)) => Ok(Event::Return(r.try_into()?)),
        Some(Kind::Activity(r)) => Ok(Event::Activity(r.try_into()?)),
        Some(Kind::Adjustment(r)) => Ok(Event::Adjustment(r.try_into()?)),
        Some(Kind::Redemption(r)) => Ok(Event::Redemption(r.try_into()?)),
        None => Err(ProgramError::invalid(
            "event",
            "set one of purchase, return, activity, adjustment, redemption",
        )),
    }
}

/// The outcome slot of a refused batch event.
pub fn error_outcome(error: pb::EventError) -> pb::EventOutcome {
    pb::EventOutcome {
        outcome: Some(pb::event_outcome::Outcome::Error(error)),
    }
}

/// The outcome slot of a batch event of `kind`.
pub fn event_outcome(
    kind: RequestKind,
    result: Result<Recorded, ProgramError>,
) -> pb::EventOutcome {
    use pb::event_outcome::Outcome;
    let outcome = match result {
        Err(err) => return error_outcome(super::status::event_error(err)),
        Ok(recorded) => match kind {
            RequestKind::Purchase => Outcome::Purchase(recorded.into()),
            RequestKind::Return => Outcome::Return(recorded.into()),
            RequestKind::Activity => Outcome::Activity(recorded.into()),
            RequestKind::Adjustment => Outcome::Adjustment(recorded.into()),
            RequestKind::Redemption => Outcome::Redemption(recorded.into()),
            // A batch holds no overrides or account changes (`Event` has
            // none): refused whole.
            RequestKind::Override
            | RequestKind::Close
            | RequestKind::Reopen
            | RequestKind::Merge
            | RequestKind::Erase => {
                return error_outcome(pb::EventError {
                    code: tonic::Code::InvalidArgument as i32,
                    message: format!("event: a {} is not a batch event", kind.name()),
                    field: "event".into(),
                });
            }
        },
    };
    pb::EventOutcome {
        outcome: Some(outcome),
    }
}

impl TryFrom<pb::RecordPurchaseRequest> for Purchase {
    type Error = ProgramError;

    fn try_from(r: pb::RecordPurchaseRequest) -> Result<Self, ProgramError> {
        let amount = Amount::parse("amount_minor", r.amount_minor)?;
        let lines = r.lines.into_iter().map(|l| Line {
            sku: l.sku,
            category: l.category,
            quantity: l.quantity,
            amount_minor: l.amount_minor,
            labels: l.labels,
        });
        Ok(Purchase {
            member_id: MemberId::parse("member_id", r.member_id)?,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            lines: Basket::parse(lines.collect(), amount)?,
            amount,
            currency: currency(&r.currency)?,
            occurred_at: required("occurred_at", r.occurred_at)?,
            channel: Text::parse("channel", r.channel)?,
            store_id: Text::parse("store_id", r.store_id)?,
            tags: Tags::parse(r.tags)?,
        })
    }
}

impl TryFrom<pb::RecordActivityRequest> for ActivityEvent {
    type Error = ProgramError;

    fn try_from(r: pb::RecordActivityRequest) -> Result<Self, ProgramError> {
        Ok(ActivityEvent {
            member_id: MemberId::parse("member_id", r.member_id)?,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            occurred_at: required("occurred_at", r.occurred_at)?,
            details: Attributes::parse("attributes", r.attributes.into_iter().collect())?,
            kind: Text::parse("kind", r.kind)?,
        })
    }
}

impl TryFrom<pb::RecordReturnRequest> for Return {
    type Error = ProgramError;

    fn try_from(r: pb::RecordReturnRequest) -> Result<Self, ProgramError> {
        let lines = ReturnLines::parse(
            r.lines
                .into_iter()
                .map(|l| (l.sku, l.quantity, l.amount_minor))
                .collect(),
        )?;
        // With lines, the amount may be left to them.
        let amount = if lines.as_slice().is_empty() || r.amount_minor != 0 {
            Some(Amount::parse("amount_minor", r.amount_minor)?)
        } else {
            None
        };
        Ok(Return {
            member_id: MemberId::parse("member_id", r.member_id)?,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            original_transaction_id: TransactionId::parse(
                "original_transaction_id",
                r.original_transaction_id,
            )?,
            amount,
            lines,
            currency: optional_currency(&r.currency)?,
            occurred_at: required("occurred_at", r.occurred_at)?,
        })
    }
}

impl TryFrom<pb::AdjustPointsRequest> for Adjustment {
    type Error = ProgramError;

    fn try_from(r: pb::AdjustPointsRequest) -> Result<Self, ProgramError> {
        Ok(Adjustment {
            member_id: MemberId::parse("member_id", r.member_id)?,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            points: SignedPoints::parse("points", r.points)?,
            reason: Reason::parse(r.reason, "say why the points are adjusted")?,
            occurred_at: r
                .occurred_at
                .map(|ts| required("occurred_at", Some(ts)))
                .transpose()?,
        })
    }
}

impl TryFrom<pb::RedeemPointsRequest> for Redemption {
    type Error = ProgramError;

    fn try_from(r: pb::RedeemPointsRequest) -> Result<Self, ProgramError> {
        let reward_id = (!r.reward_id.is_empty())
            .then(|| Text::parse("reward_id", r.reward_id))
            .transpose()?;
        // With a reward, 0 points means "its cost": the server charges it.
        let points = (reward_id.is_none() || r.points != 0)
            .then(|| Amount::parse("points", r.points))
            .transpose()?;
        Ok(Redemption {
            member_id: MemberId::parse("member_id", r.member_id)?,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            points,
            order_id: (!r.order_id.is_empty())
                .then(|| TransactionId::parse("order_id", r.order_id))
                .transpose()?,
            reward_id,
        })
    }
}

impl TryFrom<pb::SetTierOverrideRequest> for OverrideCommand {
    type Error = ProgramError;

    fn try_from(r: pb::SetTierOverrideRequest) -> Result<Self, ProgramError> {
        let member_id = MemberId::parse("member_id", r.member_id)?;
        let reason = Reason::parse(r.reason, "say why the tier is set by hand")?;
        let mode = match pb::OverrideMode::try_from(r.mode) {
            Ok(pb::OverrideMode::Floor) => Some(OverrideMode::Floor),
            Ok(pb::OverrideMode::Lock) => Some(OverrideMode::Lock),
            Ok(pb::OverrideMode::Clear) => None,
            Ok(pb::OverrideMode::Unspecified) | Err(_) => {
                return Err(ProgramError::invalid(
                    "mode",
                    "must be FLOOR, LOCK or CLEAR",
                ));
            }
        };
        let tier_id = Text::parse("tier_id", r.tier_id)?;
        Ok(OverrideCommand {
            member_id,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            placement: mode.map(|mode| (tier_id, mode)),
            until: time_from("until", r.until)?,
            reason,
        })
    }
}

impl TryFrom<pb::UpsertMemberRequest> for Upsert {
    type Error = ProgramError;

    fn try_from(r: pb::UpsertMemberRequest) -> Result<Self, ProgramError> {
        Ok(Upsert {
            member_id: MemberId::parse("member_id", r.member_id)?,
            attributes: Attributes::parse("attributes", r.attributes.into_iter().collect())?,
            enrolled_at: time_from("enrolled_at", r.enrolled_at)?,
        })
    }
}

impl From<ChangeKind> for pb::TierChangeKind {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::Initial => pb::TierChangeKind::Initial,
            ChangeKind::Promotion => pb::TierChangeKind::Promotion,
            ChangeKind::Demotion => pb::TierChangeKind::Demotion,
            ChangeKind::Manual => pb::TierChangeKind::Manual,
            ChangeKind::AtRisk => pb::TierChangeKind::AtRisk,
            ChangeKind::Retained => pb::TierChangeKind::Retained,
            ChangeKind::Closed => pb::TierChangeKind::Closed,
            ChangeKind::Reopened => pb::TierChangeKind::Reopened,
            ChangeKind::Merged => pb::TierChangeKind::Merged,
        }
    }
}

/// Shortfalls as the contract carries them.
fn shortfalls(list: Vec<(String, i64)>) -> Vec<pb::Shortfall> {
    list.into_iter()
        .map(|(metric, missing)| pb::Shortfall { metric, missing })
        .collect()
}

impl From<HistoryEntry> for pb::TierChange {
    fn from(entry: HistoryEntry) -> Self {
        let at_risk = entry.change.at_risk;
        pb::TierChange {
            demotion_at: at_risk.as_ref().map(|r| timestamp(r.demotion_at)),
            to_stay: at_risk.map(|r| shortfalls(r.to_stay)).unwrap_or_default(),
            member_id: entry.member_id,
            from_tier: entry.change.from_tier,
            to_tier: entry.change.to_tier,
            kind: pb::TierChangeKind::from(entry.change.kind).into(),
            at: Some(timestamp(entry.change.at)),
            reason: entry.change.reason,
            rules_version: entry.rules_version,
            seq: entry.seq,
        }
    }
}

impl From<TierOverride> for pb::TierOverride {
    fn from(o: TierOverride) -> Self {
        let mode = match o.mode {
            OverrideMode::Floor => pb::OverrideMode::Floor,
            OverrideMode::Lock => pb::OverrideMode::Lock,
        };
        pb::TierOverride {
            tier_id: o.tier_id,
            mode: mode.into(),
            until: o.until.map(timestamp),
            reason: o.reason,
        }
    }
}

/// A projection as the contract carries it.
fn projection(p: Projection) -> pb::Projection {
    let (next_tier_id, to_reach_next) = p.next_tier.unwrap_or_default();
    pb::Projection {
        horizon: Some(timestamp(p.horizon)),
        summary: p.summary,
        keeps_tier: p.keeps_tier,
        to_keep: shortfalls(p.to_keep),
        reaches_tier: p.reaches.unwrap_or_default(),
        next_tier_id,
        to_reach_next: shortfalls(to_reach_next),
        qualifying_points: p.projected.qualifying_points,
        purchase_volume_minor: p.projected.purchase_volume_minor,
        purchase_count: p.projected.purchase_count,
        activity_count: p.projected.activity_count,
    }
}

impl From<(MemberView, Option<crate::report::predict::MemberPrediction>)> for pb::Member {
    fn from(
        (view, prediction): (MemberView, Option<crate::report::predict::MemberPrediction>),
    ) -> Self {
        pb::Member {
            prediction: prediction.map(Into::into),
            ..view.into()
        }
    }
}

impl From<MemberView> for pb::Member {
    fn from(m: MemberView) -> Self {
        pb::Member {
            member_id: m.member_id,
            tier_id: m.tier_id,
            tier_since: Some(timestamp(m.tier_since)),
            points_balance: m.metrics.points_balance,
            qualifying_points: m.metrics.qualifying_points,
            purchase_volume_minor: m.metrics.purchase_volume_minor,
            purchase_count: m.metrics.purchase_count,
            activity_count: m.metrics.activity_count,
            lifetime_value_minor: m.metrics.lifetime_value_minor,
            next_tier: m.next_tier.map(|n| pb::NextTier {
                tier_id: n.tier_id,
                summary: n.summary,
                shortfalls: shortfalls(n.shortfalls),
                benefits: benefits(m.next_benefits),
                rewards: offers(m.next_rewards),
            }),
            benefits: benefits(m.benefits),
            points_value_minor: m.points_value_minor,
            projection: m.projection.map(projection),
            rules_version: m.rules_version,
            currency: m.currency,
            attributes: m.attributes.into_iter().collect(),
            enrolled_at: Some(timestamp(m.enrolled_at)),
            tier_override: m.tier_override.map(Into::into),
            qualifying_basis: m.qualifying_basis.unwrap_or_default(),
            rewards: offers(m.rewards),
            closed: m.closed.map(|c| pb::AccountClosure {
                closed_at: Some(timestamp(c.closure.at)),
                reason: c.closure.reason,
                points_forfeited: c.closure.points_forfeited,
                reopen_until: Some(timestamp(c.reopen_until)),
            }),
            merged_from: m.asked_as.map(|alias| pb::MemberMerge {
                member_id: alias.member_id,
                merged_into: alias.into,
                merged_at: Some(timestamp(alias.at)),
                reason: alias.reason,
            }),
            merged_member_ids: m.merged_ids,
            prediction: None,
        }
    }
}

/// The tier change a client should show for a write: the last move that
/// is not the INITIAL placement of a new member (AT_RISK and RETAINED are
/// not moves: the history and the tier-change stream carry them).
fn shown_change(recorded: &Recorded) -> Option<pb::TierChange> {
    recorded
        .outcome
        .tier_changes
        .iter()
        .rev()
        .find(|e| e.change.kind != ChangeKind::Initial && e.change.kind.moves_tier())
        .cloned()
        .map(Into::into)
}

fn member_of(recorded: &Recorded) -> Option<pb::Member> {
    Some(recorded.outcome.member.clone().into())
}

impl From<Recorded> for pb::RecordPurchaseResponse {
    fn from(r: Recorded) -> Self {
        Self {
            member: member_of(&r),
            points_earned: r.outcome.points,
            tier_change: shown_change(&r),
            duplicate: r.duplicate,
        }
    }
}

impl From<Recorded> for pb::RecordActivityResponse {
    fn from(r: Recorded) -> Self {
        Self {
            member: member_of(&r),
            points_earned: r.outcome.points,
            capped: r.outcome.capped,
            duplicate: r.duplicate,
            tier_change: shown_change(&r),
        }
    }
}

impl From<Recorded> for pb::RecordReturnResponse {
    fn from(r: Recorded) -> Self {
        Self {
            member: member_of(&r),
            points_reversed: r.outcome.points,
            duplicate: r.duplicate,
            tier_change: shown_change(&r),
            amount_returned_minor: r.outcome.refunded_minor,
            points_recredited: r.outcome.points_recredited,
        }
    }
}

impl From<Recorded> for pb::AdjustPointsResponse {
    fn from(r: Recorded) -> Self {
        Self {
            member: member_of(&r),
            duplicate: r.duplicate,
            tier_change: shown_change(&r),
        }
    }
}

impl From<Recorded> for pb::RedeemPointsResponse {
    fn from(r: Recorded) -> Self {
        Self {
            member: member_of(&r),
            duplicate: r.duplicate,
        }
    }
}

impl From<Recorded> for pb::SetTierOverrideResponse {
    fn from(r: Recorded) -> Self {
        Self {
            member: member_of(&r),
            tier_change: r.outcome.tier_changes.first().cloned().map(Into::into),
            duplicate: r.duplicate,
        }
    }
}

impl From<Recorded> for pb::CloseMemberResponse {
    fn from(r: Recorded) -> Self {
        Self {
            member: member_of(&r),
            points_forfeited: r.outcome.points,
            tier_change: r.outcome.tier_changes.first().cloned().map(Into::into),
            duplicate: r.duplicate,
        }
    }
}

impl From<Recorded> for pb::ReopenMemberResponse {
    fn from(r: Recorded) -> Self {
        Self {
            member: member_of(&r),
            tier_changes: r.outcome.tier_changes.into_iter().map(Into::into).collect(),
            duplicate: r.duplicate,
        }
    }
}

impl From<Erased> for pb::EraseMemberResponse {
    fn from(e: Erased) -> Self {
        Self {
            pseudonym: e.pseudonym,
            receipts_rewritten: e.receipts,
            history_entries_rewritten: e.history_entries,
            duplicate: e.duplicate,
        }
    }
}

impl TryFrom<pb::EraseMemberRequest> for EraseCommand {
    type Error = ProgramError;

    fn try_from(r: pb::EraseMemberRequest) -> Result<Self, ProgramError> {
        Ok(EraseCommand {
            member_id: MemberId::parse("member_id", r.member_id)?,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            reason: Reason::parse(r.reason, "say why the member is erased")?,
        })
    }
}

impl From<Recorded> for pb::MergeMembersResponse {
    fn from(r: Recorded) -> Self {
        Self {
            member: member_of(&r),
            tier_changes: r.outcome.tier_changes.into_iter().map(Into::into).collect(),
            duplicate: r.duplicate,
        }
    }
}

impl TryFrom<pb::MergeMembersRequest> for MergeCommand {
    type Error = ProgramError;

    fn try_from(r: pb::MergeMembersRequest) -> Result<Self, ProgramError> {
        let source = MemberId::parse("source_member_id", r.source_member_id)?;
        let target = MemberId::parse("target_member_id", r.target_member_id)?;
        if source.as_str() == target.as_str() {
            return Err(ProgramError::invalid(
                "target_member_id",
                format!(
                    "{:?} is the source too: a member cannot be merged into itself",
                    target.as_str()
                ),
            ));
        }
        Ok(MergeCommand {
            source_member_id: source,
            target_member_id: target,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            reason: Reason::parse(r.reason, "say why the members are merged")?,
        })
    }
}

impl TryFrom<pb::CloseMemberRequest> for CloseCommand {
    type Error = ProgramError;

    fn try_from(r: pb::CloseMemberRequest) -> Result<Self, ProgramError> {
        Ok(CloseCommand {
            member_id: MemberId::parse("member_id", r.member_id)?,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            reason: Reason::parse(r.reason, "say why the account is closed")?,
            forfeit_points: r.forfeit_points,
        })
    }
}

impl TryFrom<pb::ReopenMemberRequest> for ReopenCommand {
    type Error = ProgramError;

    fn try_from(r: pb::ReopenMemberRequest) -> Result<Self, ProgramError> {
        Ok(ReopenCommand {
            member_id: MemberId::parse("member_id", r.member_id)?,
            transaction_id: TransactionId::parse("transaction_id", r.transaction_id)?,
            reason: Reason::parse(r.reason, "say why the account is reopened")?,
        })
    }
}

impl From<EvaluationReport> for pb::EvaluateTiersResponse {
    fn from(report: EvaluationReport) -> Self {
        Self {
            evaluated: report.evaluated,
            promoted: report.promoted,
            demoted: report.demoted,
            unchanged: report.unchanged,
            points_expired: report.points_expired,
            changes: report.changes.into_iter().map(Into::into).collect(),
            changes_truncated: report.changes_truncated,
        }
    }
}

impl From<RulesVersion> for pb::RulesVersion {
    fn from(v: RulesVersion) -> Self {
        pb::RulesVersion {
            version: v.version,
            content_hash: v.content_hash,
            program: v.program,
            activated_at: Some(timestamp(v.activated_at)),
            text: v.text,
            position: 0,
        }
    }
}

/// The stored version at `position`, with its text.
pub fn rules_version(position: u64, version: RulesVersion) -> pb::RulesVersion {
    pb::RulesVersion {
        position,
        ..version.into()
    }
}

/// A version as the service listed it, for a client comparing its own
/// file with the history (`tierd rules check --server`).
pub fn rules_version_of(version: pb::RulesVersion) -> RulesVersion {
    let activated_at = time_from("activated_at", version.activated_at)
        .ok()
        .flatten()
        .unwrap_or_default();
    RulesVersion {
        version: version.version,
        content_hash: version.content_hash,
        program: version.program,
        activated_at,
        text: version.text,
    }
}

/// Versions per `ListRulesVersions` page, unless the caller asks for fewer.
const RULES_VERSIONS_PAGE: u32 = 50;
/// The most versions one page may hold.
const MAX_RULES_VERSIONS_PAGE: u32 = 200;

/// Which page of rules versions a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesVersionsPage {
    /// Versions after this position.
    pub after: u64,
    /// Versions on the page.
    pub size: usize,
}

/// The page `request` asks for.
///
/// # Errors
/// `INVALID_ARGUMENT` for a page size over the limit or a token that is
/// not one this service gave.
pub fn rules_versions_page(
    request: &pb::ListRulesVersionsRequest,
) -> Result<RulesVersionsPage, ProgramError> {
    let size = match request.page_size {
        0 => RULES_VERSIONS_PAGE,
        n if n <= MAX_RULES_VERSIONS_PAGE => n,
        n => {
            return Err(ProgramError::invalid(
                "page_size",
                format!("at most {MAX_RULES_VERSIONS_PAGE}, got {n}"),
            ));
        }
    };
    let after = match request.page_token.as_str() {
        "" => 0,
        token => token.parse().map_err(|_| {
            ProgramError::invalid(
                "page_token",
                format!("{token:?} is not a page token ListRulesVersions gave"),
            )
        })?,
    };
    Ok(RulesVersionsPage {
        after,
        size: usize::try_from(size).unwrap_or(usize::MAX),
    })
}

/// A page of `size` versions out of `read` (which holds one more when a
/// next page follows), without their texts.
pub fn rules_versions_reply(
    mut read: Vec<(u64, RulesVersion)>,
    size: usize,
) -> pb::ListRulesVersionsResponse {
    let more = read.len() > size;
    read.truncate(size);
    let next_page_token = match (more, read.last()) {
        (true, Some((position, _))) => position.to_string(),
        _ => String::new(),
    };
    pb::ListRulesVersionsResponse {
        versions: read
            .into_iter()
            .map(|(position, version)| pb::RulesVersion {
                text: String::new(),
                ..rules_version(position, version)
            })
            .collect(),
        next_page_token,
    }
}

impl From<ReloadFailure> for pb::ReloadFailure {
    fn from(f: ReloadFailure) -> Self {
        pb::ReloadFailure {
            at: Some(timestamp(f.at)),
            diagnostics: f.rejected.to_string(),
            problems: f.rejected.diagnostics.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Diagnostic> for pb::RulesDiagnostic {
    fn from(d: Diagnostic) -> Self {
        pb::RulesDiagnostic {
            file: d.file.display().to_string(),
            line: u32::try_from(d.line).unwrap_or(u32::MAX),
            column: u32::try_from(d.column).unwrap_or(u32::MAX),
            severity: d.severity.as_str().to_owned(),
            message: d.message,
        }
    }
}

/// A simulation as the reply shows it, tiers in ladder order.
pub fn simulation_reply(simulation: Simulation, tiers: &[String]) -> pb::SimulateRulesResponse {
    let moved = simulation.moved();
    let summaries = tiers
        .iter()
        .map(|tier| {
            let before = simulation.before.get(tier).copied().unwrap_or_default();
            let after = simulation.after.get(tier).copied().unwrap_or_default();
            pb::TierSummary {
                tier_id: tier.clone(),
                members_before: before.members,
                points_before: before.points,
                members_after: after.members,
                points_after: after.points,
            }
        })
        .collect();
    pb::SimulateRulesResponse {
        candidate_version: simulation.candidate_version,
        members: simulation.members,
        moved,
        cells: simulation
            .matrix
            .into_iter()
            .map(|((from_tier, to_tier), cell)| pb::MigrationCell {
                from_tier,
                to_tier,
                members: cell.members,
                sample: cell.sample,
            })
            .collect(),
        tiers: summaries,
        slow_scripts: simulation
            .slow_scripts
            .into_iter()
            .map(|slow| pb::SlowScript {
                at: slow.at,
                runs: slow.runs,
                slowest_micros: slow.slowest_micros,
                budget_micros: slow.budget_micros,
            })
            .collect(),
    }
}

/// A `SimulateRules` reply as the simulation it shows (what `tierd
/// simulate --server` prints the same way as a local one).
pub fn simulation_of(reply: pb::SimulateRulesResponse, as_of: DateTime<Utc>) -> Simulation {
    let totals = |members, points| TierTotals { members, points };
    Simulation {
        candidate_version: reply.candidate_version,
        as_of,
        members: reply.members,
        matrix: reply
            .cells
            .into_iter()
            .map(|c| {
                let cell = Cell {
                    members: c.members,
                    sample: c.sample,
                };
                ((c.from_tier, c.to_tier), cell)
            })
            .collect(),
        before: reply
            .tiers
            .iter()
            .map(|t| (t.tier_id.clone(), totals(t.members_before, t.points_before)))
            .collect(),
        after: reply
            .tiers
            .iter()
            .map(|t| (t.tier_id.clone(), totals(t.members_after, t.points_after)))
            .collect(),
        slow_scripts: reply
            .slow_scripts
            .into_iter()
            .map(|s| SlowScript {
                at: s.at,
                runs: s.runs,
                slowest_micros: s.slowest_micros,
                budget_micros: s.budget_micros,
            })
            .collect(),
    }
}

impl From<&Campaign> for pb::Campaign {
    fn from(c: &Campaign) -> Self {
        pb::Campaign {
            name: c.name.clone(),
            from: Some(timestamp(c.from)),
            until: Some(timestamp(c.until)),
            multiplier: c.multiplier.to_decimal_string(),
            channels: c.channels.clone(),
            tags: c.tags.clone(),
            tiers: c.tiers.clone(),
        }
    }
}
