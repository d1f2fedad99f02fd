//! A data directory written by data format 2 (`tests/fixtures/data-format-2`,
//! made by tierd at commit 54e9b22; its README lists what it holds) opens
//! with today's tierd: every record is migrated, the members and their
//! history read as before, and requests recorded before the migration are
//! still recognised when a till retries them. One written by data format 5
//! (`tests/fixtures/data-format-5`, seeded members) gets its due index: its
//! members read as the seed tool makes them today, and the first sweep
//! decides every one of them, the next none. One written by format 6
//! (`tests/fixtures/data-format-6`) keeps its members' due moments when
//! they move into the members' values; a format-7 directory with receipts
//! (`tests/fixtures/data-format-7`) answers returns of its purchases as a
//! store seeded today does, its receipts read as they were written.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use tonic::Code;

use crate::harness::{TestServer, moves};
use tierd::grpc::{
    convert::timestamp,
    pb::{self, TierChangeKind::*},
};

/// The rules the fixture was written under (the example rules of that
/// commit), so that the fixture's stored version is the one that runs.
fn fixture_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-format-2.rules.yaml")
}

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/data-format-2"
    ))
}

/// The moment the fixture was written at.
fn then() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .expect("valid date")
}

/// The purchase `p1` exactly as the fixture recorded it.
fn p1() -> pb::RecordPurchaseRequest {
    pb::RecordPurchaseRequest {
        member_id: "ana".into(),
        transaction_id: "p1".into(),
        amount_minor: 60_000,
        currency: "EUR".into(),
        occurred_at: Some(timestamp(then())),
        channel: "pos".into(),
        store_id: "s1".into(),
        tags: vec!["double-points".into()],
        lines: Vec::new(),
    }
}

#[tokio::test]
async fn a_format_2_directory_is_migrated_and_reads_as_before() {
    let mut server = TestServer::on_copy_of(fixture(), fixture_rules(), then()).await;
    let ana = server.member("ana").await;
    assert_eq!(
        (
            ana.tier_id.as_str(),
            ana.points_balance,
            ana.qualifying_points,
            ana.lifetime_value_minor,
            ana.purchase_count
        ),
        ("silver", 757, 857, 50_000, 1)
    );
    let bo = server.member("bo").await;
    assert_eq!(
        (bo.tier_id.as_str(), bo.points_balance, bo.activity_count),
        ("bronze", 75, 2)
    );
    let cy = server.member("cy").await;
    assert_eq!(cy.tier_id, "gold");
    assert_eq!(
        cy.attributes.get("region").map(String::as_str),
        Some("north")
    );
    let floor = cy.tier_override.expect("the floor survived");
    assert_eq!(
        (floor.tier_id.as_str(), floor.reason.as_str()),
        ("gold", "vip")
    );
    let dee = server.member("dee").await;
    assert_eq!(
        (dee.tier_id.as_str(), dee.points_balance),
        ("platinum", 40_025)
    );

    let history = server.history("ana").await;
    assert_eq!(
        moves(&history),
        [
            ("".into(), "bronze".into(), Initial),
            ("bronze".into(), "silver".into(), Promotion)
        ]
    );
    assert!(
        history[1].reason.starts_with("qualified for silver"),
        "{history:?}"
    );
    let versions = server
        .client
        .list_rules_versions(pb::ListRulesVersionsRequest::default())
        .await
        .expect("versions")
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].version, "2026.1");
}

