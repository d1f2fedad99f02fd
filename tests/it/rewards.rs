//! The reward catalogue through the server: `RedeemPoints` naming a
//! `reward_id` is charged the catalogue's cost (Odoo's tests: the real
//! cost, 5, not a client's 1), refused with the reason for a tier below
//! the reward's, outside its dates or over its limits per member and
//! period, `GetMember` offers what the member may have now and what the
//! next tier opens, and the liability report shows redemptions by reward.

use chrono::TimeDelta;
use tonic::Code;

use crate::harness::{TestServer, assert_refused};
use tierd::grpc::pb::{self, reports_client::ReportsClient};

/// A ladder of bronze, silver (100.00) and gold (500.00), 1 point per
/// 1.00, and three rewards: a tote for anyone, the lounge from silver, a
/// spring mug from 2026-03-10 until 2026-03-20 (the test clock starts on
/// 2026-03-02).
const RULES: &str = "program: rewards
version: r1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
tiers:
  - id: bronze
  - id: silver
    qualify: { purchase_volume: \"100.00\" }
  - id: gold
    qualify: { purchase_volume: \"500.00\" }
rewards:
  - { id: tote, name: A tote bag, cost: 5 }
  - { id: lounge, name: Lounge access, cost: 50, min_tier: silver }
  - id: spring
    name: A spring mug
    cost: 20
    from: 2026-03-10T00:00:00Z
    until: 2026-03-20T00:00:00Z
";

fn redeem(txn: &str, reward_id: &str, points: i64) -> pb::RedeemPointsRequest {
    pb::RedeemPointsRequest {
        member_id: "ann".into(),
        transaction_id: txn.into(),
        points,
        order_id: String::new(),
        reward_id: reward_id.into(),
    }
}

/// ann's balance after redeeming `request`, which must be accepted.
async fn balance_after(server: &mut TestServer, request: pb::RedeemPointsRequest) -> i64 {
    server
        .client
        .redeem_points(request)
        .await
        .expect("redemption accepted")
        .into_inner()
        .member
        .expect("the member")
        .points_balance
}

/// The (id, cost, affordable) of offered rewards.
fn offered(rewards: &[pb::Reward]) -> Vec<(&str, i64, bool)> {
    rewards
        .iter()
        .map(|r| (r.id.as_str(), r.cost_points, r.affordable))
        .collect()
}

#[tokio::test]
async fn the_server_charges_a_reward_s_cost_and_says_why_it_refuses_one() {
    let mut server = TestServer::with_rules(RULES).await;
    server.buy("ann", "p1", 6_000).await;
    let ann = server.member("ann").await;
    assert_eq!(offered(&ann.rewards), [("tote", 5, true)]);
    let next = ann.next_tier.expect("silver is next");
    assert_eq!(offered(&next.rewards), [("lounge", 50, true)]);

    assert_eq!(
        balance_after(&mut server, redeem("x1", "tote", 0)).await,
        55
    );
    assert_refused(
        server.client.redeem_points(redeem("x2", "tote", 1)).await,
        Code::InvalidArgument,
        "points",
    );
    assert_eq!(
        server.member("ann").await.points_balance,
        55,
        "nothing spent"
    );
    assert_eq!(
        balance_after(&mut server, redeem("x3", "tote", 5)).await,
        50
    );
    let refused = [
        (
            "lounge",
            Code::FailedPrecondition,
            "for silver and the tiers above it; the member is bronze",
        ),
        (
            "spring",
            Code::FailedPrecondition,
            "is offered from 2026-03-10",
        ),
        ("tot", Code::InvalidArgument, "did you mean `tote`?"),
    ];
    for (n, (reward, code, says)) in refused.into_iter().enumerate() {
        let status = server
            .client
            .redeem_points(redeem(&format!("bad{n}"), reward, 0))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains("reward_id"), "{status:?}");
        assert!(status.message().contains(says), "{status:?}");
    }
    assert_eq!(
        server.member("ann").await.points_balance,
        50,
        "nothing spent"
    );

    server.clock.advance(TimeDelta::days(10));
    assert_eq!(
        balance_after(&mut server, redeem("x4", "spring", 0)).await,
        30
    );
    server.clock.advance(TimeDelta::days(10));
    assert_refused(
        server.client.redeem_points(redeem("x5", "spring", 0)).await,
        Code::FailedPrecondition,
        "was offered until 2026-03-20",
    );

    server.buy("ann", "p2", 10_000).await;
    let ann = server.member("ann").await;
    assert_eq!(ann.tier_id, "silver");
    assert_eq!(
        offered(&ann.rewards),
        [("tote", 5, true), ("lounge", 50, true)]
    );
    assert_eq!(
        balance_after(&mut server, redeem("x6", "lounge", 50)).await,
        80
    );

    // A retry is answered from its receipt; the same id for another
    // reward is another request.
    let retry = server
        .client
        .redeem_points(redeem("x1", "tote", 0))
        .await
        .expect("a retry")
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(
        server.member("ann").await.points_balance,
        80,
        "charged once"
    );
    assert_refused(
        server.client.redeem_points(redeem("x1", "lounge", 0)).await,
        Code::AlreadyExists,
        "transaction_id",
    );
    assert_refused(
        server.client.redeem_points(redeem("x7", "", 0)).await,
        Code::InvalidArgument,
        "points",
    );
}

/// A coffee at most once a day and twice a week, a mug once per member; 1
/// point per 1.00, a point worth 0.01.
const LIMITED: &str = "program: limits
version: l1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
reporting:
  point_value: \"0.01\"
tiers:
  - id: member
rewards:
  - { id: coffee, name: A coffee, cost: 10, max_per_day: 1, max_per_week: 2 }
  - { id: mug, name: A mug, cost: 20, max_per_member: 1 }
  - { id: tote, name: A tote bag, cost: 5 }
";

/// Redeems `reward` for ann as `txn`; the refusal's status if refused.
async fn try_reward(
    server: &mut TestServer,
    txn: &str,
    reward: &str,
) -> Result<i64, tonic::Status> {
    server
        .client
        .redeem_points(redeem(txn, reward, 0))
        .await
        .map(|answer| answer.into_inner().member.map_or(0, |m| m.points_balance))
}

/// The ids of the rewards ann is offered now.
async fn offered_ids(server: &mut TestServer) -> Vec<String> {
    let ann = server.member("ann").await;
    ann.rewards.into_iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn a_reward_s_limits_count_per_member_and_period_and_the_liability_shows_them_by_reward() {
    // The test clock starts on Monday 2026-03-02.
    let mut server = TestServer::with_rules(LIMITED).await;
    server.buy("ann", "p1", 50_000).await;
    assert_eq!(
        try_reward(&mut server, "c1", "coffee").await.ok(),
        Some(490)
    );
    assert_eq!(
        offered_ids(&mut server).await,
        ["mug", "tote"],
        "no second coffee today"
    );
    let again = try_reward(&mut server, "c2", "coffee")
        .await
        .expect_err("one a day");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(
        again.message().contains(
            "reward_id: reward `coffee` is limited to 1 per member a day, and this member has had 1"
        ),
        "{again:?}"
    );
    // A retry of the first is answered from its receipt, not counted again.
    let retry = server.client.redeem_points(redeem("c1", "coffee", 0)).await;
    assert!(retry.expect("a retry").into_inner().duplicate);

    server.clock.advance(TimeDelta::days(1));
    assert_eq!(
        try_reward(&mut server, "c3", "coffee").await.ok(),
        Some(480)
    );
    server.clock.advance(TimeDelta::days(1));
    assert_refused(
        server.client.redeem_points(redeem("c4", "coffee", 0)).await,
        Code::FailedPrecondition,
        "limited to 2 per member a week (Monday to Sunday), and this member has had 2",
    );
    // Monday 9 March begins another week.
    server.clock.advance(TimeDelta::days(5));
    assert_eq!(
        try_reward(&mut server, "c5", "coffee").await.ok(),
        Some(470)
    );

    assert_eq!(try_reward(&mut server, "m1", "mug").await.ok(), Some(450));
    // The counts are stored with the member: a restart keeps them.
    let mut server = server.restart().await;
    server.clock.advance(TimeDelta::days(1_000));
    server.buy("ann", "p2", 10_000).await;
    assert_refused(
        server.client.redeem_points(redeem("m2", "mug", 0)).await,
        Code::FailedPrecondition,
        "limited to 1 per member over the membership, and this member has had 1",
    );
    assert_eq!(offered_ids(&mut server).await, ["coffee", "tote"]);

    // Points redeemed against an order without a reward, given back when
    // the order is returned; a tote.
    let mut order = redeem("o1", "", 30);
    order.order_id = "p2".into();
    server.client.redeem_points(order).await.expect("redeemed");
    server
        .client
        .record_return(server.refund("ann", "r2", "p2", 10_000))
        .await
        .expect("returned");
    assert!(try_reward(&mut server, "t1", "tote").await.is_ok());
    assert!(try_reward(&mut server, "c6", "coffee").await.is_ok());

    let liability = ReportsClient::new(server.channel.clone())
        .points_liability(pb::LiabilityRequest {})
        .await
        .expect("liability")
        .into_inner();
    let rows: Vec<(&str, &str, i64, i64, i64)> = liability
        .rewards
        .iter()
        .map(|r| {
            (
                r.reward_id.as_str(),
                r.name.as_str(),
                r.redemptions,
                r.points,
                r.value_minor,
            )
        })
        .collect();
    // Only the last 12 months: the coffees and the mug of March 2026 are
    // 1,000 days back, beyond the day totals kept.
    assert_eq!(
        rows,
        [
            ("coffee", "A coffee", 1, 10, 10),
            ("mug", "A mug", 0, 0, 0),
            ("tote", "A tote bag", 1, 5, 5),
            ("", "without a reward", 0, 30, 30),
            ("", "given back by returns", 0, -30, -30),
        ]
    );
    let redeemed: i64 = liability.past.iter().map(|m| m.points_redeemed).sum();
    assert_eq!(
        rows.iter().map(|r| r.3).sum::<i64>(),
        redeemed,
        "the rows add up"
    );
    assert_eq!(redeemed, 15);
}
