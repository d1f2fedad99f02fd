//! Every conversion between the generated protobuf types and the domain, in
//! one place. Requests become commands (checking what protobuf itself cannot,
//! such as a valid timestamp or a known enum value); outcomes become replies.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use super::pb;
use crate::{
    engine::{ChangeKind, OverrideMode, TierOverride},
    ledger::{HistoryEntry, MemberView},
    live_rules::ReloadFailure,
    program::{
        ActivityEvent, Adjustment, OverrideCommand, ProgramError, Purchase, Recorded, Redemption,
        Return, Upsert,
    },
    rules::{Campaign, Diagnostic},
    simulate::Simulation,
    store::RulesVersion,
};

fn invalid(field: &'static str, message: &str) -> ProgramError {
    ProgramError::InvalidArgument {
        field,
        message: message.to_owned(),
    }
}

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
            .ok_or_else(|| invalid(field, "not a valid timestamp"))
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

impl TryFrom<pb::RecordPurchaseRequest> for Purchase {
    type Error = ProgramError;

    fn try_from(r: pb::RecordPurchaseRequest) -> Result<Self, ProgramError> {
        Ok(Purchase {
            occurred_at: time_from("occurred_at", r.occurred_at)?,
            member_id: r.member_id,
            transaction_id: r.transaction_id,
            amount_minor: r.amount_minor,
            currency: r.currency,
            channel: r.channel,
            store_id: r.store_id,
            tags: r.tags,
            actor: String::new(),
        })
    }
}

impl TryFrom<pb::RecordActivityRequest> for ActivityEvent {
    type Error = ProgramError;

    fn try_from(r: pb::RecordActivityRequest) -> Result<Self, ProgramError> {
        Ok(ActivityEvent {
            occurred_at: time_from("occurred_at", r.occurred_at)?,
            member_id: r.member_id,
            transaction_id: r.transaction_id,
            kind: r.kind,
            attributes: r.attributes.into_iter().collect(),
            actor: String::new(),
        })
    }
}

impl TryFrom<pb::RecordReturnRequest> for Return {
    type Error = ProgramError;

    fn try_from(r: pb::RecordReturnRequest) -> Result<Self, ProgramError> {
        Ok(Return {
            occurred_at: time_from("occurred_at", r.occurred_at)?,
            member_id: r.member_id,
            transaction_id: r.transaction_id,
            original_transaction_id: r.original_transaction_id,
            amount_minor: r.amount_minor,
            currency: r.currency,
            actor: String::new(),
        })
    }
}

impl From<pb::AdjustPointsRequest> for Adjustment {
    fn from(r: pb::AdjustPointsRequest) -> Self {
        Adjustment {
            member_id: r.member_id,
            transaction_id: r.transaction_id,
            points: r.points,
            reason: r.reason,
            actor: String::new(),
        }
    }
}

impl From<pb::RedeemPointsRequest> for Redemption {
    fn from(r: pb::RedeemPointsRequest) -> Self {
        Redemption {
            member_id: r.member_id,
            transaction_id: r.transaction_id,
            points: r.points,
            actor: String::new(),
        }
    }
}

impl TryFrom<pb::SetTierOverrideRequest> for OverrideCommand {
    type Error = ProgramError;

    fn try_from(r: pb::SetTierOverrideRequest) -> Result<Self, ProgramError> {
        let mode = match pb::OverrideMode::try_from(r.mode) {
            Ok(pb::OverrideMode::Floor) => Some(OverrideMode::Floor),
            Ok(pb::OverrideMode::Lock) => Some(OverrideMode::Lock),
            Ok(pb::OverrideMode::Clear) => None,
            Ok(pb::OverrideMode::Unspecified) | Err(_) => {
                return Err(invalid("mode", "must be FLOOR, LOCK or CLEAR"));
            }
        };
        Ok(OverrideCommand {
            until: time_from("until", r.until)?,
            member_id: r.member_id,
            tier_id: r.tier_id,
            mode,
            reason: r.reason,
        })
    }
}

impl TryFrom<pb::UpsertMemberRequest> for Upsert {
    type Error = ProgramError;

    fn try_from(r: pb::UpsertMemberRequest) -> Result<Self, ProgramError> {
        Ok(Upsert {
            enrolled_at: time_from("enrolled_at", r.enrolled_at)?,
            member_id: r.member_id,
            attributes: r.attributes.into_iter().collect(),
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
        }
    }
}

impl From<HistoryEntry> for pb::TierChange {
    fn from(entry: HistoryEntry) -> Self {
        pb::TierChange {
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
                shortfalls: n
                    .shortfalls
                    .into_iter()
                    .map(|(metric, missing)| pb::Shortfall { metric, missing })
                    .collect(),
            }),
            rules_version: m.rules_version,
            currency: m.currency,
            attributes: m.attributes.into_iter().collect(),
            enrolled_at: Some(timestamp(m.enrolled_at)),
            tier_override: m.tier_override.map(Into::into),
        }
    }
}

/// The parts of a write outcome every reply carries: the member, the points,
/// the tier change a client should show (the last one that is not the
/// INITIAL placement of a new member) and the duplicate flag.
pub struct Reply {
    /// The member after the write.
    pub member: Option<pb::Member>,
    /// Points earned, taken back or moved.
    pub points: i64,
    /// The tier change to show, if any.
    pub tier_change: Option<pb::TierChange>,
    /// True when this was a retry of a recorded request.
    pub duplicate: bool,
    /// True when a cap held an activity's points back.
    pub capped: bool,
}

impl From<Recorded> for Reply {
    fn from(recorded: Recorded) -> Self {
        let outcome = recorded.outcome;
        let tier_change = outcome
            .tier_changes
            .into_iter()
            .rev()
            .find(|e| e.change.kind != ChangeKind::Initial)
            .map(Into::into);
        Reply {
            member: Some(outcome.member.into()),
            points: outcome.points,
            tier_change,
            duplicate: recorded.duplicate,
            capped: outcome.capped,
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
        }
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
