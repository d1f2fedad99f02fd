//! Webhooks against a real HTTP server on loopback, from the real `tierd`
//! binary: deliveries in `seq` order with signatures that verify, retries
//! of a failing endpoint and then everything, and a `kill -9` in the middle
//! of delivery that loses nothing.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use tempfile::TempDir;
use tokio::sync::Notify;
use tonic::transport::Channel;

use crate::process::{Served, crash, serve_with, terminate};
use tierd::grpc::{
    convert::timestamp,
    pb::{self, loyalty_client::LoyaltyClient},
};

const SECRET: &str = "whsec-test";

/// Hang protection only: deliveries that stop coming fail the test.
const STALL: Duration = Duration::from_secs(60);

/// What the receiver got: each POST's signature header and body.
#[derive(Default)]
struct Inbox {
    posts: Mutex<Vec<(String, Bytes)>>,
    /// Requests still to refuse with 500.
    refuse: AtomicUsize,
    /// How many were refused.
    refused: AtomicUsize,
    /// How long each answer takes, milliseconds (a slow endpoint).
    delay_ms: u64,
    arrived: Notify,
}

/// A webhook receiver on a free loopback port that refuses the first
/// `refuse` requests and takes `delay_ms` over each; its URL.
async fn receiver(refuse: usize, delay_ms: u64) -> (Arc<Inbox>, String) {
    let inbox = Arc::new(Inbox {
        refuse: AtomicUsize::new(refuse),
        delay_ms,
        ..Inbox::default()
    });
    async fn hook(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: Bytes) -> StatusCode {
        tokio::time::sleep(Duration::from_millis(inbox.delay_ms)).await;
        let refuse = inbox
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            inbox.refused.fetch_add(1, Ordering::SeqCst);
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        let signature = headers
            .get("tierd-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        inbox.posts.lock().expect("inbox").push((signature, body));
        inbox.arrived.notify_waiters();
        StatusCode::NO_CONTENT
    }
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(Arc::clone(&inbox));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver runs") });
    (inbox, format!("http://{address}/hook"))
}

impl Inbox {
    /// The seqs received, in arrival order, each signature checked.
    fn seqs(&self) -> Vec<u64> {
        let posts = self.posts.lock().expect("inbox");
        posts
            .iter()
            .map(|(signature, body)| {
                assert!(
                    tierd::webhook::verify(SECRET.as_bytes(), signature, body).is_some(),
                    "the signature verifies"
                );
                let event: serde_json::Value = serde_json::from_slice(body).expect("json");
                event["seq"].as_u64().expect("a seq")
            })
            .collect()
    }

    /// Waits until every seq of `1..=last` has arrived.
    async fn wait_for_all(&self, last: u64) -> Vec<u64> {
        tokio::time::timeout(STALL, async {
            loop {
                let arrived = self.arrived.notified();
                let seqs = self.seqs();
                if (1..=last).all(|seq| seqs.contains(&seq)) {
                    return seqs;
                }
                arrived.await;
            }
        })
        .await
        .expect("every entry is delivered")
    }
}

/// A config file with one endpoint at `url`, fast retries.
fn config(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("tierd.yaml");
    std::fs::write(
        &path,
        format!(
            "webhooks:\n  - name: crm\n    url: {url}\n    secret: {SECRET}\n    retry_first: 10ms\n    retry_max: 50ms\n"
        ),
    )
    .expect("config written");
    path
}

fn start(dir: &Path, config: &Path) -> Served {
    let rules = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/rules"));
    let config = config.to_str().expect("utf-8 path");
    serve_with(&dir.join("data"), rules, &["--config", config])
}

/// `members` members from `first` on each buy 600.00: an INITIAL and a
/// PROMOTION entry each.
async fn promote(client: &LoyaltyClient<Channel>, first: usize, members: usize) {
    let now = timestamp(chrono::Utc::now());
    let purchases = (first..first + members).map(|i| {
        let mut client = client.clone();
        let request = pb::RecordPurchaseRequest {
            member_id: format!("m{i}"),
            transaction_id: format!("p{i}"),
            amount_minor: 60_000,
            currency: "EUR".into(),
            occurred_at: Some(now),
            channel: "pos".into(),
            ..Default::default()
        };
        async move { client.record_purchase(request).await.expect("recorded") }
    });
    futures::future::join_all(purchases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_in_order_and_a_failing_endpoint_gets_them_all() {
    let (inbox, url) = receiver(3, 0).await;
    let dir = TempDir::new().expect("temp dir");
    let served = start(dir.path(), &config(dir.path(), &url));
    let client = served.client().await;
    promote(&client, 0, 5).await;
    let seqs = inbox.wait_for_all(10).await;
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>(), "in order, once each");
    assert_eq!(
        inbox.refused.load(Ordering::SeqCst),
        3,
        "retried after failures"
    );
    let posts = inbox.posts.lock().expect("inbox").clone();
    let second: serde_json::Value = serde_json::from_slice(&posts[1].1).expect("json");
    assert_eq!(second["kind"], "promotion");
    assert_eq!(second["to_tier"], "silver");
    assert_eq!(second["rules_version"], "2026.1");
    terminate(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_in_mid_delivery_loses_nothing() {
    let (inbox, url) = receiver(0, 5).await;
    let dir = TempDir::new().expect("temp dir");
    let config = config(dir.path(), &url);
    let served = start(dir.path(), &config);
    let client = served.client().await;
    promote(&client, 0, 100).await;
    // Kill it once some, not all, have been delivered.
    tokio::time::timeout(STALL, async {
        while inbox.seqs().len() < 20 {
            inbox.arrived.notified().await;
        }
    })
    .await
    .expect("deliveries start");
    crash(served);
    let delivered_before = inbox.seqs().len();
    assert!(delivered_before < 200, "killed in mid-delivery");
    let served = start(dir.path(), &config);
    let client = served.client().await;
    promote(&client, 100, 10).await;
    let seqs = inbox.wait_for_all(220).await;
    let mut first_seen = Vec::new();
    for seq in seqs {
        if !first_seen.contains(&seq) {
            first_seen.push(seq);
        }
    }
    assert_eq!(
        first_seen,
        (1..=220).collect::<Vec<u64>>(),
        "every entry, in order (after {delivered_before} before the kill), duplicates allowed"
    );
    terminate(served);
}
