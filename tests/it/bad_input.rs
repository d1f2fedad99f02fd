//! Every kind of bad input gets the right status, names the field, and
//! changes nothing.

use chrono::TimeDelta;
use prost_types::Timestamp;
use tonic::Code;

use crate::harness::{TestServer, assert_refused};
use tierd::grpc::{convert::timestamp, pb};

#[tokio::test]
async fn bad_purchases_are_refused_and_change_nothing() {
    let mut server = TestServer::start().await;
    server.buy("m", "ok", 1_000).await;
    let before = server.member("m").await;
    let base = server.purchase("m", "bad", 1_000);
    let now = server.clock.now();
    type Edit = Box<dyn Fn(&mut pb::RecordPurchaseRequest)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|r| r.member_id = String::new()), "member_id"),
        (Box::new(|r| r.member_id = "x".repeat(129)), "member_id"),
        (
            Box::new(|r| r.transaction_id = String::new()),
            "transaction_id",
        ),
        (
            Box::new(|r| r.transaction_id = "t".repeat(129)),
            "transaction_id",
        ),
        (Box::new(|r| r.amount_minor = 0), "amount_minor"),
        (Box::new(|r| r.amount_minor = -5), "amount_minor"),
        (Box::new(|r| r.amount_minor = i64::MAX), "amount_minor"),
        (Box::new(|r| r.currency = "USD".into()), "currency"),
        (Box::new(|r| r.currency = String::new()), "currency"),
        (Box::new(|r| r.occurred_at = None), "occurred_at"),
        (
            Box::new(move |r| r.occurred_at = Some(timestamp(now + TimeDelta::minutes(6)))),
            "occurred_at",
        ),
        (
            Box::new(|r| {
                r.occurred_at = Some(Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                })
            }),
            "occurred_at",
        ),
        (Box::new(|r| r.tags = vec!["t".into(); 33]), "tags"),
        // Older than the kept day totals: 1970, year 1.
        (
            Box::new(|r| r.occurred_at = Some(timestamp(chrono::DateTime::UNIX_EPOCH))),
            "occurred_at",
        ),
        (
            Box::new(|r| r.occurred_at = Some(timestamp(chrono::DateTime::<chrono::Utc>::MIN_UTC))),
            "occurred_at",
        ),
        (
            Box::new(move |r| r.occurred_at = Some(timestamp(now - TimeDelta::days(800)))),
            "occurred_at",
        ),
        // Ids that are blank or hold invisible characters.
        (Box::new(|r| r.member_id = " ".into()), "member_id"),
        (
            Box::new(|r| r.transaction_id = "ok\u{200B}".into()),
            "transaction_id",
        ),
        (
            Box::new(|r| r.transaction_id = "\u{FEFF}ok".into()),
            "transaction_id",
        ),
        (Box::new(|r| r.member_id = "m\u{202E}".into()), "member_id"),
    ];
    for (edit, field) in cases {
        let mut request = base.clone();
        edit(&mut request);
        assert_refused(
            server.client.record_purchase(request).await,
            Code::InvalidArgument,
            field,
        );
    }
    assert_eq!(server.member("m").await, before);
    let mut invisible = base.clone();
    invisible.transaction_id = "ok\u{200B}".into();
    let refused = server
        .client
        .record_purchase(invisible)
        .await
        .expect_err("refused");
    assert!(
        refused.message().contains("character 3 is U+200B"),
        "the position is named: {refused:?}"
    );
    // Lines whose amounts overflow an i64 are reported with their real sum.
    let mut overflowing = base.clone();
    overflowing.lines = (0..3)
        .map(|n| pb::PurchaseLine {
            sku: format!("s{n}"),
            quantity: 1,
            amount_minor: i64::MAX / 2,
            ..Default::default()
        })
        .collect();
    let refused = server
        .client
        .record_purchase(overflowing)
        .await
        .expect_err("refused");
    assert!(
        refused.message().contains("add up to 13835058055282163709"),
        "the real sum: {refused:?}"
    );
    // The refused transaction id is still free.
    assert!(!server.buy("m", "bad", 1_000).await.duplicate);
}

#[tokio::test]
async fn a_purchase_a_few_minutes_ahead_is_clock_skew_and_accepted() {
    let mut server = TestServer::start().await;
    let mut request = server.purchase("m", "t1", 1_000);
    request.occurred_at = Some(timestamp(server.clock.now() + TimeDelta::minutes(4)));
    server
        .client
        .record_purchase(request)
        .await
        .expect("within 5 minutes");
}

