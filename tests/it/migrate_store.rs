//! `tierd migrate-store`: a programme moves from sled to PostgreSQL and
//! back with every member, receipt and history entry; a retry after the
//! move is still a duplicate; an id merged into another still leads there;
//! nothing is written over a store that holds data; every member reaches
//! the sled store's due index.

use tempfile::TempDir;
use tonic::transport::Channel;

use crate::{
    pg,
    process::{Served, purchase_now, serve, serve_on, shipped_rules, store_arg, terminate, tierd},
};
use tierd::{
    grpc::{
        convert::timestamp,
        pb::{self, loyalty_client::LoyaltyClient},
    },
    store::Location,
};

const MEMBERS: [&str; 3] = ["ann", "ben", "cy"];

/// A member merged into ben before the move.
const MERGED: &str = "dee";

/// What a move must keep of each member (and of the id merged away): its
/// figures, the ids merged into it, and its history.
async fn programme(
    client: &mut LoyaltyClient<Channel>,
) -> Vec<(String, i64, i64, Vec<String>, Vec<pb::TierChange>)> {
    let mut kept = Vec::new();
    for member in MEMBERS.into_iter().chain([MERGED]) {
        let state = client
            .get_member(pb::GetMemberRequest {
                member_id: member.into(),
            })
            .await
            .expect("member")
            .into_inner();
        let history = client
            .get_tier_history(pb::GetTierHistoryRequest {
                member_id: member.into(),
                page_size: 100,
                page_token: String::new(),
            })
            .await
            .expect("history")
            .into_inner()
            .entries;
        kept.push((
            state.tier_id,
            state.points_balance,
            state.lifetime_value_minor,
            state.merged_member_ids,
            history,
        ));
    }
    kept
}

fn migrate(from: &Location, to: &Location) -> std::process::Output {
    tierd()
        .args([
            "migrate-store",
            "--from",
            &store_arg(from),
            "--to",
            &store_arg(to),
        ])
        .output()
        .expect("tierd runs")
}

async fn stop(node: Served) {
    let status = tokio::task::spawn_blocking(move || terminate(node))
        .await
        .expect("stopped");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_programme_moves_from_sled_to_postgres_and_back_with_everything() {
    let Some(url) = pg::database() else {
        return;
    };
    let dir = TempDir::new().expect("temp dir");
    let sled = Location::Sled(dir.path().join("data"));
    let node = serve(&dir.path().join("data"));
    let mut on_sled = node.client().await;
    let purchases: Vec<pb::RecordPurchaseRequest> = MEMBERS
        .iter()
        .zip(1..)
        .map(|(member, i)| purchase_now(member, &format!("p-{member}"), 40_000 * i))
        .collect();
    for request in &purchases {
        on_sled
            .record_purchase(request.clone())
            .await
            .expect("recorded");
    }
    on_sled
        .record_return(pb::RecordReturnRequest {
            member_id: "cy".into(),
            transaction_id: "r-cy".into(),
            original_transaction_id: "p-cy".into(),
            amount_minor: 10_000,
            occurred_at: Some(timestamp(chrono::Utc::now())),
            ..Default::default()
        })
        .await
        .expect("returned");
    on_sled
        .record_purchase(purchase_now(MERGED, "p-dee", 5_000))
        .await
        .expect("recorded");
    on_sled
        .merge_members(pb::MergeMembersRequest {
            source_member_id: MERGED.into(),
            target_member_id: "ben".into(),
            transaction_id: "m-dee".into(),
            reason: "the same customer".into(),
        })
        .await
        .expect("merged");
    let before = programme(&mut on_sled).await;
    assert_eq!(before[1].3, [MERGED]);
    stop(node).await;

    let database = Location::Postgres(url);
    let moved = migrate(&sled, &database);
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    let node = serve_on(&database, shipped_rules(), &[]);
    let mut on_postgres = node.client().await;
    assert_eq!(
        programme(&mut on_postgres).await,
        before,
        "everything moved"
    );
    let retry = on_postgres
        .record_purchase(purchases[0].clone())
        .await
        .expect("answered")
        .into_inner();
    assert!(retry.duplicate, "the receipts moved: a retry counts once");
    let over = on_postgres
        .record_return(pb::RecordReturnRequest {
            member_id: "cy".into(),
            transaction_id: "r2-cy".into(),
            original_transaction_id: "p-cy".into(),
            amount_minor: 110_001,
            occurred_at: Some(timestamp(chrono::Utc::now())),
            ..Default::default()
        })
        .await
        .expect_err("only 1100.00 is left of p-cy");
    assert_eq!(over.code(), tonic::Code::InvalidArgument);
    on_postgres
        .record_purchase(purchase_now("ann", "p2-ann", 1_000_000))
        .await
        .expect("recorded after the move");
    let after = programme(&mut on_postgres).await;
    let (old, new) = (&before[0].4, &after[0].4);
    assert!(
        new.len() > old.len() && new.last().map(|e| e.seq) > old.last().map(|e| e.seq),
        "history goes on after the moved entries: {new:?}"
    );
    stop(node).await;

    let refused = migrate(&sled, &database);
    assert!(
        !refused.status.success(),
        "a store with data is not written over"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("already holds tierd data"), "{stderr}");

    let back = Location::Sled(dir.path().join("back"));
    let moved = migrate(&database, &back);
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    let node = serve(&dir.path().join("back"));
    let mut on_sled_again = node.client().await;
    assert_eq!(programme(&mut on_sled_again).await, after, "and back again");
    // A database's backup has no due moments: the members come back due
    // at once, and the first sweep decides them all.
    for expected in [MEMBERS.len() as u64, 0] {
        let swept = on_sled_again
            .evaluate_tiers(pb::EvaluateTiersRequest::default())
            .await
            .expect("swept")
            .into_inner();
        assert_eq!(swept.evaluated, expected);
    }
    stop(node).await;
}
