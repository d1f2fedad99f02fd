//! Erasing a member through the server: its ids (and those merged into it)
//! become one pseudonym everywhere, what a person wrote about it goes, its
//! figures stay; afterwards no answer, report, export, backup, stream
//! entry or log line holds the old ids or attributes.

use tempfile::TempDir;
use tokio_stream::StreamExt as _;
use tonic::{Code, transport::Channel};

use crate::{
    harness::{TestServer, assert_refused, new_store},
    process::{
        Served, backup_bytes, purchase_now, serve_on, shipped_rules, stop_with_log, store_arg,
        succeeded, tierd,
    },
};
use tierd::{
    grpc::pb::{self, loyalty_client::LoyaltyClient, reports_client::ReportsClient},
    store::Location,
};

fn erase(member: &str, txn: &str) -> pb::EraseMemberRequest {
    pb::EraseMemberRequest {
        member_id: member.into(),
        transaction_id: txn.into(),
        reason: "request 42".into(),
    }
}

fn merge(source: &str, target: &str) -> pb::MergeMembersRequest {
    pb::MergeMembersRequest {
        source_member_id: source.into(),
        target_member_id: target.into(),
        transaction_id: "t-merge".into(),
        reason: "one customer".into(),
    }
}

/// The liability report's totals and months: what erasure keeps.
async fn liability(channel: Channel) -> (Option<pb::LiabilityRow>, Vec<pb::MonthHistory>) {
    let report = ReportsClient::new(channel)
        .points_liability(pb::LiabilityRequest {})
        .await
        .expect("liability")
        .into_inner();
    (report.total, report.past)
}

/// Members, points and points outstanding per tier: what erasure keeps.
async fn distribution(channel: Channel) -> Vec<(String, i64, i64, i64)> {
    ReportsClient::new(channel)
        .tier_distribution(pb::AsOfRequest::default())
        .await
        .expect("distribution")
        .into_inner()
        .tiers
        .into_iter()
        .map(|t| {
            (
                t.tier,
                t.members,
                t.spend_in_window_minor,
                t.points_outstanding,
            )
        })
        .collect()
}

#[tokio::test]
async fn an_erased_member_keeps_its_figures_under_a_pseudonym_and_its_ids_name_nobody() {
    let mut server = TestServer::start().await;
    let earned = server.buy("web", "t1", 30_000).await.points_earned;
    server.buy("card", "t2", 12_000).await;
    server.buy("bob", "t3", 5_000).await;
    server
        .client
        .merge_members(merge("card", "web"))
        .await
        .expect("merged");
    let before = distribution(server.channel.clone()).await;
    let owed = liability(server.channel.clone()).await;
    let web = server.member("web").await;

    let erased = server
        .client
        .erase_member(erase("card", "t-erase"))
        .await
        .expect("erased")
        .into_inner();
    let pseudonym = erased.pseudonym.clone();
    assert!(pseudonym.starts_with("erased-"), "{pseudonym}");
    assert!(!erased.duplicate);
    // Three purchases' and the merge's receipts; INITIAL twice, MERGED
    // twice and the promotions.
    assert_eq!(erased.receipts_rewritten, 3);
    assert!(erased.history_entries_rewritten >= 4, "{erased:?}");

    let kept = server.member(&pseudonym).await;
    assert_eq!(kept.member_id, pseudonym);
    assert_eq!(
        (
            kept.tier_id.as_str(),
            kept.lifetime_value_minor,
            kept.points_balance
        ),
        (
            web.tier_id.as_str(),
            web.lifetime_value_minor,
            web.points_balance
        )
    );
    assert!(kept.attributes.is_empty() && kept.merged_member_ids.is_empty());
    assert_eq!(
        distribution(server.channel.clone()).await,
        before,
        "figures stay"
    );
    assert_eq!(
        liability(server.channel.clone()).await,
        owed,
        "the liability too"
    );
    let history = server.history(&pseudonym).await;
    assert!(history.iter().all(|e| e.member_id == pseudonym));
    assert!(
        history
            .iter()
            .filter(|e| e.kind() == pb::TierChangeKind::Merged)
            .all(|e| e.reason == "(erased)"),
        "{history:?}"
    );

    let again = server
        .client
        .erase_member(erase("card", "t-erase"))
        .await
        .expect("a retry")
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.pseudonym, pseudonym);
    for id in ["web", "card"] {
        assert_refused(
            server
                .client
                .get_member(pb::GetMemberRequest {
                    member_id: id.into(),
                })
                .await,
            Code::NotFound,
            "member_id",
        );
    }
    assert_refused(
        server.client.erase_member(erase("web", "t-erase-2")).await,
        Code::NotFound,
        "member_id",
    );
    // A retry of one of its earlier requests is someone else's now.
    assert_refused(
        server
            .client
            .record_purchase(server.purchase("web", "t1", 30_000))
            .await,
        Code::AlreadyExists,
        "transaction_id",
    );
    // Its purchases can still be returned, under the pseudonym.
    let back = server
        .client
        .record_return(server.refund(&pseudonym, "t4", "t1", 10_000))
        .await
        .expect("returned")
        .into_inner();
    assert_eq!(
        back.points_reversed,
        earned / 3,
        "a third of what it earned"
    );
    // The old id names nobody: a till sending it again enrols someone new.
    let fresh = server.buy("web", "t5", 1_000).await;
    let fresh = fresh.member.expect("the member");
    assert_eq!(
        (fresh.member_id.as_str(), fresh.lifetime_value_minor),
        ("web", 1_000)
    );
}

