//! Manual tier overrides: FLOOR, LOCK and CLEAR, each recorded as MANUAL,
//! idempotent on their transaction id, and nothing written for a request
//! that changes nothing.

use chrono::TimeDelta;
use tonic::Code;

use crate::harness::{TestServer, moves};
use tierd::grpc::{
    convert::timestamp,
    pb::{self, OverrideMode, TierChangeKind},
};

fn request(
    member: &str,
    tier: &str,
    mode: OverrideMode,
    reason: &str,
) -> pb::SetTierOverrideRequest {
    pb::SetTierOverrideRequest {
        member_id: member.into(),
        tier_id: tier.into(),
        mode: mode.into(),
        until: None,
        reason: reason.into(),
        transaction_id: format!("override-{member}-{tier}-{reason}"),
    }
}

#[tokio::test]
async fn a_floor_lifts_the_member_and_stops_demotion_but_not_promotion() {
    let mut server = TestServer::start().await;
    server.buy("amy", "p1", 1_000).await;
    let set = server
        .client
        .set_tier_override(request(
            "amy",
            "gold",
            OverrideMode::Floor,
            "service recovery",
        ))
        .await
        .expect("override set")
        .into_inner();
    let change = set.tier_change.expect("manual entry");
    assert_eq!(change.kind(), TierChangeKind::Manual);
    assert_eq!(
        (change.from_tier.as_str(), change.to_tier.as_str()),
        ("bronze", "gold")
    );
    assert!(
        change.reason.contains("service recovery"),
        "{}",
        change.reason
    );
    let member = set.member.expect("member");
    assert_eq!(member.tier_id, "gold");
    assert_eq!(
        member.tier_override.expect("in force").mode(),
        OverrideMode::Floor
    );

    server.evaluate_in_days(1).await; // retain fails: the grace clock starts
    let swept = server.evaluate_in_days(100).await;
    assert_eq!(swept.demoted, 0, "the floor holds");
    assert_eq!(server.member("amy").await.tier_id, "gold");

    let promoted = server.buy("amy", "p2", 1_000_000).await;
    assert_eq!(
        promoted.tier_change.expect("promoted").to_tier,
        "platinum",
        "a floor is no ceiling"
    );
}

#[tokio::test]
async fn a_lock_fixes_the_tier_until_it_lapses() {
    let mut server = TestServer::start().await;
    server.buy("bea", "p1", 1_000).await;
    let mut lock = request("bea", "silver", OverrideMode::Lock, "partner promotion");
    lock.until = Some(timestamp(server.clock.now() + TimeDelta::days(10)));
    server
        .client
        .set_tier_override(lock)
        .await
        .expect("lock set");
    let locked = server.buy("bea", "p2", 1_000_000).await;
    assert_eq!(locked.tier_change, None, "no promotion while locked");
    assert_eq!(locked.member.expect("member").tier_id, "silver");
    assert_eq!(server.evaluate_in_days(5).await.promoted, 0);
    let lapsed = server.evaluate_in_days(11).await;
    assert_eq!(
        lapsed.promoted, 1,
        "after the lock lapses the metrics speak"
    );
    assert_eq!(lapsed.changes[0].to_tier, "platinum");
}

#[tokio::test]
async fn clear_removes_the_override_and_is_recorded() {
    let mut server = TestServer::start().await;
    server.buy("cy", "p1", 1_000).await;
    server
        .client
        .set_tier_override(request("cy", "gold", OverrideMode::Lock, "vip"))
        .await
        .expect("lock set");
    let cleared = server
        .client
        .set_tier_override(request("cy", "", OverrideMode::Clear, "vip period over"))
        .await
        .expect("cleared")
        .into_inner();
    assert_eq!(cleared.member.expect("member").tier_override, None);
    // Back under the normal policy: demotion after the grace period.
    server.evaluate_in_days(1).await;
    let swept = server.evaluate_in_days(31).await;
    assert_eq!(swept.changes[0].to_tier, "silver");
    let history = server.history("cy").await;
    let kinds: Vec<_> = moves(&history).into_iter().map(|m| m.2).collect();
    assert_eq!(
        kinds,
        [
            TierChangeKind::Initial,
            TierChangeKind::Manual,
            TierChangeKind::Manual,
            TierChangeKind::AtRisk,
            TierChangeKind::Demotion
        ]
    );
    assert!(history[2].reason.contains("vip period over"));
}

