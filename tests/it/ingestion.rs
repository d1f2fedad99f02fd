//! Purchases, returns, adjustments and redemptions: exact totals,
//! idempotency, and concurrency on one member.

use futures::future::join_all;
use tonic::Code;

use crate::harness::TestServer;
use tierd::grpc::pb;

#[tokio::test]
async fn a_purchase_earns_points_and_counts_everywhere() {
    let mut server = TestServer::start().await;
    let response = server.buy("alice", "t1", 12_345).await;
    // 123.45 EUR at 1 point per euro = 123 points, no bonus below 200.00.
    assert_eq!(response.points_earned, 123);
    assert!(!response.duplicate);
    let member = response.member.expect("member in reply");
    assert_eq!(member.tier_id, "bronze");
    assert_eq!(member.points_balance, 123);
    assert_eq!(member.qualifying_points, 123);
    assert_eq!(member.purchase_volume_minor, 12_345);
    assert_eq!(member.purchase_count, 1);
    assert_eq!(member.lifetime_value_minor, 12_345);
    assert_eq!(member.rules_version, "2026.1");
    let next = member.next_tier.clone().expect("silver is next");
    assert_eq!(next.tier_id, "silver");
    assert_eq!(next.summary, "earn 377 more points or spend 276.55 more");
    assert_eq!(server.member("alice").await, member);
}

#[tokio::test]
async fn channel_and_tag_multipliers_and_the_bonus_script_apply() {
    let mut server = TestServer::start().await;
    let mut request = server.purchase("bob", "w1", 10_000);
    request.channel = "web".into();
    request.tags = vec!["double-points".into()];
    let response = server
        .client
        .record_purchase(request)
        .await
        .expect("ok")
        .into_inner();
    // 100.00 x 1.5 (web) x 2 (tag) = 300; the bonus is for pos only.
    assert_eq!(response.points_earned, 300);
    let response = server.buy("bob", "p1", 20_000).await;
    // 200.00 at the till: 200 + 25 bonus.
    assert_eq!(response.points_earned, 225);
}

#[tokio::test]
async fn a_retried_purchase_counts_once_and_returns_the_original_result() {
    let mut server = TestServer::start().await;
    let first = server.buy("carol", "t1", 5_000).await;
    let retry = server.buy("carol", "t1", 5_000).await;
    assert!(retry.duplicate);
    assert_eq!(retry.member, first.member);
    assert_eq!(retry.points_earned, first.points_earned);
    let member = server.member("carol").await;
    assert_eq!(member.purchase_count, 1);
    assert_eq!(member.points_balance, 50);
}

#[tokio::test]
async fn a_reused_transaction_id_with_another_payload_is_refused() {
    let mut server = TestServer::start().await;
    server.buy("dave", "t1", 5_000).await;
    let status = server
        .client
        .record_purchase(server.purchase("dave", "t1", 6_000))
        .await
        .expect_err("conflicting retry");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains("transaction_id"), "{status:?}");
    let status = server
        .client
        .record_purchase(server.purchase("erin", "t1", 5_000))
        .await
        .expect_err("same id, other member");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(server.member("dave").await.lifetime_value_minor, 5_000);
}

#[tokio::test]
async fn concurrent_purchases_for_one_member_lose_no_update() {
    let server = TestServer::start().await;
    let requests = (0..100).map(|i| {
        let mut client = server.client.clone();
        let request = server.purchase("busy", &format!("c{i}"), 1_000 + i);
        async move {
            client
                .record_purchase(request)
                .await
                .map(|r| r.into_inner().points_earned)
        }
    });
    let results = join_all(requests).await;
    let earned: i64 = results.into_iter().map(|r| r.expect("accepted")).sum();
    let mut client = server.client.clone();
    let member = client
        .get_member(pb::GetMemberRequest {
            member_id: "busy".into(),
        })
        .await
        .expect("member")
        .into_inner();
    let spent: i64 = (0..100).map(|i| 1_000 + i).sum();
    assert_eq!(member.purchase_count, 100);
    assert_eq!(member.lifetime_value_minor, spent);
    assert_eq!(member.purchase_volume_minor, spent);
    assert_eq!(member.points_balance, earned);
    assert_eq!(member.qualifying_points, earned);
    // 100 purchases of 10.00 to 10.99 earn 10 points each.
    assert_eq!(earned, 1_000);
}