/// What must never be seen again once the member is erased.
const SECRETS: [&str; 6] = [
    "ann.card.7731",
    "ann@example.com",
    "ann.private@example.org",
    "+351 912 345 678",
    "her husband's account",
    "back from Lisbon",
];

/// Every answer's text, collected to be searched.
struct Seen(Vec<String>);

impl Seen {
    fn add(&mut self, answer: &impl std::fmt::Debug) {
        self.0.push(format!("{answer:?}"));
    }

    fn assert_clean(&self, what: &str) {
        for text in &self.0 {
            for secret in SECRETS {
                assert!(!text.contains(secret), "{what} holds {secret:?}: {text}");
            }
        }
    }
}

/// Builds a member with every kind of data that identifies: two ids (one
/// merged), attributes, reasons staff wrote.
async fn a_member_with_everything(client: &mut LoyaltyClient<Channel>) {
    for (id, txn, amount) in [(SECRETS[0], "t1", 40_000), (SECRETS[1], "t2", 25_000)] {
        client
            .record_purchase(purchase_now(id, txn, amount))
            .await
            .expect("bought");
    }
    client
        .record_purchase(purchase_now("bob", "t3", 7_000))
        .await
        .expect("bought");
    client
        .upsert_member(pb::UpsertMemberRequest {
            member_id: SECRETS[1].into(),
            attributes: [
                ("email".to_owned(), SECRETS[2].to_owned()),
                ("phone".to_owned(), SECRETS[3].to_owned()),
            ]
            .into(),
            enrolled_at: None,
        })
        .await
        .expect("upserted");
    let mut merging = merge(SECRETS[0], SECRETS[1]);
    merging.reason = SECRETS[4].into();
    client.merge_members(merging).await.expect("merged");
    client
        .redeem_points(pb::RedeemPointsRequest {
            member_id: SECRETS[1].into(),
            transaction_id: "t4".into(),
            points: 50,
            order_id: "t2".into(),
            reward_id: String::new(),
        })
        .await
        .expect("redeemed");
    client
        .close_member(pb::CloseMemberRequest {
            member_id: SECRETS[1].into(),
            transaction_id: "t5".into(),
            reason: "moving".into(),
            forfeit_points: false,
        })
        .await
        .expect("closed");
    client
        .reopen_member(pb::ReopenMemberRequest {
            member_id: SECRETS[1].into(),
            transaction_id: "t6".into(),
            reason: SECRETS[5].into(),
        })
        .await
        .expect("reopened");
}

