//! `/metrics` on its own address: requests by RPC and status with their
//! latency, the writer's rounds, the rules in force, whether the store
//! answers, memory and store size, in the Prometheus text format.

use tempfile::TempDir;

use crate::{
    harness::new_store,
    process::{serve_on, shipped_rules, terminate},
};
use tierd::grpc::{convert::timestamp, pb};

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
    let purchase = pb::RecordPurchaseRequest {
        member_id: "ann".into(),
        transaction_id: "p1".into(),
        amount_minor: 1_000,
        currency: "EUR".into(),
        occurred_at: Some(timestamp(chrono::Utc::now())),
        channel: "pos".into(),
        ..Default::default()
    };
    client
        .record_purchase(purchase.clone())
        .await
        .expect("recorded");
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
    let status = tokio::task::spawn_blocking(move || terminate(node))
        .await
        .expect("stopped");
    assert!(status.success());
}
