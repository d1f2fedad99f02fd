//! The reward catalogue through the server: `RedeemPoints` naming a
//! `reward_id` is charged the catalogue's cost (Odoo's tests: the real
//! cost, 5, not a client's 1), refused with the reason for a tier below
//! the reward's or outside its dates, and `GetMember` offers what the
//! member may have now and what the next tier opens.

use chrono::TimeDelta;
use tonic::Code;

use crate::harness::{TestServer, assert_refused};
use tierd::grpc::pb;

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
