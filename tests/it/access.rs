//! Access control: API keys with roles, checked on every call.

use tonic::{Code, Request};

use crate::harness::TestServer;
use tierd::{
    grpc::{
        ServeOptions,
        auth::{ApiKey, Keyring, Role, hash_key},
        pb,
    },
    store::Store,
};

const TILL: &str = "till-secret-0123456789abcdef";
const REPORTS: &str = "reports-secret-0123456789abcdef";
const ADMIN: &str = "admin-secret-0123456789abcdef";
const SERVICE: &str = "service-secret-0123456789abcdef";

async fn guarded() -> TestServer {
    let key = |name: &str, role, secret| ApiKey {
        name: name.into(),
        role,
        sha256: hash_key(secret),
    };
    let keyring = Keyring::new(&[
        key("till-42", Role::Pos, TILL),
        key("crm-export", Role::Reporting, REPORTS),
        key("ops-anna", Role::Admin, ADMIN),
        key("cs-maria", Role::Service, SERVICE),
    ])
    .expect("valid keys");
    TestServer::with_options(ServeOptions {
        keyring,
        ..ServeOptions::default()
    })
    .await
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    let header = format!("Bearer {key}").parse().expect("ascii header");
    request.metadata_mut().insert("authorization", header);
    request
}

#[tokio::test]
async fn calls_without_a_known_key_are_unauthenticated() {
    let mut server = guarded().await;
    let purchase = server.purchase("m", "t1", 1_000);
    let missing = server
        .client
        .record_purchase(purchase.clone())
        .await
        .expect_err("no key");
    assert_eq!(missing.code(), Code::Unauthenticated);
    let wrong = server
        .client
        .record_purchase(with_key(purchase, "not-a-key"))
        .await
        .expect_err("unknown key");
    assert_eq!(wrong.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn roles_decide_what_a_key_may_do() {
    let mut server = guarded().await;
    let purchase = server.purchase("m", "t1", 1_000);
    server
        .client
        .record_purchase(with_key(purchase.clone(), TILL))
        .await
        .expect("a till records purchases");
    let denied = server
        .client
        .record_purchase(with_key(server.purchase("m", "t2", 1_000), REPORTS))
        .await
        .expect_err("reporting is read-only");
    assert_eq!(denied.code(), Code::PermissionDenied);
    server
        .client
        .get_member(with_key(
            pb::GetMemberRequest {
                member_id: "m".into(),
            },
            REPORTS,
        ))
        .await
        .expect("reporting reads");
    let adjust = pb::AdjustPointsRequest {
        member_id: "m".into(),
        transaction_id: "a1".into(),
        points: 5,
        reason: "goodwill".into(),
        occurred_at: None,
    };
    let denied = server
        .client
        .adjust_points(with_key(adjust.clone(), TILL))
        .await
        .expect_err("a till may not adjust");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "api key \"till-42\" (role pos) may not call AdjustPoints; the roles that may: admin"
    );
    let watch = server
        .client
        .watch_tier_changes(with_key(pb::WatchTierChangesRequest::default(), TILL))
        .await
        .expect_err("a till may not watch");
    assert_eq!(
        watch.message(),
        "api key \"till-42\" (role pos) may not call WatchTierChanges; \
         the roles that may: reporting, admin"
    );
    let sweep = pb::EvaluateTiersRequest {
        as_of: None,
        member_ids: vec![],
        dry_run: false,
    };
    let denied = server
        .client
        .evaluate_tiers(with_key(sweep.clone(), REPORTS))
        .await
        .expect_err("only admin sweeps");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let dry = pb::EvaluateTiersRequest {
        dry_run: true,
        ..sweep
    };
    server
        .client
        .evaluate_tiers(with_key(dry, REPORTS))
        .await
        .expect("a dry run is a read");
    server
        .client
        .adjust_points(with_key(adjust, ADMIN))
        .await
        .expect("admin adjusts");
}

#[tokio::test]
async fn every_write_records_which_key_made_it() {
    let mut server = guarded().await;
    server
        .client
        .record_purchase(with_key(server.purchase("m", "t1", 1_000), TILL))
        .await
        .expect("recorded");
    let adjust = pb::AdjustPointsRequest {
        member_id: "m".into(),
        transaction_id: "a1".into(),
        points: 5,
        reason: "goodwill".into(),
        occurred_at: None,
    };
    server
        .client
        .adjust_points(with_key(adjust, ADMIN))
        .await
        .expect("adjusted");
    assert_eq!(actors(server, &["t1", "a1"]).await, ["till-42", "ops-anna"]);
}

/// Who made each of `txns`, as their receipts keep it (the server stops).
async fn actors(server: TestServer, txns: &[&str]) -> Vec<String> {
    let dir = server.stop().await;
    let store = Store::open(&dir.path().join("data")).expect("the data directory");
    txns.iter()
        .map(|txn| {
            store
                .receipt(txn)
                .expect("readable")
                .expect("recorded")
                .actor
        })
        .collect()
}

#[tokio::test]
async fn customer_service_closes_reopens_and_merges_accounts_and_only_an_admin_erases() {
    let mut server = guarded().await;
    server
        .client
        .record_purchase(with_key(server.purchase("m", "t1", 1_000), TILL))
        .await
        .expect("recorded");
    let close = pb::CloseMemberRequest {
        member_id: "m".into(),
        transaction_id: "c1".into(),
        reason: "asked to leave".into(),
        forfeit_points: false,
    };
    let denied = server
        .client
        .close_member(with_key(close.clone(), TILL))
        .await
        .expect_err("a till may not close accounts");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied
            .message()
            .ends_with("may not call CloseMember; the roles that may: service, admin"),
        "{denied:?}"
    );
    server
        .client
        .close_member(with_key(close, SERVICE))
        .await
        .expect("customer service closes");
    let reopen = pb::ReopenMemberRequest {
        member_id: "m".into(),
        transaction_id: "o1".into(),
        reason: "changed their mind".into(),
    };
    server
        .client
        .reopen_member(with_key(reopen, SERVICE))
        .await
        .expect("customer service reopens");
    let sale = server
        .client
        .record_purchase(with_key(server.purchase("m", "t2", 1_000), SERVICE))
        .await
        .expect_err("customer service records no sales");
    assert_eq!(sale.code(), Code::PermissionDenied);
    let export = pb::ExportMemberRequest {
        member_id: "m".into(),
    };
    let denied = server
        .client
        .export_member(with_key(export, SERVICE))
        .await
        .expect_err("only an admin exports a member's data");
    assert!(
        denied
            .message()
            .ends_with("may not call ExportMember; the roles that may: admin"),
        "{denied:?}"
    );
    server
        .client
        .record_purchase(with_key(server.purchase("m2", "t3", 1_000), TILL))
        .await
        .expect("recorded");
    let merge = pb::MergeMembersRequest {
        source_member_id: "m2".into(),
        target_member_id: "m".into(),
        transaction_id: "g1".into(),
        reason: "one customer".into(),
    };
    let denied = server
        .client
        .merge_members(with_key(merge.clone(), TILL))
        .await
        .expect_err("a till may not merge members");
    assert!(
        denied
            .message()
            .ends_with("may not call MergeMembers; the roles that may: service, admin"),
        "{denied:?}"
    );
    server
        .client
        .merge_members(with_key(merge, SERVICE))
        .await
        .expect("customer service merges");
    let erase = pb::EraseMemberRequest {
        member_id: "m".into(),
        transaction_id: "e1".into(),
        reason: "request 7".into(),
    };
    let denied = server
        .client
        .erase_member(with_key(erase.clone(), SERVICE))
        .await
        .expect_err("only an admin erases a member");
    assert!(
        denied
            .message()
            .ends_with("may not call EraseMember; the roles that may: admin"),
        "{denied:?}"
    );
    server
        .client
        .erase_member(with_key(erase, ADMIN))
        .await
        .expect("an admin erases");
    assert_eq!(
        actors(server, &["c1", "o1", "g1", "e1"]).await,
        ["cs-maria", "cs-maria", "cs-maria", "ops-anna"],
        "who closed, reopened, merged and erased it is kept"
    );
}
