//! `/metrics` on its own address: requests by RPC and status with their
//! latency, the writer's rounds, the rules in force, whether the store
//! answers, memory and store size, open streams and their lag, in the
//! Prometheus text format.

use tempfile::TempDir;

use crate::{
    harness::new_store,
    process::{purchase_now, serve_on, shipped_rules, terminate},
};
use tierd::grpc::pb;

/// A loopback address nobody listens on right now.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_rpc_and_status_on_their_own_address() {
    let dir = TempDir::new().expect("temp dir");
    let store = new_store(dir.path());
    let metrics = free_address();
    let node = serve_on(&store, shipped_rules(), &["--metrics-listen", &metrics]);
    let mut client = node.client().await;
    let purchase = purchase_now("ann", "p1", 1_000);
    client
        .record_purchase(purchase.clone())
        .await
        .expect("recorded");
    // A watcher that has taken ann's enrolment and stays open.
    let mut stream = client
        .watch_tier_changes(pb::WatchTierChangesRequest::default())
        .await
        .expect("watching")
        .into_inner();
    let first = crate::watch::take(&mut stream, 1).await;
    assert_eq!(first.len(), 1);
    let refused = client
        .record_purchase(pb::RecordPurchaseRequest {
            amount_minor: -5,
            ..purchase
        })
        .await
        .expect_err("a negative amount");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let page = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text");
    for expected in [
        r#"tierd_requests_total{rpc="loyalty.v1.Loyalty/RecordPurchase",status="Ok"} 1"#,
        r#"tierd_requests_total{rpc="loyalty.v1.Loyalty/RecordPurchase",status="InvalidArgument"} 1"#,
        r#"tierd_request_duration_seconds_bucket{rpc="loyalty.v1.Loyalty/RecordPurchase",le="0.005"}"#,
        r#"tierd_rules_active{version="2026.1"} 1"#,
        "tierd_store_reachable 1",
        "tierd_watch_streams 1",
        "tierd_watch_lag_seconds_count 1",
        "tierd_resident_memory_bytes ",
        "tierd_store_size_bytes ",
        "# HELP tierd_requests_total Requests answered, by rpc and gRPC status",
    ] {
        assert!(page.contains(expected), "{expected} in:\n{page}");
    }
    if matches!(store, tierd::store::Location::Sled(_)) {
        assert!(page.contains("tierd_write_round_jobs_count "), "{page}");
        assert!(
            page.contains("tierd_fsync_duration_seconds_bucket"),
            "{page}"
        );
    }
    drop(stream);
    let status = tokio::task::spawn_blocking(move || terminate(node))
        .await
        .expect("stopped");
    assert!(status.success());
}
