//! Several `tierd` processes on one PostgreSQL database: writes through
//! any node add up exactly, a transaction id counts once whichever nodes it
//! reaches, and readiness follows the database. (The crash test across
//! nodes is `crash.rs`, run under `postgres::`.)
//!
//! Each test makes its own database on the throwaway cluster (`pg`); where
//! there is no PostgreSQL it says so and passes.

use std::time::Duration;

use futures::{StreamExt as _, future::join_all};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    pg,
    process::{Served, purchase_now, serve_on, shipped_rules, terminate},
    watch::take,
};
use tierd::{
    grpc::pb::{self, loyalty_client::LoyaltyClient},
    store::Location,
};

/// `count` nodes on one new database, and a client of each; `None` where
/// there is no PostgreSQL.
async fn nodes(count: usize) -> Option<(Vec<Served>, Vec<LoyaltyClient<Channel>>)> {
    Some(nodes_on(&pg::database()?, count).await)
}

/// `count` nodes on the database `url`, and a client of each.
async fn nodes_on(url: &str, count: usize) -> (Vec<Served>, Vec<LoyaltyClient<Channel>>) {
    let store = Location::Postgres(url.to_owned());
    let served: Vec<Served> = (0..count)
        .map(|_| serve_on(&store, shipped_rules(), &[]))
        .collect();
    let mut clients = Vec::new();
    for node in &served {
        clients.push(node.client().await);
    }
    (served, clients)
}

async fn member(client: &mut LoyaltyClient<Channel>, member_id: &str) -> pb::Member {
    client
        .get_member(pb::GetMemberRequest {
            member_id: member_id.into(),
        })
        .await
        .expect("member")
        .into_inner()
}