#[tokio::test]
async fn requests_recorded_in_format_2_are_still_recognised_when_retried() {
    let mut server = TestServer::on_copy_of(fixture(), fixture_rules(), then()).await;
    let retry = server
        .client
        .record_purchase(p1())
        .await
        .expect("a retry")
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(retry.points_earned, 1_225);
    let mut changed = p1();
    changed.amount_minor += 1;
    let status = server
        .client
        .record_purchase(changed)
        .await
        .expect_err("another request under a used id");
    assert_eq!(status.code(), Code::AlreadyExists);

    let redemption = server
        .client
        .redeem_points(pb::RedeemPointsRequest {
            member_id: "ana".into(),
            transaction_id: "x1".into(),
            points: 100,
            order_id: String::new(),
            reward_id: String::new(),
        })
        .await
        .expect("a retry")
        .into_inner();
    assert!(redemption.duplicate);
    let adjustment = server
        .client
        .adjust_points(pb::AdjustPointsRequest {
            member_id: "ana".into(),
            transaction_id: "a1".into(),
            points: 40,
            reason: "goodwill".into(),
            occurred_at: None,
        })
        .await
        .expect("a retry")
        .into_inner();
    assert!(adjustment.duplicate);
    let activity = server
        .client
        .record_activity(pb::RecordActivityRequest {
            member_id: "bo".into(),
            transaction_id: "v1".into(),
            kind: "review".into(),
            occurred_at: Some(timestamp(then())),
            attributes: [("photo".to_owned(), "yes".to_owned())].into(),
        })
        .await
        .expect("a retry")
        .into_inner();
    assert!(activity.duplicate);
    assert_eq!(activity.points_earned, 75);
    let refund = server.refund("ana", "r1", "p1", 20_000);
    let again = server
        .client
        .record_return(refund)
        .await
        .expect("a retry")
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.points_reversed, 408);
    assert_eq!(
        server.member("ana").await.points_balance,
        757,
        "nothing counted twice"
    );
}

#[tokio::test]
async fn a_migrated_purchase_can_still_be_returned_and_history_goes_on() {
    let mut server = TestServer::on_copy_of(fixture(), fixture_rules(), then()).await;
    // 400.00 of p1 is left: returning it takes back the rest of its 1225
    // points (408 were taken by the first return).
    let rest = server
        .client
        .record_return(server.refund("ana", "r2", "p1", 40_000))
        .await
        .expect("return of the rest")
        .into_inner();
    assert_eq!(rest.points_reversed, 817);
    let over = server
        .client
        .record_return(server.refund("ana", "r3", "p1", 1))
        .await
        .expect_err("nothing is left");
    assert_eq!(over.code(), Code::InvalidArgument);
    // The last entry so far: dee's from the fixture, or ana's AT_RISK if
    // the return put her at risk.
    let mut last_seq = 0;
    for member in ["ana", "dee"] {
        last_seq = last_seq.max(server.history(member).await.last().map_or(0, |e| e.seq));
    }
    server.buy("eve", "p10", 1_000).await;
    let eve = server.history("eve").await;
    assert_eq!(
        eve[0].seq,
        last_seq + 1,
        "seqs continue after the migration"
    );

    // The migration happened once: the directory opens as the current format now.
    let mut server = server.restart().await;
    assert_eq!(server.member("eve").await.purchase_count, 1);
}

/// A seeded fixture of a later format (`tests/fixtures/data-format-N`).
fn seeded_fixture(format: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/data-format-{format}"))
}

