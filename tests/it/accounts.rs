//! Closing and reopening accounts through the server: a closed account
//! earns, redeems and is placed by hand no more (returns still count), its
//! tier stands still, its points are forfeited as breakage or kept for a
//! re-open, and it may be reopened within the rules' period.

use chrono::TimeDelta;
use tonic::Code;

use crate::harness::{TestServer, assert_refused};
use tierd::grpc::pb::{self, reports_client::ReportsClient};

/// Members and silver (100.00 in a rolling year, kept while 100.00 holds),
/// 1 point per 1.00, a point worth 0.01; a closed account may be reopened
/// within 30 days.
const RULES: &str = "program: accounts
version: a1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
reporting:
  point_value: \"0.01\"
accounts:
  reopen_within_days: 30
tiers:
  - id: member
  - id: silver
    qualify: { purchase_volume: \"100.00\" }
    retain: { purchase_volume: \"100.00\" }
";

fn close(txn: &str, forfeit_points: bool) -> pb::CloseMemberRequest {
    pb::CloseMemberRequest {
        member_id: "ann".into(),
        transaction_id: txn.into(),
        reason: "moving abroad".into(),
        forfeit_points,
    }
}

fn reopen(txn: &str) -> pb::ReopenMemberRequest {
    pb::ReopenMemberRequest {
        member_id: "ann".into(),
        transaction_id: txn.into(),
        reason: "came back".into(),
    }
}

fn redeem(txn: &str, points: i64) -> pb::RedeemPointsRequest {
    pb::RedeemPointsRequest {
        member_id: "ann".into(),
        transaction_id: txn.into(),
        points,
        order_id: String::new(),
        reward_id: String::new(),
    }
}

fn adjust(txn: &str, points: i64) -> pb::AdjustPointsRequest {
    pb::AdjustPointsRequest {
        member_id: "ann".into(),
        transaction_id: txn.into(),
        points,
        reason: "goodwill".into(),
        occurred_at: None,
    }
}

#[tokio::test]
async fn a_closed_account_earns_and_redeems_nothing_until_reopened() {
    // The test clock starts on 2026-03-02.
    let mut server = TestServer::with_rules(RULES).await;
    server.buy("ann", "p1", 20_000).await;
    server.buy("bob", "b1", 20_000).await;
    let closed = server
        .client
        .close_member(close("c1", false))
        .await
        .expect("closed")
        .into_inner();
    assert_eq!(closed.points_forfeited, 0);
    let entry = closed.tier_change.expect("the CLOSED entry");
    assert_eq!(entry.kind(), pb::TierChangeKind::Closed);
    assert_eq!(
        (entry.from_tier.as_str(), entry.to_tier.as_str()),
        ("silver", "silver")
    );
    assert_eq!(
        entry.reason,
        "closed: moving abroad; points kept for a re-open"
    );
    let ann = closed.member.expect("the member");
    assert_eq!(ann.points_balance, 200, "kept for a re-open");
    let closure = ann.closed.expect("closed");
    assert_eq!(closure.reason, "moving abroad");
    let days = |t: Option<prost_types::Timestamp>| t.expect("a time").seconds / 86_400;
    assert_eq!(days(closure.reopen_until) - days(closure.closed_at), 30);

    let retry = server.client.close_member(close("c1", false)).await;
    assert!(
        retry.expect("a retry").into_inner().duplicate,
        "answered again"
    );
    assert_refused(
        server.client.close_member(close("c2", true)).await,
        Code::FailedPrecondition,
        "is closed already",
    );

    // Nothing earns, redeems or places; each refusal names the member.
    let says = "member_id: member \"ann\" is closed (since 2026-03-02 10:00:00 UTC: moving abroad)";
    let purchase = server.purchase("ann", "p2", 5_000);
    assert_refused(
        server.client.record_purchase(purchase).await,
        Code::FailedPrecondition,
        says,
    );
    assert_refused(
        server.client.redeem_points(redeem("x1", 10)).await,
        Code::FailedPrecondition,
        says,
    );
    assert_refused(
        server.client.adjust_points(adjust("a1", 10)).await,
        Code::FailedPrecondition,
        says,
    );
    let place = pb::SetTierOverrideRequest {
        member_id: "ann".into(),
        tier_id: "silver".into(),
        mode: pb::OverrideMode::Floor.into(),
        until: None,
        reason: "vip".into(),
        transaction_id: "o1".into(),
    };
    assert_refused(
        server.client.set_tier_override(place).await,
        Code::FailedPrecondition,
        says,
    );
    // A return still counts: the money went back.
    let back = server
        .client
        .record_return(server.refund("ann", "r1", "p1", 15_000))
        .await
        .expect("a return is taken")
        .into_inner();
    assert_eq!(back.points_reversed, 150);

    // The tier stands still: a year on, bob (open) drops, ann does not.
    let swept = server.evaluate_in_days(400).await;
    assert_eq!(swept.demoted, 1, "{swept:?}");
    assert_eq!(server.member("bob").await.tier_id, "member");
    assert_eq!(server.member("ann").await.tier_id, "silver");

    server.clock.advance(TimeDelta::days(10));
    let reopened = server
        .client
        .reopen_member(reopen("o2"))
        .await
        .expect("reopened")
        .into_inner();
    let kinds: Vec<pb::TierChangeKind> = reopened.tier_changes.iter().map(|c| c.kind()).collect();
    // Reopened, the account is decided under the rules in force: the
    // return left 50.00, short of silver's 100.00, so it drops now.
    assert_eq!(
        kinds,
        [pb::TierChangeKind::Reopened, pb::TierChangeKind::Demotion]
    );
    let ann = reopened.member.expect("the member");
    assert!(ann.closed.is_none());
    assert_eq!((ann.tier_id.as_str(), ann.points_balance), ("member", 50));
    server.buy("ann", "p3", 1_000).await;
    assert_refused(
        server.client.reopen_member(reopen("o3")).await,
        Code::FailedPrecondition,
        "member \"ann\" is not closed",
    );
}

#[tokio::test]
async fn forfeited_points_are_breakage_on_the_closing_day_and_a_late_reopen_is_refused() {
    let mut server = TestServer::with_rules(RULES).await;
    server.buy("ann", "p1", 12_345).await;
    let closed = server
        .client
        .close_member(close("c1", true))
        .await
        .expect("closed")
        .into_inner();
    assert_eq!(closed.points_forfeited, 123);
    assert_eq!(closed.member.expect("the member").points_balance, 0);
    let liability = ReportsClient::new(server.channel.clone())
        .points_liability(pb::LiabilityRequest {})
        .await
        .expect("liability")
        .into_inner();
    let march = liability.past.last().expect("this month");
    assert_eq!(
        (
            march.month.as_str(),
            march.points_lapsed,
            march.lapsed_value_minor
        ),
        ("2026-03", 123, 123)
    );
    assert_eq!(liability.total.expect("total").points_outstanding, 0);

    server.clock.advance(TimeDelta::days(31));
    assert_refused(
        server.client.reopen_member(reopen("o1")).await,
        Code::FailedPrecondition,
        "the rules allow reopening within 30 days of closing (until 2026-04-01 10:00:00 UTC)",
    );
    let history = server.history("ann").await;
    let last = history.last().expect("entries");
    assert_eq!(last.kind(), pb::TierChangeKind::Closed);
    assert_eq!(last.reason, "closed: moving abroad; 123 points forfeited");
}
