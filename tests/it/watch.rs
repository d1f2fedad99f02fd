//! The tier-change stream through the server: every promotion of a burst
//! of concurrent purchases exactly once and in order, an exact resume with
//! `from_seq`, filters, and a stalled watcher that costs the server a
//! bounded amount of memory and then catches up.

use std::time::Duration;

use tonic::{Code, Streaming};

use crate::harness::{TestServer, assert_refused};
use tierd::grpc::pb::{self, TierChangeKind};

/// Hang protection only: a stream that stops delivering fails the test
/// instead of hanging it (nothing here waits for time to pass).
const STALL: Duration = Duration::from_secs(60);

/// The next `n` entries of `stream`.
pub async fn take(stream: &mut Streaming<pb::TierChange>, n: usize) -> Vec<pb::TierChange> {
    let mut entries = Vec::with_capacity(n);
    while entries.len() < n {
        let next = tokio::time::timeout(STALL, stream.message())
            .await
            .expect("the stream delivers")
            .expect("no error")
            .expect("the stream goes on");
        entries.push(next);
    }
    entries
}

fn watch(from_seq: u64, kinds: &[TierChangeKind], tiers: &[&str]) -> pb::WatchTierChangesRequest {
    pb::WatchTierChangesRequest {
        from_seq,
        kinds: kinds.iter().map(|k| *k as i32).collect(),
        tiers: tiers.iter().map(|t| (*t).to_owned()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_every_promotion_of_a_burst_once_and_in_order() {
    let mut server = TestServer::start().await;
    let mut stream = server
        .client
        .watch_tier_changes(watch(0, &[TierChangeKind::Promotion], &[]))
        .await
        .expect("watching")
        .into_inner();
    // 40 members, 5 purchases each, all at once: 150.00 apiece reaches
    // silver (500 points) at the fourth, and nobody reaches gold.
    let purchases = (0..200).map(|i| {
        let mut client = server.client.clone();
        let request = server.purchase(&format!("m{}", i % 40), &format!("p{i}"), 15_000);
        async move { client.record_purchase(request).await.expect("recorded") }
    });
    futures::future::join_all(purchases).await;
    let mut promotions = Vec::new();
    for m in 0..40 {
        let history = server.history(&format!("m{m}")).await;
        promotions.extend(
            history
                .into_iter()
                .filter(|e| e.kind() == TierChangeKind::Promotion)
                .map(|e| e.seq),
        );
    }
    promotions.sort_unstable();
    assert_eq!(promotions.len(), 40, "every member was promoted once");
    let seen: Vec<u64> = take(&mut stream, promotions.len())
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seen, promotions, "each once, in seq order");
}

#[tokio::test]
async fn a_reconnect_with_from_seq_resumes_exactly() {
    let mut server = TestServer::start().await;
    for i in 0..30 {
        server.buy(&format!("m{i}"), &format!("p{i}"), 50_000).await;
    }
    let mut first = server
        .client
        .watch_tier_changes(watch(0, &[], &[]))
        .await
        .expect("watching")
        .into_inner();
    let before = take(&mut first, 25).await;
    drop(first);
    for i in 30..40 {
        server.buy(&format!("m{i}"), &format!("p{i}"), 50_000).await;
    }
    let last = before.last().map(|e| e.seq).expect("entries");
    let mut again = server
        .client
        .watch_tier_changes(watch(last, &[], &[]))
        .await
        .expect("watching again")
        .into_inner();
    // 40 members, each INITIAL and a promotion to silver.
    let after = take(&mut again, 80 - 25).await;
    let seqs: Vec<u64> = before.iter().chain(&after).map(|e| e.seq).collect();
    let mut recorded = Vec::new();
    for i in 0..40 {
        recorded.extend(server.history(&format!("m{i}")).await.iter().map(|e| e.seq));
    }
    recorded.sort_unstable();
    assert_eq!(recorded.len(), 80);
    assert_eq!(seqs, recorded, "nothing missed, nothing twice, in order");
}

#[tokio::test]
async fn filters_pick_kinds_and_tiers_and_unknown_ones_are_refused() {
    let mut server = TestServer::start().await;
    server.buy("ann", "p1", 50_000).await; // silver
    server.buy("bob", "p2", 200_000).await; // gold
    let mut silver = server
        .client
        .watch_tier_changes(watch(0, &[TierChangeKind::Promotion], &["silver"]))
        .await
        .expect("watching")
        .into_inner();
    let only = take(&mut silver, 1).await;
    assert_eq!(
        (only[0].member_id.as_str(), only[0].to_tier.as_str()),
        ("ann", "silver")
    );
    assert_refused(
        server
            .client
            .watch_tier_changes(watch(0, &[], &["silvr"]))
            .await,
        Code::InvalidArgument,
        "tiers",
    );
    let mut bad_kind = watch(0, &[], &[]);
    bad_kind.kinds = vec![42];
    assert_refused(
        server.client.watch_tier_changes(bad_kind).await,
        Code::InvalidArgument,
        "kinds",
    );
}

/// The resident memory of process `pid`, bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Writes `count` purchases of new members (one INITIAL entry each) from
/// `first` on, 64 in flight. Member ids are long (112 bytes), so that
/// entries held for a watcher would show in the server's memory.
async fn enrol(
    client: &pb::loyalty_client::LoyaltyClient<tonic::transport::Channel>,
    first: usize,
    count: usize,
) {
    use futures::StreamExt as _;
    let now = tierd::grpc::convert::timestamp(chrono::Utc::now());
    futures::stream::iter(first..first + count)
        .map(|i| {
            let mut client = client.clone();
            let request = pb::RecordPurchaseRequest {
                member_id: format!("member-{i:08}-{}", "x".repeat(96)),
                transaction_id: format!("enrol-{i:08}"),
                amount_minor: 1_000,
                currency: "EUR".into(),
                occurred_at: Some(now),
                channel: "pos".into(),
                ..Default::default()
            };
            async move { client.record_purchase(request).await.expect("recorded") }
        })
        .buffer_unordered(64)
        .for_each(|_| async {})
        .await;
}

/// The bound this test holds the server to: a watcher that stops reading
/// costs the server at most this much resident memory beyond what the
/// same writes cost with nobody watching. By design it holds one page of
/// entries read from the store, the stream's buffer and HTTP/2's flow
/// control window, whatever the number of entries it falls behind by.
const STALLED_WATCHER_BOUND: u64 = 12 * 1024 * 1024;

/// 50,000 events written while a watcher reads nothing raise the server's
/// memory by no more than the same 50,000 without a watcher, plus
/// [`STALLED_WATCHER_BOUND`]; then the watcher catches up with every entry
/// in order. Runs the real binary so that only the server is measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watcher_costs_bounded_memory_and_then_catches_up() {
    const EVENTS: usize = 50_000;
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store = crate::harness::new_store(dir.path());
    let served = crate::process::serve_on(&store, crate::process::shipped_rules(), &[]);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", served.address))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = pb::loyalty_client::LoyaltyClient::new(channel);
    let pid = served.child.id();

    let start = rss_bytes(pid);
    enrol(&client, 0, EVENTS).await;
    let unwatched = rss_bytes(pid).saturating_sub(start);

    let mut stalled = client
        .watch_tier_changes(watch(0, &[], &[]))
        .await
        .expect("watching")
        .into_inner();
    let before = rss_bytes(pid);
    enrol(&client, EVENTS, EVENTS).await;
    let watched = rss_bytes(pid).saturating_sub(before);
    eprintln!(
        "server RSS growth over {EVENTS} events: {} KiB unwatched, {} KiB with a stalled watcher",
        unwatched / 1024,
        watched / 1024
    );
    assert!(
        watched <= unwatched + STALLED_WATCHER_BOUND,
        "a stalled watcher grew the server by {watched} bytes against {unwatched} without one"
    );

    // Every enrolment made one entry: all of them come, each once, in order.
    let mut last = 0;
    for _ in 0..2 * EVENTS {
        let entry = tokio::time::timeout(STALL, stalled.message())
            .await
            .expect("the stream delivers")
            .expect("no error")
            .expect("the stream goes on");
        assert!(
            entry.seq > last,
            "in order, each once: {} after {last}",
            entry.seq
        );
        last = entry.seq;
    }
    crate::process::terminate(served);
}
