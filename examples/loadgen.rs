//! Load generator: RecordPurchase against tierd and, side by side, against a
//! no-op tonic server with the same contract, on loopback; prints req/s and
//! latency percentiles of each and their ratio.
//!
//! `cargo run --release --example loadgen -- [CONCURRENCY] [SECONDS] [MEMBERS]`
//! (defaults 64, 5, 10000). Both servers run in this process on
//! 127.0.0.1:0; tierd uses a temporary data directory and the example
//! rules, and answers every purchase only after it is fsynced. The run is
//! bounded by time, so it always stops by itself.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::net::TcpListener;
use tonic::{Request, Response, Status, transport::Channel};

use tierd::{
    app::{Program, system_clock},
    grpc::{
        self,
        convert::timestamp,
        pb::{self, loyalty_client::LoyaltyClient, loyalty_server::Loyalty},
    },
    rules,
    store::Store,
};

/// The baseline: answers a purchase at once with an empty reply (the other
/// methods are the generated UNIMPLEMENTED stubs).
struct NoOp;

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Loyalty for NoOp {
    async fn record_purchase(
        &self,
        _: Request<pb::RecordPurchaseRequest>,
    ) -> Answer<pb::RecordPurchaseResponse> {
        Ok(Response::new(Default::default()))
    }
}

struct Figures {
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

async fn drive(
    address: String,
    concurrency: usize,
    seconds: u64,
    members: u64,
    label: &str,
) -> Figures {
    let channel = Channel::from_shared(address)
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut client = LoyaltyClient::new(channel.clone());
            let (next, errors, label) = (Arc::clone(&next), Arc::clone(&errors), label.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let request = pb::RecordPurchaseRequest {
                        member_id: format!("member-{}", n % members),
                        transaction_id: format!("{label}-{n}"),
                        amount_minor: 1_000 + i64::try_from(n % 50_000).unwrap_or(0),
                        currency: "EUR".into(),
                        occurred_at: Some(timestamp(chrono::Utc::now())),
                        channel: "pos".into(),
                        store_id: "store-1".into(),
                        tags: vec![],
                        lines: vec![],
                    };
                    let sent = Instant::now();
                    if client.record_purchase(request).await.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        requests_per_second: latencies.len() as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}

fn arg(position: usize, default: u64) -> u64 {
    std::env::args()
        .nth(position)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn show(label: &str, f: &Figures) {
    println!(
        "{label:<8} {:>9.0} req/s   p50 {:>8.2?}   p99 {:>8.2?}   errors {}",
        f.requests_per_second, f.p50, f.p99, f.errors
    );
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let concurrency = usize::try_from(arg(1, 64)).unwrap_or(64);
    let seconds = arg(2, 5);
    let members = arg(3, 10_000).max(1);

    let noop_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let noop_address = format!("http://{}", noop_listener.local_addr().expect("address"));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::loyalty_server::LoyaltyServer::new(NoOp))
            .serve_with_incoming(grpc::incoming(noop_listener)),
    );

    let data = tempfile::TempDir::new().expect("temp dir");
    let rules = rules::load(std::path::Path::new("rules/example.yaml")).expect("example rules");
    let store = Store::open(data.path()).expect("store");
    let program = Arc::new(Program::new(store, Arc::new(rules), system_clock()));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tierd_address = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(grpc::serve(
        listener,
        program,
        grpc::ServeOptions::default(),
        std::future::pending(),
    ));

    println!("RecordPurchase, {concurrency} in flight, {seconds} s each, {members} members");
    let baseline = drive(noop_address, concurrency, seconds, members, "noop").await;
    show("no-op", &baseline);
    let tierd = drive(tierd_address, concurrency, seconds, members, "tierd").await;
    show("tierd", &tierd);
    println!(
        "ratio    {:.2} of the no-op throughput, p50 x{:.1}, p99 x{:.1}",
        tierd.requests_per_second / baseline.requests_per_second,
        tierd.p50.as_secs_f64() / baseline.p50.as_secs_f64(),
        tierd.p99.as_secs_f64() / baseline.p99.as_secs_f64()
    );
}