#[tokio::test]
async fn returns_take_back_spend_and_points_in_proportion() {
    let mut server = TestServer::start().await;
    server.buy("fay", "p1", 10_000).await;
    let partial = server
        .client
        .record_return(server.refund("fay", "r1", "p1", 2_500))
        .await
        .expect("return accepted")
        .into_inner();
    assert_eq!(partial.points_reversed, 25);
    let rest = server
        .client
        .record_return(server.refund("fay", "r2", "p1", 7_500))
        .await
        .expect("return accepted")
        .into_inner();
    assert_eq!(rest.points_reversed, 75);
    let member = server.member("fay").await;
    assert_eq!(member.lifetime_value_minor, 0);
    assert_eq!(member.purchase_volume_minor, 0);
    assert_eq!(member.purchase_count, 0);
    assert_eq!(member.points_balance, 0);
    assert_eq!(member.qualifying_points, 0);
    let retry = server
        .client
        .record_return(server.refund("fay", "r2", "p1", 7_500))
        .await
        .expect("a retried return is answered")
        .into_inner();
    assert!(retry.duplicate);
}

#[tokio::test]
async fn partial_returns_round_so_a_full_return_takes_back_exactly_what_was_earned() {
    let mut server = TestServer::start().await;
    server.buy("gil", "p1", 999).await; // 9 points
    let mut reversed = 0;
    for (i, amount) in [333, 333, 333].into_iter().enumerate() {
        let request = server.refund("gil", &format!("r{i}"), "p1", amount);
        reversed += server
            .client
            .record_return(request)
            .await
            .expect("ok")
            .into_inner()
            .points_reversed;
    }
    assert_eq!(reversed, 9);
    assert_eq!(server.member("gil").await.points_balance, 0);
}

#[tokio::test]
async fn redemption_spends_the_balance_but_not_the_status() {
    let mut server = TestServer::start().await;
    let bought = server.buy("hal", "p1", 60_000).await;
    assert_eq!(bought.member.expect("member").tier_id, "silver");
    let redeemed = server
        .client
        .redeem_points(pb::RedeemPointsRequest {
            member_id: "hal".into(),
            transaction_id: "x1".into(),
            points: 600,
            order_id: String::new(),
            reward_id: String::new(),
        })
        .await
        .expect("redemption accepted")
        .into_inner();
    let member = redeemed.member.expect("member");
    assert_eq!(member.points_balance, 25);
    assert_eq!(member.qualifying_points, 625);
    assert_eq!(member.tier_id, "silver");
    let evaluated = server.evaluate_in_days(60).await;
    assert_eq!(evaluated.demoted, 0);
    assert_eq!(server.member("hal").await.tier_id, "silver");
}

#[tokio::test]
async fn adjustments_need_a_reason_and_move_both_counters() {
    let mut server = TestServer::start().await;
    server.buy("ivy", "p1", 1_000).await;
    let adjusted = server
        .client
        .adjust_points(pb::AdjustPointsRequest {
            member_id: "ivy".into(),
            transaction_id: "a1".into(),
            points: 490,
            reason: "goodwill: late delivery".into(),
            occurred_at: None,
        })
        .await
        .expect("adjustment accepted")
        .into_inner();
    let member = adjusted.member.expect("member");
    assert_eq!(member.points_balance, 500);
    assert_eq!(member.qualifying_points, 500);
    assert_eq!(member.tier_id, "silver", "an adjustment can promote");
    let corrected = server
        .client
        .adjust_points(pb::AdjustPointsRequest {
            member_id: "ivy".into(),
            transaction_id: "a2".into(),
            points: -100,
            reason: "correction".into(),
            occurred_at: None,
        })
        .await
        .expect("correction accepted")
        .into_inner();
    let member = corrected.member.expect("member");
    assert_eq!(member.points_balance, 400);
    assert_eq!(member.tier_id, "silver", "never demoted silently");
}

