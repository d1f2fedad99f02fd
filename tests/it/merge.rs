//! Merging members through the server: the same customer enrolled twice
//! becomes one member with both members' figures, the other id an alias
//! that later events, reads and returns follow; reports count the member
//! once; refusals say which id and why.

use tonic::Code;

use crate::harness::{TestServer, assert_refused};
use tierd::grpc::pb::{self, reports_client::ReportsClient};

/// member, silver from 100.00 and gold from 300.00 in a rolling year, 1
/// point per 1.00, a point worth 0.01.
const RULES: &str = "program: merges
version: m1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
reporting:
  point_value: \"0.01\"
tiers:
  - id: member
  - id: silver
    qualify: { purchase_volume: \"100.00\" }
  - id: gold
    qualify: { purchase_volume: \"300.00\" }
";

fn merge(source: &str, target: &str, txn: &str) -> pb::MergeMembersRequest {
    pb::MergeMembersRequest {
        source_member_id: source.into(),
        target_member_id: target.into(),
        transaction_id: txn.into(),
        reason: "same customer: card and web account".into(),
    }
}

fn kinds(changes: &[pb::TierChange]) -> Vec<(String, String, String, pb::TierChangeKind)> {
    changes
        .iter()
        .map(|c| {
            (
                c.member_id.clone(),
                c.from_tier.clone(),
                c.to_tier.clone(),
                c.kind(),
            )
        })
        .collect()
}

async fn distribution(server: &TestServer) -> Vec<(String, i64, i64)> {
    ReportsClient::new(server.channel.clone())
        .tier_distribution(pb::AsOfRequest::default())
        .await
        .expect("distribution")
        .into_inner()
        .tiers
        .into_iter()
        .map(|t| (t.tier, t.members, t.points_outstanding))
        .collect()
}

async fn outstanding(server: &TestServer) -> i64 {
    ReportsClient::new(server.channel.clone())
        .points_liability(pb::LiabilityRequest {})
        .await
        .expect("liability")
        .into_inner()
        .total
        .expect("total")
        .points_outstanding
}

#[tokio::test]
async fn a_merged_member_s_figures_and_events_land_on_the_member_that_remains() {
    // The test clock starts on 2026-03-02.
    let mut server = TestServer::with_rules(RULES).await;
    server.buy("card", "p1", 12_000).await;
    server
        .client
        .redeem_points(pb::RedeemPointsRequest {
            member_id: "card".into(),
            transaction_id: "x1".into(),
            points: 20,
            order_id: "p1".into(),
            reward_id: String::new(),
        })
        .await
        .expect("redeemed against p1");
    server.buy("web", "w1", 5_000).await;
    let before = distribution(&server).await;
    assert_eq!(
        before,
        [
            ("member".into(), 1, 50),
            ("silver".into(), 1, 100),
            ("gold".into(), 0, 0)
        ]
    );
    assert_eq!(outstanding(&server).await, 150);

    let merged = server
        .client
        .merge_members(merge("card", "web", "m1"))
        .await
        .expect("merged")
        .into_inner();
    assert!(!merged.duplicate);
    // One MERGED entry under each id; the remaining member takes the better
    // tier; 170.00 together is short of gold.
    assert_eq!(
        kinds(&merged.tier_changes),
        [
            (
                "card".into(),
                "silver".into(),
                "silver".into(),
                pb::TierChangeKind::Merged
            ),
            (
                "web".into(),
                "member".into(),
                "silver".into(),
                pb::TierChangeKind::Merged
            ),
        ]
    );
    assert_eq!(
        merged.tier_changes[1].reason,
        "merged \"card\" into \"web\": same customer: card and web account"
    );
    let web = merged.member.expect("the member");
    assert_eq!(
        (web.member_id.as_str(), web.tier_id.as_str()),
        ("web", "silver")
    );
    assert_eq!(
        (web.lifetime_value_minor, web.points_balance),
        (17_000, 150)
    );
    assert_eq!(web.merged_member_ids, ["card"]);
    let again = server
        .client
        .merge_members(merge("card", "web", "m1"))
        .await
        .expect("a retry")
        .into_inner();
    assert!(again.duplicate, "answered again");
    assert_eq!(again.tier_changes, merged.tier_changes);

    // Reports count the member once, with both members' figures.
    assert_eq!(
        distribution(&server).await,
        [
            ("member".into(), 0, 0),
            ("silver".into(), 1, 150),
            ("gold".into(), 0, 0)
        ]
    );
    assert_eq!(outstanding(&server).await, 150);

    // The source is an alias: GetMember says where it went.
    let asked = server.member("card").await;
    assert_eq!(asked.member_id, "web");
    let from = asked.merged_from.expect("merged_from");
    assert_eq!(
        (from.member_id.as_str(), from.merged_into.as_str()),
        ("card", "web")
    );
    assert_eq!(from.reason, "same customer: card and web account");
    // Its history stays under its id, ending with MERGED.
    let card_history = server.history("card").await;
    assert_eq!(
        card_history.last().map(pb::TierChange::kind),
        Some(pb::TierChangeKind::Merged)
    );

    // A purchase naming the source lands on the target: 320.00 is gold.
    let bought = server.buy("card", "p2", 15_000).await;
    let member = bought.member.expect("the member");
    assert_eq!(
        (member.member_id.as_str(), member.tier_id.as_str()),
        ("web", "gold")
    );
    let retried = server
        .client
        .record_purchase(server.purchase("card", "p2", 15_000))
        .await
        .expect("a retry naming the source")
        .into_inner();
    assert!(retried.duplicate);

    // A return of a purchase made under the source, named by either id,
    // takes back its points and gives back what was redeemed against it.
    let back = server
        .client
        .record_return(server.refund("web", "r1", "p1", 6_000))
        .await
        .expect("the source's purchase returned")
        .into_inner();
    assert_eq!((back.points_reversed, back.points_recredited), (60, 10));
    let back = server
        .client
        .record_return(server.refund("card", "r2", "p1", 6_000))
        .await
        .expect("named by the source")
        .into_inner();
    assert_eq!((back.points_reversed, back.points_recredited), (60, 10));
    // 150 + 150 earned, 120 taken back, 20 given back; 200.00 is silver.
    let web = server.member("web").await;
    assert_eq!(
        (web.lifetime_value_minor, web.points_balance),
        (20_000, 200)
    );
    assert_eq!(web.tier_id, "silver");
    assert_eq!(outstanding(&server).await, 200);

    // Upserting the source's attributes updates the target.
    let upserted = server
        .client
        .upsert_member(pb::UpsertMemberRequest {
            member_id: "card".into(),
            attributes: [("region".to_owned(), "north".to_owned())].into(),
            enrolled_at: None,
        })
        .await
        .expect("upserted")
        .into_inner();
    assert_eq!(upserted.member_id, "web");
    assert_eq!(upserted.attributes["region"], "north");

    // Merged again, into a third member: the alias follows.
    server.buy("kiosk", "k1", 1_000).await;
    server
        .client
        .merge_members(merge("web", "kiosk", "m2"))
        .await
        .expect("merged on");
    let kiosk = server.member("card").await;
    assert_eq!(kiosk.member_id, "kiosk");
    assert_eq!(kiosk.merged_member_ids, ["card", "web"]);
    assert_eq!(
        (kiosk.tier_id.as_str(), kiosk.lifetime_value_minor),
        ("silver", 21_000)
    );
    // An evaluation listing an alias decides the member it leads to, once.
    let evaluated = server
        .client
        .evaluate_tiers(pb::EvaluateTiersRequest {
            as_of: None,
            member_ids: vec!["card".into(), "kiosk".into()],
            dry_run: false,
        })
        .await
        .expect("evaluated")
        .into_inner();
    assert_eq!(evaluated.evaluated, 1);
    let mut server = server.restart().await;
    assert_eq!(
        server.member("web").await.member_id,
        "kiosk",
        "after a restart"
    );
    assert_eq!(
        distribution(&server).await,
        [
            ("member".into(), 0, 0),
            ("silver".into(), 1, 210),
            ("gold".into(), 0, 0)
        ]
    );
}

/// Refused with `code` naming `field`, and saying `says`.
#[track_caller]
fn refused<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: Code,
    field: &str,
    says: &str,
) {
    let message = result
        .as_ref()
        .err()
        .map(|status| status.message().to_owned());
    assert_refused(result, code, field);
    let message = message.unwrap_or_default();
    assert!(message.contains(says), "{message:?} must say {says:?}");
}

#[tokio::test]
async fn merges_that_cannot_be_are_refused_and_change_nothing() {
    let mut server = TestServer::with_rules(RULES).await;
    server.buy("a", "p1", 1_000).await;
    server.buy("b", "p2", 1_000).await;
    server.buy("c", "p3", 1_000).await;
    refused(
        server.client.merge_members(merge("a", "a", "m0")).await,
        Code::InvalidArgument,
        "target_member_id",
        "\"a\" is the source too",
    );
    refused(
        server
            .client
            .merge_members(merge("nobody", "a", "m0"))
            .await,
        Code::NotFound,
        "source_member_id",
        "no member \"nobody\"",
    );
    refused(
        server
            .client
            .merge_members(merge("a", "nobody", "m0"))
            .await,
        Code::NotFound,
        "target_member_id",
        "no member \"nobody\"",
    );
    let mut empty = merge("a", "b", "m0");
    empty.reason = String::new();
    assert_refused(
        server.client.merge_members(empty).await,
        Code::InvalidArgument,
        "reason",
    );
    server
        .client
        .merge_members(merge("a", "b", "m1"))
        .await
        .expect("merged");
    refused(
        server.client.merge_members(merge("a", "c", "m2")).await,
        Code::FailedPrecondition,
        "source_member_id",
        "\"a\" was merged into \"b\" already",
    );
    // Into an alias, or back along the merge (a loop): refused.
    refused(
        server.client.merge_members(merge("c", "a", "m3")).await,
        Code::FailedPrecondition,
        "target_member_id",
        "\"a\" was merged into \"b\"; merge into \"b\" instead",
    );
    refused(
        server.client.merge_members(merge("b", "a", "m4")).await,
        Code::FailedPrecondition,
        "target_member_id",
        "merge into \"b\" instead",
    );
    assert_refused(
        server.client.merge_members(merge("c", "b", "m1")).await,
        Code::AlreadyExists,
        "transaction_id",
    );
    server
        .client
        .close_member(pb::CloseMemberRequest {
            member_id: "c".into(),
            transaction_id: "x1".into(),
            reason: "left".into(),
            forfeit_points: false,
        })
        .await
        .expect("closed");
    refused(
        server.client.merge_members(merge("c", "b", "m5")).await,
        Code::FailedPrecondition,
        "member_id",
        "member \"c\" is closed",
    );
    let b = server.member("b").await;
    assert_eq!(
        (b.lifetime_value_minor, b.merged_member_ids.len()),
        (2_000, 1)
    );
    assert_eq!(server.member("c").await.lifetime_value_minor, 1_000);
}