/// Every report, each answer seen.
async fn every_report(channel: Channel, seen: &mut Seen) {
    let mut reports = ReportsClient::new(channel);
    seen.add(
        &reports
            .tier_distribution(pb::AsOfRequest::default())
            .await
            .expect("report"),
    );
    seen.add(
        &reports
            .points_liability(pb::LiabilityRequest {})
            .await
            .expect("report"),
    );
    seen.add(
        &reports
            .value_bands(pb::AsOfRequest::default())
            .await
            .expect("report"),
    );
    seen.add(
        &reports
            .tier_migration(pb::PeriodRequest::default())
            .await
            .expect("report"),
    );
    seen.add(
        &reports
            .value_ranks(pb::ValueRanksRequest::default())
            .await
            .expect("report"),
    );
    seen.add(
        &reports
            .rfm(pb::PeriodRequest::default())
            .await
            .expect("report"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_erasure_no_answer_report_export_backup_stream_or_log_line_holds_the_person() {
    let dir = TempDir::new().expect("temp dir");
    let store = new_store(dir.path());
    let first = serve_on(&store, shipped_rules(), &[]);
    let mut client = first.client().await;
    a_member_with_everything(&mut client).await;
    let before = distribution(first.channel().await).await;
    drop(client);
    let (_, _) = stop_with_log(first, "TERM");

    // From here on, nothing may hold the person: a new process, whose
    // whole log is searched.
    let second: Served = serve_on(&store, shipped_rules(), &[]);
    let channel = second.channel().await;
    let mut client = LoyaltyClient::new(channel.clone());
    let mut seen = Seen(Vec::new());
    let erased = client
        .erase_member(erase(SECRETS[0], "t-erase"))
        .await
        .expect("erased")
        .into_inner();
    seen.add(&erased);
    let pseudonym = erased.pseudonym;
    assert_eq!(
        distribution(channel.clone()).await,
        before,
        "the figures stay"
    );
    let member = client
        .get_member(pb::GetMemberRequest {
            member_id: pseudonym.clone(),
        })
        .await
        .expect("the pseudonym is a member");
    seen.add(&member);
    seen.add(
        &client
            .get_tier_history(pb::GetTierHistoryRequest {
                member_id: pseudonym.clone(),
                page_size: 0,
                page_token: String::new(),
            })
            .await
            .expect("history"),
    );
    let mut pieces = client
        .export_member(pb::ExportMemberRequest {
            member_id: pseudonym.clone(),
        })
        .await
        .expect("export")
        .into_inner();
    let mut export = Vec::new();
    while let Some(piece) = pieces.next().await {
        export.extend(piece.expect("a piece").data);
    }
    seen.0.push(String::from_utf8(export).expect("UTF-8"));
    let mut stream = client
        .watch_tier_changes(pb::WatchTierChangesRequest::default())
        .await
        .expect("watching")
        .into_inner();
    let total = member.into_inner().lifetime_value_minor;
    assert_eq!(total, 65_000);
    // Every entry ever written: INITIAL x3, the promotions, MERGED x2,
    // CLOSED, REOPENED.
    for _ in 0..7 {
        let entry = stream.next().await.expect("an entry").expect("streamed");
        seen.add(&entry);
    }
    drop(stream);
    every_report(channel.clone(), &mut seen).await;
    seen.add(
        &client
            .evaluate_tiers(pb::EvaluateTiersRequest::default())
            .await
            .expect("swept"),
    );
    drop(client);
    let (status, log) = stop_with_log(second, "TERM");
    let backup = backup_bytes(&store, &dir.path().join("after.backup"));
    assert!(status.success());
    assert!(
        log.iter()
            .any(|line| line.contains("member erased") && line.contains(&pseudonym)),
        "the erasure is logged with its pseudonym: {log:?}"
    );
    seen.0.extend(log);
    seen.0.push(String::from_utf8_lossy(&backup).into_owned());
    seen.assert_clean("what the service said after the erasure");

    // The backup restores into a store whose every byte is clean.
    let restored = dir.path().join("restored");
    succeeded(
        tierd()
            .args(["restore", "--in"])
            .arg(dir.path().join("after.backup"))
            .arg("--data")
            .arg(&restored)
            .output()
            .expect("tierd runs"),
    );
    files_of(&restored).assert_clean("the restored store's files");

    // sled's log keeps replaced bytes until it reuses their space:
    // `tierd compact` rewrites the store with its live records only (on a
    // database, VACUUM FULL), and the service goes on from it.
    succeeded(
        tierd()
            .arg("compact")
            .args(["--store", &store_arg(&store)])
            .output()
            .expect("tierd runs"),
    );
    if let Location::Sled(live) = &store {
        files_of(live).assert_clean("the compacted store's files");
    }
    let third = serve_on(&store, shipped_rules(), &[]);
    let kept = third
        .client()
        .await
        .get_member(pb::GetMemberRequest {
            member_id: pseudonym,
        })
        .await
        .expect("the member after compaction")
        .into_inner();
    assert_eq!(kept.lifetime_value_minor, 65_000);
    let (status, _) = stop_with_log(third, "TERM");
    assert!(status.success());
}

/// The bytes of every file under `dir`, as text to search.
fn files_of(dir: &std::path::Path) -> Seen {
    Seen(
        walk(dir)
            .into_iter()
            .map(|path| String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned())
            .collect(),
    )
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