#[tokio::test]
async fn overrides_are_checked() {
    let mut server = TestServer::start().await;
    server.buy("dee", "p1", 1_000).await;
    let cases = [
        (
            request("dee", "diamond", OverrideMode::Floor, "x"),
            Code::InvalidArgument,
            "tier_id",
        ),
        (
            request("dee", "gold", OverrideMode::Unspecified, "x"),
            Code::InvalidArgument,
            "mode",
        ),
        (
            request("dee", "gold", OverrideMode::Lock, " "),
            Code::InvalidArgument,
            "reason",
        ),
        (
            request("nobody", "gold", OverrideMode::Lock, "x"),
            Code::NotFound,
            "member_id",
        ),
        (
            pb::SetTierOverrideRequest {
                transaction_id: String::new(),
                ..request("dee", "gold", OverrideMode::Lock, "x")
            },
            Code::InvalidArgument,
            "transaction_id",
        ),
    ];
    for (request, code, field) in cases {
        let status = server
            .client
            .set_tier_override(request)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(field), "{status:?}");
    }
    let mut past = request("dee", "gold", OverrideMode::Lock, "x");
    past.until = Some(timestamp(server.clock.now() - TimeDelta::days(1)));
    let status = server
        .client
        .set_tier_override(past)
        .await
        .expect_err("refused");
    assert!(status.message().starts_with("until"), "{status:?}");
    assert_eq!(server.history("dee").await.len(), 1, "nothing recorded");
}

/// The same LOCK sent three times made three MANUAL entries, each sent to
/// every stream and webhook. Now a retry answers what the first did, the
/// same id with other fields is refused, and a request that changes
/// nothing (the same override again under a new id, a CLEAR with none in
/// force) writes no entry.
#[tokio::test]
async fn retries_count_once_and_a_request_that_changes_nothing_writes_nothing() {
    let mut server = TestServer::start().await;
    server.buy("eve", "p1", 1_000).await;
    let lock = request("eve", "gold", OverrideMode::Lock, "vip");
    let first = server
        .client
        .set_tier_override(lock.clone())
        .await
        .expect("locked")
        .into_inner();
    assert!(!first.duplicate);
    for _ in 0..2 {
        let retry = server
            .client
            .set_tier_override(lock.clone())
            .await
            .expect("a retry")
            .into_inner();
        assert!(retry.duplicate);
        assert_eq!(retry.tier_change, first.tier_change, "what the first did");
    }
    let reused = server
        .client
        .set_tier_override(pb::SetTierOverrideRequest {
            tier_id: "silver".into(),
            ..lock.clone()
        })
        .await
        .expect_err("the id names another request");
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    let again = server
        .client
        .set_tier_override(pb::SetTierOverrideRequest {
            transaction_id: "lock-again".into(),
            ..lock
        })
        .await
        .expect("the same lock under a new id")
        .into_inner();
    assert_eq!(again.tier_change, None, "nothing changed");
    let cleared = request("eve", "", OverrideMode::Clear, "over");
    server
        .client
        .set_tier_override(cleared.clone())
        .await
        .expect("cleared");
    let after_the_clear = server.history("eve").await;
    let nothing_to_clear = server
        .client
        .set_tier_override(pb::SetTierOverrideRequest {
            transaction_id: "clear-again".into(),
            ..cleared
        })
        .await
        .expect("nothing to clear")
        .into_inner();
    assert_eq!(nothing_to_clear.tier_change, None);
    assert_eq!(
        server.history("eve").await,
        after_the_clear,
        "nothing written"
    );
    let kinds: Vec<_> = moves(&after_the_clear).into_iter().map(|m| m.2).collect();
    assert_eq!(
        kinds,
        [
            TierChangeKind::Initial,
            TierChangeKind::Manual,
            TierChangeKind::Manual,
            TierChangeKind::AtRisk
        ],
        "one entry for the lock, one for the clear (and the member is then at risk)"
    );
}