#[tokio::test]
async fn bad_returns_are_refused() {
    let mut server = TestServer::start().await;
    server.buy("m", "p1", 1_000).await;
    server.buy("other", "p2", 1_000).await;
    let before = server.member("m").await;
    let cases = [
        (
            server.refund("m", "r1", "nope", 100),
            Code::NotFound,
            "original_transaction_id",
        ),
        (
            server.refund("m", "r1", "p2", 100),
            Code::NotFound,
            "original_transaction_id",
        ),
        (
            server.refund("m", "r1", "p1", 1_001),
            Code::InvalidArgument,
            "amount_minor",
        ),
        (
            server.refund("m", "r1", "p1", 0),
            Code::InvalidArgument,
            "amount_minor",
        ),
        (
            server.refund("m", "", "p1", 100),
            Code::InvalidArgument,
            "transaction_id",
        ),
    ];
    for (request, code, field) in cases {
        assert_refused(server.client.record_return(request).await, code, field);
    }
    let mut wrong_currency = server.refund("m", "r1", "p1", 100);
    wrong_currency.currency = "GBP".into();
    assert_refused(
        server.client.record_return(wrong_currency).await,
        Code::InvalidArgument,
        "currency",
    );
    // A return that used up the purchase leaves nothing to return.
    server
        .client
        .record_return(server.refund("m", "r2", "p1", 1_000))
        .await
        .expect("full return");
    assert_refused(
        server
            .client
            .record_return(server.refund("m", "r3", "p1", 1))
            .await,
        Code::InvalidArgument,
        "amount_minor",
    );
    assert_eq!(
        server.member("m").await.lifetime_value_minor,
        before.lifetime_value_minor - 1_000
    );
}

#[tokio::test]
async fn bad_redemptions_and_adjustments_are_refused() {
    let mut server = TestServer::start().await;
    server.buy("m", "p1", 1_000).await; // 10 points
    let redeem = |points: i64, member: &str| pb::RedeemPointsRequest {
        member_id: member.into(),
        transaction_id: "x1".into(),
        points,
        order_id: String::new(),
        reward_id: String::new(),
    };
    assert_refused(
        server.client.redeem_points(redeem(11, "m")).await,
        Code::FailedPrecondition,
        "points",
    );
    assert_refused(
        server.client.redeem_points(redeem(0, "m")).await,
        Code::InvalidArgument,
        "points",
    );
    assert_refused(
        server.client.redeem_points(redeem(1, "ghost")).await,
        Code::NotFound,
        "member_id",
    );
    let adjust = |points: i64, reason: &str| pb::AdjustPointsRequest {
        member_id: "m".into(),
        transaction_id: "a1".into(),
        points,
        reason: reason.into(),
        occurred_at: None,
    };
    assert_refused(
        server.client.adjust_points(adjust(5, "")).await,
        Code::InvalidArgument,
        "reason",
    );
    assert_refused(
        server.client.adjust_points(adjust(0, "why")).await,
        Code::InvalidArgument,
        "points",
    );
    assert_eq!(server.member("m").await.points_balance, 10);
    // The transaction ids of refused requests stay usable.
    server
        .client
        .redeem_points(redeem(10, "m"))
        .await
        .expect("exact balance");
    assert_eq!(server.member("m").await.points_balance, 0);
}

#[tokio::test]
async fn unknown_members_and_bad_queries() {
    let mut server = TestServer::start().await;
    assert_refused(
        server
            .client
            .get_member(pb::GetMemberRequest {
                member_id: "ghost".into(),
            })
            .await,
        Code::NotFound,
        "member_id",
    );
    assert_refused(
        server
            .client
            .get_member(pb::GetMemberRequest {
                member_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "member_id",
    );
    server.buy("m", "p1", 1_000).await;
    let history = |page_size: u32, page_token: &str| pb::GetTierHistoryRequest {
        member_id: "m".into(),
        page_size,
        page_token: page_token.into(),
    };
    assert_refused(
        server.client.get_tier_history(history(5000, "")).await,
        Code::InvalidArgument,
        "page_size",
    );
    assert_refused(
        server.client.get_tier_history(history(10, "zz")).await,
        Code::InvalidArgument,
        "page_token",
    );
    let evaluate = pb::EvaluateTiersRequest {
        as_of: None,
        member_ids: vec!["ghost".into()],
        dry_run: false,
    };
    assert_refused(
        server.client.evaluate_tiers(evaluate).await,
        Code::NotFound,
        "member_ids",
    );
}

/// A return dated before the purchase it names, and evaluations as of a
/// day the store cannot know, are refused naming the field.
#[tokio::test]
async fn times_before_the_purchase_or_the_kept_days_are_refused() {
    let mut server = TestServer::start().await;
    server.buy("m", "p1", 10_000).await;
    let purchased = server.clock.now();
    let mut early = server.refund("m", "r1", "p1", 1_000);
    early.occurred_at = Some(timestamp(purchased - TimeDelta::hours(1)));
    assert_refused(
        server.client.record_return(early).await,
        Code::InvalidArgument,
        "occurred_at",
    );
    for as_of in [
        chrono::DateTime::<chrono::Utc>::MIN_UTC,
        purchased - TimeDelta::days(800),
        purchased + TimeDelta::days(5 * 366 + 1),
    ] {
        assert_refused(
            server
                .client
                .evaluate_tiers(pb::EvaluateTiersRequest {
                    as_of: Some(timestamp(as_of)),
                    dry_run: true,
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
            "as_of",
        );
    }
    assert_eq!(server.member("m").await.lifetime_value_minor, 10_000);
}
