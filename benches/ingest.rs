//! The durable write path against raw sled doing the same I/O.
//!
//! `tierd/record_purchase_x64`: 64 concurrent purchases through
//! [`Program`] (validation, idempotency check, ledger, engine, one atomic
//! batch each, group fsync), no gRPC. `baseline/raw_sled_x64`: 64 atomic
//! batches of four keys of the same sizes, then one flush and fdatasync:
//! the storage work alone. The ratio is what the domain logic costs.
//! `baseline/raw_sled_x64_not_durable` skips the flush: what sled's batches
//! cost in CPU alone.
//!
//! `tierd/record_events_x500`: one `RecordEvents` batch of 500 purchases
//! through [`Program`]. `baseline/raw_sled_events_x500`: what the least a
//! durable event can cost on sled, one sled batch holding 500 events of
//! two keys each (the member rewritten, a new receipt), one flush and one
//! fdatasync: the ceiling of any design that keeps a member record and a
//! receipt per event.

use std::{fs::File, sync::Arc, sync::atomic::AtomicU64, sync::atomic::Ordering};

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::future::join_all;

use tierd::{
    app::{
        Program,
        command::{Event, Purchase},
        system_clock,
    },
    grpc::{convert::timestamp, pb},
    rules,
    store::Store,
};

const IN_FLIGHT: u64 = 64;

/// Events in one `RecordEvents` call (the batches of 500).
const BATCH: u64 = 500;

/// The `n`th purchase, validated as the server would.
fn purchase(n: u64) -> Purchase {
    pb::RecordPurchaseRequest {
        member_id: format!("member-{}", n % 5_000),
        transaction_id: format!("txn-{n}"),
        amount_minor: 1_000 + i64::try_from(n % 40_000).unwrap_or(0),
        currency: "EUR".into(),
        occurred_at: Some(timestamp(Utc::now())),
        channel: "pos".into(),
        store_id: "store-1".into(),
        tags: vec![],
        lines: vec![],
    }
    .try_into()
    .expect("a valid purchase")
}

fn bench_program(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules = rules::load(std::path::Path::new("rules/example.yaml")).expect("example rules");
    let program = Arc::new(Program::new(
        Store::open(dir.path()).expect("store"),
        Arc::new(rules),
        system_clock(),
    ));
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(IN_FLIGHT));
    group.bench_function("tierd/record_purchase_x64", |b| {
        b.to_async(&runtime).iter(|| {
            let start = next.fetch_add(IN_FLIGHT, Ordering::Relaxed);
            let program = Arc::clone(&program);
            async move {
                let writes = (start..start + IN_FLIGHT).map(|n| {
                    let program = Arc::clone(&program);
                    async move {
                        program
                            .record_purchase(purchase(n), "bench")
                            .await
                            .expect("recorded")
                    }
                });
                join_all(writes).await
            }
        })
    });

    let raw_dir = tempfile::TempDir::new().expect("temp dir");
    let db = sled::Config::new()
        .path(raw_dir.path())
        .open()
        .expect("sled");
    let tree = db.open_tree("raw").expect("tree");
    let data_file = File::open(raw_dir.path().join("db")).expect("data file");
    let raw_next = AtomicU64::new(0);
    let raw_batches = |start: u64| {
        for n in start..start + IN_FLIGHT {
            let mut batch = sled::Batch::default();
            batch.insert(format!("m/member-{}", n % 5_000).as_bytes(), vec![7u8; 400]);
            batch.insert(format!("t/txn-{n}").as_bytes(), vec![7u8; 450]);
            batch.insert(&b"meta/next_seq"[..], n.to_be_bytes().to_vec());
            batch.insert(format!("h/{n}").as_bytes(), vec![7u8; 120]);
            tree.apply_batch(batch).expect("batch");
        }
    };
    group.bench_function("baseline/raw_sled_x64", |b| {
        b.iter(|| {
            raw_batches(raw_next.fetch_add(IN_FLIGHT, Ordering::Relaxed));
            db.flush().expect("flush");
            data_file.sync_data().expect("fdatasync");
        })
    });
    group.bench_function("baseline/raw_sled_x64_not_durable", |b| {
        b.iter(|| raw_batches(raw_next.fetch_add(IN_FLIGHT, Ordering::Relaxed)))
    });
    group.finish();

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("tierd/record_events_x500", |b| {
        b.to_async(&runtime).iter(|| {
            let start = next.fetch_add(BATCH, Ordering::Relaxed);
            let events = (start..start + BATCH)
                .map(|n| Event::Purchase(purchase(n)))
                .collect();
            let program = Arc::clone(&program);
            async move {
                let outcomes = program.record_events(events, "bench").await;
                assert!(outcomes.iter().all(Result::is_ok), "every event recorded");
            }
        })
    });
    group.bench_function("baseline/raw_sled_events_x500", |b| {
        b.iter(|| {
            let start = raw_next.fetch_add(BATCH, Ordering::Relaxed);
            let mut batch = sled::Batch::default();
            for n in start..start + BATCH {
                batch.insert(format!("m/member-{}", n % 5_000).as_bytes(), vec![7u8; 400]);
                batch.insert(format!("t/txn-{n}").as_bytes(), vec![7u8; 450]);
            }
            tree.apply_batch(batch).expect("batch");
            db.flush().expect("flush");
            data_file.sync_data().expect("fdatasync");
        })
    });
    group.finish();
}

criterion_group!(ingest_benches, bench_program);
criterion_main!(ingest_benches);
