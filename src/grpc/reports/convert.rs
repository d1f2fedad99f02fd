//! Reports to and from their protobuf messages, and report requests into
//! [`Query`]s. Both directions, so that a client (`tierd report --server`)
//! rebuilds the very report the server made and renders it the same way.
//!
//! Dates are `YYYY-MM-DD` strings (empty: not given); rows whose fields
//! match the report's one for one are converted by [`rows_both_ways`].

use chrono::NaiveDate;

use crate::{
    app::ProgramError,
    grpc::pb,
    report::{
        DEFAULT_RANKS, Header, Period, Query, Report,
        clusters::{Cluster, Clusters, DEFAULT_SEED, KScore},
        liability::{Liability, LiabilityRow, MonthHistory, MonthPoints, RewardRedemptions},
        predict::{
            BgNbdFit, GammaGammaFit, HoldoutRow, MemberPrediction, PredictOptions, Prediction,
            PredictionGroup,
        },
        segments::{GroupRow, Groups, SegmentAtEnd, SegmentMonth, SegmentSize, Segments},
        tier::{Distribution, Migration, MigrationRow, TierFigures},
        value::{
            BandRow, ParetoPoint, RankRow, Rfm, RfmCuts, RfmScore, SegmentRow, ValueBands,
            ValueRanks,
        },
    },
};

/// `From` both ways between a report row and its message, field for field.
macro_rules! rows_both_ways {
    ($($row:ident { $($field:ident),+ $(,)? })+) => {$(
        impl From<$row> for pb::$row {
            fn from(row: $row) -> Self {
                Self { $($field: row.$field),+ }
            }
        }

        impl From<pb::$row> for $row {
            fn from(row: pb::$row) -> Self {
                Self { $($field: row.$field),+ }
            }
        }
    )+};
}

rows_both_ways! {
    TierFigures { tier, members, share_percent, spend_in_window_minor, qualifying_points, points_outstanding }
    MigrationRow { from_tier, to, members }
    RankRow { rank, members, value_minor, share_percent, cumulative_share_percent, average_minor }
    ParetoPoint { top_percent, members, value_minor, share_percent }
    BandRow { band, up_to_minor, members, share_percent, value_minor }
    SegmentRow { segment, members, share_percent, monetary_minor }
    LiabilityRow { tier, members, points_outstanding, value_minor }
    MonthPoints { month, points, value_minor }
    MonthHistory { month, points_redeemed, redeemed_value_minor, points_lapsed, lapsed_value_minor }
    RewardRedemptions { reward_id, name, redemptions, points, value_minor }
    SegmentAtEnd { segment, members, share_percent, value_minor, lifetime_value_minor }
    SegmentSize { segment, members, value_minor }
    GroupRow { group, members, share_percent, purchases, net_spend_minor, value_minor, lifetime_value_minor }
    KScore { k, score }
    BgNbdFit { r, alpha, a, b, members }
    GammaGammaFit { p, q, gamma, members }
    PredictionGroup { group, members, p_alive_mean, expected_purchases, predicted_value_minor, past_value_minor }
    MemberPrediction { member_id, tier, purchase_days, p_alive, expected_purchases, expected_spend_minor, predicted_value_minor, past_value_minor }
    HoldoutRow { group, members, expected_purchases, actual_purchases }
    Cluster { cluster, members, share_percent, value_minor, monetary_minor, recency_days, frequency, average_monetary_minor, points, engagement }
}

fn rows<A, B: From<A>>(rows: Vec<A>) -> Vec<B> {
    rows.into_iter().map(B::from).collect()
}

fn day_text(day: Option<NaiveDate>) -> String {
    day.map(|d| d.to_string()).unwrap_or_default()
}