async fn stop_all(served: Vec<Served>) {
    for node in served {
        let status = tokio::task::spawn_blocking(move || terminate(node))
            .await
            .expect("stopped");
        assert!(status.success(), "a node stops cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_purchases_of_the_same_members_through_three_nodes_add_up_exactly() {
    const MEMBERS: usize = 5;
    const PURCHASES: usize = 300;
    let Some((served, clients)) = nodes(3).await else {
        return;
    };
    // Every purchase goes to the next node in turn, 48 in flight, all for
    // five members: the nodes keep colliding on the same rows.
    let answers: Vec<pb::RecordPurchaseResponse> = futures::stream::iter(0..PURCHASES)
        .map(|i| {
            let mut client = clients[i % clients.len()].clone();
            let request = purchase_now(
                &format!("m{}", i % MEMBERS),
                &format!("p{i}"),
                100 + i as i64,
            );
            async move {
                client
                    .record_purchase(request)
                    .await
                    .expect("recorded")
                    .into_inner()
            }
        })
        .buffer_unordered(48)
        .collect()
        .await;
    assert!(answers.iter().all(|a| !a.duplicate), "each id is new");
    let mut client = clients[0].clone();
    for m in 0..MEMBERS {
        let spent: i64 = (0..PURCHASES)
            .filter(|i| i % MEMBERS == m)
            .map(|i| 100 + i as i64)
            .sum();
        let state = member(&mut client, &format!("m{m}")).await;
        assert_eq!(
            state.lifetime_value_minor, spent,
            "m{m}: every purchase once"
        );
        let mut other = clients[2].clone();
        assert_eq!(
            member(&mut other, &format!("m{m}")).await,
            state,
            "nodes agree"
        );
    }
    let earned: i64 = answers.iter().map(|a| a.points_earned).sum();
    let mut balances = 0;
    for m in 0..MEMBERS {
        balances += member(&mut client, &format!("m{m}")).await.points_balance;
    }
    assert_eq!(balances, earned, "the balances are the points answered");
    stop_all(served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_transaction_sent_to_two_nodes_at_once_counts_once() {
    const TRANSACTIONS: usize = 60;
    let Some((served, clients)) = nodes(2).await else {
        return;
    };
    let pairs = (0..TRANSACTIONS).map(|i| {
        // Half of them for members that do not exist yet: the two nodes
        // also race to create the member.
        let request = purchase_now(&format!("m{}", i / 2), &format!("p{i}"), 1_000);
        let (mut a, mut b) = (clients[0].clone(), clients[1].clone());
        async move {
            let (first, second) = tokio::join!(
                a.record_purchase(request.clone()),
                b.record_purchase(request)
            );
            let first = first.expect("answered").into_inner();
            let second = second.expect("answered").into_inner();
            assert_eq!(
                [first.duplicate, second.duplicate]
                    .iter()
                    .filter(|d| **d)
                    .count(),
                1,
                "one node records it, the other answers it as a retry"
            );
            assert_eq!(first.points_earned, second.points_earned, "the same effect");
        }
    });
    join_all(pairs).await;
    let mut client = clients[1].clone();
    for m in 0..TRANSACTIONS / 2 {
        let state = member(&mut client, &format!("m{m}")).await;
        assert_eq!(
            state.lifetime_value_minor, 2_000,
            "m{m}: two purchases, once each"
        );
    }
    stop_all(served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_together_on_an_empty_database_all_serve_and_record_the_rules_once() {
    let Some(url) = pg::database() else {
        return;
    };
    let store = Location::Postgres(url);
    // Three first starts at once: each applies the schema if it is missing
    // and records the rules version if it is not the last one.
    let served: Vec<Served> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| serve_on(&store, shipped_rules(), &[])))
            .collect();
        starting
            .into_iter()
            .map(|node| node.join().expect("a node starts"))
            .collect()
    });
    for (i, node) in served.iter().enumerate() {
        let mut client = node.client().await;
        client
            .record_purchase(purchase_now("ann", &format!("p{i}"), 1_000))
            .await
            .expect("every node serves");
    }
    let mut client = served[0].client().await;
    let versions = client
        .list_rules_versions(pb::ListRulesVersionsRequest::default())
        .await
        .expect("versions")
        .into_inner()
        .versions;
    let labels: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(labels, ["2026.1"], "recorded once");
    assert_eq!(member(&mut client, "ann").await.lifetime_value_minor, 3_000);
    stop_all(served).await;
}

async fn watch_from(
    client: &mut LoyaltyClient<Channel>,
    from_seq: u64,
) -> tonic::Streaming<pb::TierChange> {
    client
        .watch_tier_changes(pb::WatchTierChangesRequest {
            from_seq,
            ..Default::default()
        })
        .await
        .expect("watching")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_of_one_node_carries_every_nodes_changes_and_resumes_on_another() {
    const MEMBERS: usize = 60;
    let Some((served, clients)) = nodes(2).await else {
        return;
    };
    let mut a = clients[0].clone();
    let mut b = clients[1].clone();
    let mut watching_a = watch_from(&mut a, 0).await;
    // Enrolments through both nodes at once, 16 in flight: each makes one
    // INITIAL entry, committed in whatever order the database decides.
    futures::stream::iter(0..MEMBERS)
        .map(|i| {
            let mut client = clients[i % 2].clone();
            let request = purchase_now(&format!("m{i}"), &format!("p{i}"), 1_000);
            async move { client.record_purchase(request).await.expect("recorded") }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let first = take(&mut watching_a, MEMBERS / 2).await;
    drop(watching_a);
    // Resume on the other node after the last seq seen, while more come.
    let resume_after = first.last().map(|e| e.seq).expect("entries");
    for i in MEMBERS..MEMBERS + 10 {
        b.record_purchase(purchase_now(&format!("m{i}"), &format!("p{i}"), 1_000))
            .await
            .expect("recorded");
    }
    let mut watching_b = watch_from(&mut b, resume_after).await;
    let rest = take(&mut watching_b, MEMBERS / 2 + 10).await;
    let seen: Vec<u64> = first.iter().chain(&rest).map(|e| e.seq).collect();
    let mut recorded = Vec::new();
    for i in 0..MEMBERS + 10 {
        let history = a
            .get_tier_history(pb::GetTierHistoryRequest {
                member_id: format!("m{i}"),
                page_size: 10,
                page_token: String::new(),
            })
            .await
            .expect("history")
            .into_inner()
            .entries;
        recorded.extend(history.iter().map(|e| e.seq));
    }
    recorded.sort_unstable();
    assert_eq!(
        seen, recorded,
        "every entry once, in seq order, across the resume"
    );
    stop_all(served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_without_a_restart() {
    // A cluster of its own: the test stops it.
    let Some(cluster) = pg::private_cluster() else {
        return;
    };
    let url = pg::new_database(&cluster).expect("a database");
    let (served, mut clients) = nodes_on(&url, 1).await;
    let mut health = HealthClient::new(served[0].channel().await);
    let within = Duration::from_secs(10);
    wait_for(&mut health, ServingStatus::Serving, within).await;
    clients[0]
        .record_purchase(purchase_now("ana", "p1", 1_000))
        .await
        .expect("recorded while the database is up");

    let down = cluster.stopped();
    wait_for(&mut health, ServingStatus::NotServing, within).await;
    // Reads fail fast while the database is down, and never hold the
    // workers that answer health checks.
    let reads = (0..8).map(|_| {
        let mut client = clients[0].clone();
        async move {
            let started = std::time::Instant::now();
            let read = client
                .get_member(pb::GetMemberRequest {
                    member_id: "ana".into(),
                })
                .await;
            (read, started.elapsed())
        }
    });
    let checked = async {
        let started = std::time::Instant::now();
        let answer = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        (answer, started.elapsed())
    };
    let (reads, (answer, health_took)) = tokio::join!(join_all(reads), checked);
    answer.expect("health answers");
    assert!(
        health_took < Duration::from_millis(100),
        "health took {health_took:?}"
    );
    for (read, took) in reads {
        let status = read.expect_err("the database is down");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(
            took < Duration::from_millis(500),
            "a read took {took:?} to fail"
        );
    }
    let refused = clients[0]
        .record_purchase(purchase_now("ana", "p2", 1_000))
        .await
        .expect_err("nothing can be recorded");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("retry with the same transaction_id"),
        "{refused:?}"
    );

    drop(down);
    wait_for(&mut health, ServingStatus::Serving, within).await;
    let retried = purchase_now("ana", "p2", 1_000);
    let answer = clients[0]
        .record_purchase(retried.clone())
        .await
        .expect("recorded once the database is back")
        .into_inner();
    assert!(!answer.duplicate);
    let again = clients[0]
        .record_purchase(retried)
        .await
        .expect("a retry")
        .into_inner();
    assert!(again.duplicate, "the retry counts once");
    assert_eq!(
        member(&mut clients[0], "ana").await.lifetime_value_minor,
        2_000
    );
    stop_all(served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_reload_on_one_node_is_in_force_on_the_other_within_the_bound() {
    let Some(url) = pg::database() else {
        return;
    };
    let store = Location::Postgres(url);
    let dir = tempfile::TempDir::new().expect("temp dir");
    let example = std::fs::read_to_string(crate::harness::example_rules()).expect("example");
    // Each node reads a file of its own, as on machines of their own.
    let files: Vec<std::path::PathBuf> = ["a.yaml", "b.yaml"]
        .iter()
        .map(|name| {
            let file = dir.path().join(name);
            std::fs::write(&file, &example).expect("rules copy");
            file
        })
        .collect();
    let served: Vec<Served> = files
        .iter()
        .map(|file| serve_on(&store, file, &["--no-watch"]))
        .collect();
    let mut a = served[0].client().await;
    let mut b = served[1].client().await;

    std::fs::write(
        &files[0],
        example.replace("version: \"2026.1\"", "version: \"2026.2\""),
    )
    .expect("edit the rules");
    let reloaded = a
        .reload_rules(pb::ReloadRulesRequest {})
        .await
        .expect("reloaded")
        .into_inner();
    assert!(reloaded.changed);
    let reloaded_at = std::time::Instant::now();
    // RULES_POLL (1 s) plus loading the rules: 3 s leaves room for a slow
    // machine without hiding a node that never follows.
    let bound = tierd::app::RULES_POLL * 3;
    loop {
        let active = b
            .get_rules(pb::GetRulesRequest {})
            .await
            .expect("rules")
            .into_inner()
            .active
            .expect("a version");
        if active.version == "2026.2" {
            break;
        }
        assert!(
            reloaded_at.elapsed() < bound,
            "node b still runs {} after {bound:?}",
            active.version
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("the other node followed in {:?}", reloaded_at.elapsed());
    let versions = b
        .list_rules_versions(pb::ListRulesVersionsRequest::default())
        .await
        .expect("versions")
        .into_inner()
        .versions;
    let labels: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(labels, ["2026.1", "2026.2"], "one history, recorded once");
    stop_all(served).await;
}

/// Polls health until it reports `wanted`, for at most `within`. Polling,
/// not sleeping for a set time: the test waits only as long as the node
/// takes.
async fn wait_for(health: &mut HealthClient<Channel>, wanted: ServingStatus, within: Duration) {
    let started = std::time::Instant::now();
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: "loyalty.v1.Loyalty".into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status();
        if status == wanted {
            return;
        }
        assert!(
            started.elapsed() < within,
            "health stayed {status:?}, not {wanted:?}, for {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