/// The moment the seeded fixtures were seeded as of.
fn seeded_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// Opens a copy of the seeded fixture of `format` and the same 12 members
/// seeded today (the same rules, seed and day; with the purchases'
/// receipts when `receipts`), checks that every member and its history
/// read alike in both, and returns both servers.
async fn migrated_and_seeded_today(format: u32, receipts: bool) -> (TestServer, TestServer) {
    // Both seeded fixtures were made under these rules (the README says).
    let rules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-format-5.rules.yaml");
    let mut migrated =
        TestServer::on_copy_of(&seeded_fixture(format), rules.clone(), seeded_at()).await;
    let fresh_dir = tempfile::tempdir().expect("temp dir");
    let fresh_data = fresh_dir.path().join("data");
    let store = tierd::store::Store::open(&fresh_data).expect("store");
    let programme = tierd::rules::load(rules.as_path()).expect("rules");
    tierd::tools::seed::seed_members(&store, &programme, 12, 42, seeded_at(), receipts)
        .await
        .expect("seeded");
    store.sync().await.expect("synced");
    drop(store);
    let mut fresh = TestServer::on_copy_of(&fresh_data, rules, seeded_at()).await;
    for index in 0..12 {
        let id = tierd::tools::seed::member_id(index);
        assert_eq!(migrated.member(&id).await, fresh.member(&id).await, "{id}");
        assert_eq!(
            migrated.history(&id).await,
            fresh.history(&id).await,
            "{id}"
        );
    }
    (migrated, fresh)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_format_5_directory_gets_its_due_index_and_reads_as_before() {
    let (mut migrated, mut fresh) = migrated_and_seeded_today(5, false).await;
    let first = migrated.evaluate_in_days(0).await;
    assert_eq!(
        (first.evaluated, first.changes.len()),
        (12, 0),
        "every member is due once, and nothing changes"
    );
    assert_eq!(migrated.evaluate_in_days(0).await.evaluated, 0);
    assert_eq!(
        fresh.evaluate_in_days(0).await.evaluated,
        0,
        "seeded members have their moments"
    );
}

/// Format 7 keeps a member's due moment in its value: a format-6
/// directory's moments come through the move, so nothing is due at once,
/// and a month on the same members are due as in a store seeded today.
#[tokio::test(flavor = "multi_thread")]
async fn a_format_6_directory_keeps_its_members_due_moments() {
    let (mut migrated, mut fresh) = migrated_and_seeded_today(6, false).await;
    assert_eq!(
        migrated.evaluate_in_days(0).await.evaluated,
        0,
        "no member lost its moment"
    );
    let (later, expected) = (
        migrated.evaluate_in_days(45).await,
        fresh.evaluate_in_days(45).await,
    );
    assert!(
        expected.evaluated > 0,
        "the fixture has members due by then"
    );
    assert_eq!(later, expected);
    // The migration happened once: the directory opens as the current
    // format now.
    let mut migrated = migrated.restart().await;
    assert_eq!(migrated.evaluate_in_days(45).await.evaluated, 0);
}

/// What returning 1.00 of each seeded purchase `seed-{member}-{n}` (the
/// first 40 events of each member) answers: the points taken back, or the
/// refusal's code for an event that was no purchase.
async fn returns_of_seeded_purchases(server: &mut TestServer) -> Vec<Result<i64, Code>> {
    let mut answers = Vec::new();
    for index in 0..12 {
        let member = tierd::tools::seed::member_id(index);
        for n in 0..40 {
            let request = server.refund(
                &member,
                &format!("back-{index}-{n}"),
                &format!("seed-{index}-{n}"),
                100,
            );
            let answer = server.client.record_return(request).await;
            answers.push(
                answer
                    .map(|a| a.into_inner().points_reversed)
                    .map_err(|s| s.code()),
            );
        }
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn a_format_7_directory_s_receipts_read_as_they_are() {
    let (mut migrated, mut fresh) = migrated_and_seeded_today(7, true).await;
    let (old, new) = (
        returns_of_seeded_purchases(&mut migrated).await,
        returns_of_seeded_purchases(&mut fresh).await,
    );
    let accepted = new.iter().filter(|a| a.is_ok()).count();
    assert!(
        accepted > 30,
        "the fixture's purchases have receipts: {accepted}"
    );
    assert_eq!(old, new, "returns of format-7 receipts answer as today's");
    for index in 0..12 {
        let id = tierd::tools::seed::member_id(index);
        assert_eq!(migrated.member(&id).await, fresh.member(&id).await, "{id}");
    }
    // Retried after a restart, each return is answered from its receipt,
    // written in this format, with what it took back the first time.
    let mut migrated = migrated.restart().await;
    assert_eq!(returns_of_seeded_purchases(&mut migrated).await, old);
}