fn day_of(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

impl From<Header> for pb::ReportHeader {
    fn from(h: Header) -> Self {
        Self {
            report: h.report,
            as_of: day_text(h.as_of),
            from: day_text(h.from),
            to: day_text(h.to),
            rules_version: h.rules_version,
            currency: h.currency,
            spend_basis: h.spend_basis.unwrap_or_default(),
        }
    }
}

impl From<pb::ReportHeader> for Header {
    fn from(h: pb::ReportHeader) -> Self {
        Self {
            report: h.report,
            as_of: day_of(&h.as_of),
            from: day_of(&h.from),
            to: day_of(&h.to),
            rules_version: h.rules_version,
            currency: h.currency,
            spend_basis: Some(h.spend_basis).filter(|basis| !basis.is_empty()),
        }
    }
}

/// A message's header (a server always sends one).
fn header(h: Option<pb::ReportHeader>) -> Header {
    h.unwrap_or_default().into()
}

/// A message a report is answered with: made from the report of its own
/// kind, `None` from any other.
pub trait OfReport: Sized {
    /// The message, when `report` is of the kind it carries.
    fn of_report(report: Report) -> Option<Self>;
}

/// [`OfReport`] for each message made from one kind of report.
macro_rules! of_report {
    ($($variant:ident => $message:ty),+ $(,)?) => {$(
        impl OfReport for $message {
            fn of_report(report: Report) -> Option<Self> {
                match report {
                    Report::$variant(r) => Some(r.into()),
                    _ => None,
                }
            }
        }
    )+};
}

of_report! {
    Distribution => pb::DistributionReport,
    Migration => pb::MigrationReport,
    ValueRanks => pb::ValueRanksReport,
    ValueBands => pb::ValueBandsReport,
    Rfm => pb::RfmReport,
    Segments => pb::SegmentsReport,
    Groups => pb::GroupsReport,
    Clusters => pb::ClustersReport,
    Liability => pb::LiabilityReport,
    Prediction => pb::PredictionReport,
}

/// The RFM stream's messages (see [`rfm_messages`]).
impl OfReport for Vec<pb::RfmMembersResponse> {
    fn of_report(report: Report) -> Option<Self> {
        match report {
            Report::Rfm(r) => Some(rfm_messages(r)),
            _ => None,
        }
    }
}

/// `From` both ways between a report and its message: the header, plain
/// fields, lists of rows, and single rows (always sent).
macro_rules! reports_both_ways {
    ($($report:ident => $message:ident {
        fields: [$($field:ident),*], lists: [$($list:ident),*], rows: [$($one:ident),*] $(,)?
    })+) => {$(
        impl From<$report> for pb::$message {
            fn from(r: $report) -> Self {
                Self {
                    header: Some(r.header.into()),
                    $($field: r.$field,)*
                    $($list: rows(r.$list),)*
                    $($one: Some(r.$one.into()),)*
                }
            }
        }

        impl From<pb::$message> for $report {
            fn from(r: pb::$message) -> Self {
                Self {
                    header: header(r.header),
                    $($field: r.$field,)*
                    $($list: rows(r.$list),)*
                    $($one: r.$one.unwrap_or_default().into(),)*
                }
            }
        }
    )+};
}

reports_both_ways! {
    Distribution => DistributionReport { fields: [], lists: [tiers], rows: [total] }
    Migration => MigrationReport {
        fields: [tiers, members_at_start, members_at_end, promotions, demotions, manual_moves],
        lists: [rows],
        rows: [joined],
    }
    ValueRanks => ValueRanksReport {
        fields: [point_value_minor, members, contributing_members, value_minor, positive_value_minor],
        lists: [ranks, pareto],
        rows: [],
    }
    ValueBands => ValueBandsReport { fields: [members, value_minor], lists: [bands], rows: [] }
    Liability => LiabilityReport {
        fields: [point_value_minor],
        lists: [tiers, expiring, past, rewards],
        rows: [total],
    }
    Segments => SegmentsReport { fields: [members, unsegmented], lists: [segments, months], rows: [] }
    Groups => GroupsReport { fields: [attribute], lists: [groups], rows: [total] }
    Clusters => ClustersReport {
        fields: [seed, k, k_chosen, members, value_minor],
        lists: [silhouette, clusters],
        rows: [],
    }
}

impl From<Rfm> for pb::RfmReport {
    fn from(r: Rfm) -> Self {
        let cuts = pb::RfmCuts {
            recency_days: r
                .cuts
                .recency_days
                .iter()
                .map(|d| d.unwrap_or(-1))
                .collect(),
            frequency: r.cuts.frequency,
            monetary_minor: r.cuts.monetary_minor,
        };
        Self {
            header: Some(r.header.into()),
            members: r.members,
            cuts: Some(cuts),
            segments: rows(r.segments),
        }
    }
}

impl From<pb::RfmReport> for Rfm {
    fn from(r: pb::RfmReport) -> Self {
        let cuts = r.cuts.unwrap_or_default();
        Self {
            header: header(r.header),
            members: r.members,
            cuts: RfmCuts {
                recency_days: cuts
                    .recency_days
                    .into_iter()
                    .map(|d| (d >= 0).then_some(d))
                    .collect(),
                frequency: cuts.frequency,
                monetary_minor: cuts.monetary_minor,
            },
            segments: rows(r.segments),
            scores: Vec::new(),
        }
    }
}

/// Members per message of a report streamed with its members (RFM,
/// predictions).
pub const MEMBERS_PER_MESSAGE: usize = 1_000;

impl From<RfmScore> for pb::RfmMemberScore {
    fn from(s: RfmScore) -> Self {
        Self {
            member_id: s.member_id,
            recency_days: s.recency_days.unwrap_or(-1),
            frequency: s.frequency,
            monetary_minor: s.monetary_minor,
            r: u32::from(s.r),
            f: u32::from(s.f),
            m: u32::from(s.m),
            segment: s.segment,
        }
    }
}

impl From<pb::RfmMemberScore> for RfmScore {
    fn from(s: pb::RfmMemberScore) -> Self {
        let score = |x: u32| u8::try_from(x).unwrap_or(0);
        Self {
            member_id: s.member_id,
            recency_days: (s.recency_days >= 0).then_some(s.recency_days),
            frequency: s.frequency,
            monetary_minor: s.monetary_minor,
            r: score(s.r),
            f: score(s.f),
            m: score(s.m),
            segment: s.segment,
        }
    }
}

/// An RFM report with its members as the messages of a stream: the
/// summary in the first, the members in order, [`MEMBERS_PER_MESSAGE`]
/// at most in each.
pub fn rfm_messages(mut r: Rfm) -> Vec<pb::RfmMembersResponse> {
    let scores = std::mem::take(&mut r.scores);
    let summary = pb::RfmReport::from(r);
    in_messages(scores, summary, |summary, members| pb::RfmMembersResponse {
        summary,
        members,
    })
}

/// `members` in messages of at most [`MEMBERS_PER_MESSAGE`], in
/// order, `head` in the first (which is sent even without members).
fn in_messages<Row, Member, Head, Message>(
    members: Vec<Row>,
    head: Head,
    message: impl Fn(Option<Head>, Vec<Member>) -> Message,
) -> Vec<Message>
where
    Member: From<Row>,
{
    let mut head = Some(head);
    let mut members = members.into_iter().map(Member::from).peekable();
    let mut messages = Vec::new();
    while head.is_some() || members.peek().is_some() {
        let chunk: Vec<Member> = members.by_ref().take(MEMBERS_PER_MESSAGE).collect();
        messages.push(message(head.take(), chunk));
    }
    messages
}

/// The RFM report a stream's messages carry, members included.
pub fn rfm_of_messages(messages: Vec<pb::RfmMembersResponse>) -> Rfm {
    let mut summary = None;
    let mut scores = Vec::new();
    for message in messages {
        summary = summary.or(message.summary);
        scores.extend(message.members.into_iter().map(RfmScore::from));
    }
    Rfm {
        scores,
        ..Rfm::from(summary.unwrap_or_default())
    }
}

/// An RFM-with-members request's query.
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn rfm_members_query(r: pb::PeriodRequest, today: NaiveDate) -> Result<Query, ProgramError> {
    Ok(Query::Rfm {
        period: period_option(&r.from, &r.to, today)?,
        with_members: true,
    })
}

/// A date option: empty is `default`, anything else must be `YYYY-MM-DD`.
///
/// # Errors
/// INVALID_ARGUMENT naming `field`.
pub fn date_option(
    field: &'static str,
    text: &str,
    default: NaiveDate,
) -> Result<NaiveDate, ProgramError> {
    if text.is_empty() {
        return Ok(default);
    }
    day_of(text).ok_or_else(|| {
        ProgramError::invalid(
            field,
            format!("{text:?} is not a date in the form YYYY-MM-DD"),
        )
    })
}

/// A period from its two options: `to` defaults to today, `from` to the
/// day after the same date a year before `to` (12 whole months).
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn period_option(from: &str, to: &str, today: NaiveDate) -> Result<Period, ProgramError> {
    let to = date_option("to", to, today)?;
    Ok(Period {
        from: date_option("from", from, Period::year_to(to).from)?,
        to,
    })
}

impl From<SegmentMonth> for pb::SegmentMonth {
    fn from(m: SegmentMonth) -> Self {
        Self {
            month: m.month,
            as_of: m.as_of.to_string(),
            members: m.members,
            segments: rows(m.segments),
        }
    }
}

impl From<pb::SegmentMonth> for SegmentMonth {
    fn from(m: pb::SegmentMonth) -> Self {
        Self {
            month: m.month,
            as_of: day_of(&m.as_of).unwrap_or_default(),
            members: m.members,
            segments: rows(m.segments),
        }
    }
}

/// A clusters request's query (k 0: chosen; no seed: [`DEFAULT_SEED`]).
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn clusters_query(r: pb::ClustersRequest, today: NaiveDate) -> Result<Query, ProgramError> {
    Ok(Query::Clusters {
        period: period_option(&r.from, &r.to, today)?,
        k: (r.k != 0).then_some(r.k),
        seed: r.seed.unwrap_or(DEFAULT_SEED),
    })
}

/// A segments request's query.
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn segments_query(r: pb::PeriodRequest, today: NaiveDate) -> Result<Query, ProgramError> {
    Ok(Query::Segments(period_option(&r.from, &r.to, today)?))
}

/// A groups request's query (the attribute is checked by the report).
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn groups_query(r: pb::GroupsRequest, today: NaiveDate) -> Result<Query, ProgramError> {
    Ok(Query::Groups {
        period: period_option(&r.from, &r.to, today)?,
        by: r.by,
    })
}

/// A distribution request's query.
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn distribution_query(r: pb::AsOfRequest, today: NaiveDate) -> Result<Query, ProgramError> {
    Ok(Query::Distribution {
        as_of: date_option("as_of", &r.as_of, today)?,
    })
}

/// A value-bands request's query.
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn value_bands_query(r: pb::AsOfRequest, today: NaiveDate) -> Result<Query, ProgramError> {
    Ok(Query::ValueBands {
        as_of: date_option("as_of", &r.as_of, today)?,
    })
}

/// A migration request's query.
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn migration_query(r: pb::PeriodRequest, today: NaiveDate) -> Result<Query, ProgramError> {
    Ok(Query::Migration(period_option(&r.from, &r.to, today)?))
}

/// An RFM request's query (the summary: a message holds no member list).
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn rfm_query(r: pb::PeriodRequest, today: NaiveDate) -> Result<Query, ProgramError> {
    Ok(Query::Rfm {
        period: period_option(&r.from, &r.to, today)?,
        with_members: false,
    })
}

/// A value-ranks request's query (0 ranks: [`DEFAULT_RANKS`]).
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn value_ranks_query(
    r: pb::ValueRanksRequest,
    today: NaiveDate,
) -> Result<Query, ProgramError> {
    Ok(Query::ValueRanks {
        period: period_option(&r.from, &r.to, today)?,
        ranks: if r.ranks == 0 { DEFAULT_RANKS } else { r.ranks },
    })
}

impl From<Prediction> for pb::PredictionReport {
    fn from(r: Prediction) -> Self {
        Self {
            header: Some(r.header.into()),
            days: r.days,
            months: r.months,
            discount_bp: r.discount_bp,
            alive_below_percent: r.alive_below_percent,
            bg_nbd: Some(r.bg_nbd.into()),
            gamma_gamma: Some(r.gamma_gamma.into()),
            members_without_purchases: r.members_without_purchases,
            tiers: rows(r.tiers),
            groups: rows(r.groups),
            total: Some(r.total.into()),
            at_risk: rows(r.at_risk),
            holdout: rows(r.holdout),
            rfm_segments: rows(r.rfm_segments),
            segments: rows(r.segments),
        }
    }
}

impl From<pb::PredictionReport> for Prediction {
    fn from(r: pb::PredictionReport) -> Self {
        Self {
            header: header(r.header),
            days: r.days,
            months: r.months,
            discount_bp: r.discount_bp,
            alive_below_percent: r.alive_below_percent,
            bg_nbd: r.bg_nbd.unwrap_or_default().into(),
            gamma_gamma: r.gamma_gamma.unwrap_or_default().into(),
            members_without_purchases: r.members_without_purchases,
            tiers: rows(r.tiers),
            groups: rows(r.groups),
            total: r.total.unwrap_or_default().into(),
            at_risk: rows(r.at_risk),
            holdout: rows(r.holdout),
            rfm_segments: rows(r.rfm_segments),
            segments: rows(r.segments),
            members: Vec::new(),
        }
    }
}

/// The `PredictMembers` stream's messages (see [`prediction_messages`]).
impl OfReport for Vec<pb::PredictMembersResponse> {
    fn of_report(report: Report) -> Option<Self> {
        match report {
            Report::Prediction(r) => Some(prediction_messages(r)),
            _ => None,
        }
    }
}

/// A prediction with its members as the messages of a stream: the report
/// in the first, the members in order, [`MEMBERS_PER_MESSAGE`] at most
/// in each.
pub fn prediction_messages(mut r: Prediction) -> Vec<pb::PredictMembersResponse> {
    let members = std::mem::take(&mut r.members);
    let report = pb::PredictionReport::from(r);
    in_messages(members, report, |report, members| {
        pb::PredictMembersResponse { report, members }
    })
}

/// The prediction a stream's messages carry, members included.
pub fn prediction_of_messages(messages: Vec<pb::PredictMembersResponse>) -> Prediction {
    let mut report = None;
    let mut members = Vec::new();
    for message in messages {
        report = report.or(message.report);
        members.extend(message.members.into_iter().map(MemberPrediction::from));
    }
    Prediction {
        members,
        ..Prediction::from(report.unwrap_or_default())
    }
}

/// A prediction request's query, without the member list.
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn predict_query(r: pb::PredictRequest, today: NaiveDate) -> Result<Query, ProgramError> {
    predict_options(r, today, false).map(Query::Predict)
}

/// The queries of the page's reports, in the order of
/// [`pb::PageReport`]'s fields: each from its request as its own call
/// reads it (unset: that call's defaults).
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn page_queries(r: pb::PageRequest, today: NaiveDate) -> Result<Vec<Query>, ProgramError> {
    Ok(vec![
        distribution_query(r.distribution.unwrap_or_default(), today)?,
        migration_query(r.migration.unwrap_or_default(), today)?,
        value_ranks_query(r.value_ranks.unwrap_or_default(), today)?,
        value_bands_query(r.value_bands.unwrap_or_default(), today)?,
        rfm_query(r.rfm.unwrap_or_default(), today)?,
        segments_query(r.segments.unwrap_or_default(), today)?,
        clusters_query(r.clusters.unwrap_or_default(), today)?,
        Query::Liability,
        predict_query(r.predict.unwrap_or_default(), today)?,
    ])
}

/// A prediction request's query, with the member list.
///
/// # Errors
/// INVALID_ARGUMENT naming the malformed option.
pub fn predict_members_query(
    r: pb::PredictRequest,
    today: NaiveDate,
) -> Result<Query, ProgramError> {
    predict_options(r, today, true).map(Query::Predict)
}

/// The options of a prediction request (0 or unset: the defaults).
fn predict_options(
    r: pb::PredictRequest,
    today: NaiveDate,
    with_members: bool,
) -> Result<PredictOptions, ProgramError> {
    let defaults = PredictOptions::default();
    let or_default = |given: u32, default: u32| if given == 0 { default } else { given };
    Ok(PredictOptions {
        calibration_end: Some(date_option("calibration_end", &r.calibration_end, today)?),
        days: or_default(r.days, defaults.days),
        months: or_default(r.months, defaults.months),
        discount_bp: r.discount_bp.unwrap_or(defaults.discount_bp),
        alive_below_percent: or_default(r.alive_below_percent, defaults.alive_below_percent),
        at_risk: r.at_risk.unwrap_or(defaults.at_risk),
        by: Some(r.by).filter(|by| !by.is_empty()),
        with_members,
    })
}