fn activity(server: &TestServer, member: &str, txn: &str, kind: &str) -> pb::RecordActivityRequest {
    pb::RecordActivityRequest {
        member_id: member.into(),
        transaction_id: txn.into(),
        kind: kind.into(),
        occurred_at: Some(tierd::grpc::convert::timestamp(server.clock.now())),
        attributes: Default::default(),
    }
}

#[tokio::test]
async fn activities_earn_within_their_caps_and_count_as_engagement() {
    let mut server = TestServer::start().await;
    let first = server
        .client
        .record_activity(activity(&server, "ola", "a1", "review"))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!((first.points_earned, first.capped), (50, false));
    let second = server
        .client
        .record_activity(activity(&server, "ola", "a2", "review"))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(
        (second.points_earned, second.capped),
        (0, true),
        "one review a day earns"
    );
    let retry = server
        .client
        .record_activity(activity(&server, "ola", "a2", "review"))
        .await
        .expect("answered")
        .into_inner();
    assert!(retry.duplicate && retry.capped);
    server
        .client
        .record_activity(activity(&server, "ola", "a3", "referral"))
        .await
        .expect("recorded");
    let member = server.member("ola").await;
    assert_eq!(member.points_balance, 250);
    assert_eq!(member.activity_count, 3, "capped activities still count");

    let status = server
        .client
        .record_activity(activity(&server, "ola", "a4", "revew"))
        .await
        .expect_err("unknown kind");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("did you mean `review`"),
        "{status:?}"
    );
}

const ENGAGEMENT: &str = "\
program: engaged
version: e1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
activities:
  email_click: { points: 0 }
tiers:
  - id: member
  - id: engaged
    qualify: { activity_count: 3 }
";

#[tokio::test]
async fn engagement_can_promote() {
    let mut server = TestServer::with_rules(ENGAGEMENT).await;
    for i in 0..2 {
        let reply = server
            .client
            .record_activity(activity(&server, "em", &format!("c{i}"), "email_click"))
            .await
            .expect("recorded")
            .into_inner();
        assert_eq!(reply.tier_change, None);
    }
    let third = server
        .client
        .record_activity(activity(&server, "em", "c2", "email_click"))
        .await
        .expect("recorded")
        .into_inner();
    let change = third.tier_change.expect("promoted by engagement");
    assert_eq!(change.to_tier, "engaged");
    assert!(
        change.reason.contains("activity_count 3 >= 3"),
        "{}",
        change.reason
    );
}

/// The review's reproduction: 1 point per unit, points expire after a
/// month; purchase A of 100.00 forty days ago (its 100 points lapsed),
/// purchase B of 100.00 now. Returning A must not take B's points: A's
/// already left once, as breakage. (It used to take them: balance 0.)
#[tokio::test]
async fn a_return_after_its_points_lapsed_leaves_the_other_points_alone() {
    const EXPIRING: &str = "\
program: lapse
version: l1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
points_expiry:
  months: 1
tiers:
  - id: member
";
    let mut server = TestServer::with_rules(EXPIRING).await;
    let mut late = server.purchase("ida", "A", 10_000);
    late.occurred_at = Some(tierd::grpc::convert::timestamp(
        server.clock.now() - chrono::TimeDelta::days(40),
    ));
    server.client.record_purchase(late).await.expect("A");
    server.buy("ida", "B", 10_000).await;
    assert_eq!(server.member("ida").await.points_balance, 100);
    let half = server
        .client
        .record_return(server.refund("ida", "rA1", "A", 5_000))
        .await
        .expect("partial return of A")
        .into_inner();
    assert_eq!(half.points_reversed, 0);
    let rest = server
        .client
        .record_return(server.refund("ida", "rA2", "A", 5_000))
        .await
        .expect("return of the rest of A")
        .into_inner();
    assert_eq!(rest.points_reversed, 0);
    let member = server.member("ida").await;
    assert_eq!(member.points_balance, 100, "B's points stay");
    assert_eq!(member.lifetime_value_minor, 10_000, "A's spend went back");
    // B, still live, is taken back in full.
    let b = server
        .client
        .record_return(server.refund("ida", "rB", "B", 10_000))
        .await
        .expect("return of B")
        .into_inner();
    assert_eq!(b.points_reversed, 100);
    assert_eq!(server.member("ida").await.points_balance, 0);
}
