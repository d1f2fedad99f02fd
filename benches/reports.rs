//! Every report over a programme-sized store, beside reading the same
//! store raw (`baseline/raw_sled_scan`): the targets are at most
//! 10 s and at most 3x the raw scan over 1,000,000 members on 2 cores.
//!
//! `TIERD_REPORT_DATA=DIR` reports over a seeded data directory (e.g.
//! `cargo run --release --example seed -- /tmp/demo1m 1000000`); without
//! it, `TIERD_REPORT_MEMBERS` members (default 20000) are seeded into a
//! temporary directory first.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{Months, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

use tierd::{
    app::{Program, system_clock},
    report::{DEFAULT_RANKS, Period, Query, clusters::DEFAULT_SEED},
    rules,
    store::Store,
    tools::seed,
};

/// The store to report over, its directory, and the temporary directory to
/// keep alive meanwhile.
fn store() -> (Store, PathBuf, Option<tempfile::TempDir>) {
    if let Some(dir) = std::env::var_os("TIERD_REPORT_DATA") {
        let path = PathBuf::from(dir);
        return (Store::open(&path).expect("seeded store"), path, None);
    }
    let members: u64 = std::env::var("TIERD_REPORT_MEMBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules = rules::load(Path::new("rules/example.yaml")).expect("example rules");
    let store = Store::open(dir.path()).expect("store");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(seed::seed(&store, &rules, members, 7, Utc::now()))
        .expect("seeded");
    (store, dir.path().to_owned(), Some(dir))
}

fn bench(c: &mut Criterion) {
    let (store, path, dir) = store();
    let rules = rules::load(Path::new("rules/example.yaml")).expect("example rules");
    let program = Program::new(store, Arc::new(rules), system_clock());
    let today = program.today();
    let period = Period {
        from: today
            .checked_sub_months(Months::new(12))
            .and_then(|d| d.succ_opt())
            .unwrap_or(today),
        to: today,
    };
    let queries = [
        ("distribution", Query::Distribution { as_of: today }),
        ("migration", Query::Migration(period)),
        (
            "value_ranks",
            Query::ValueRanks {
                period,
                ranks: DEFAULT_RANKS,
            },
        ),
        ("value_bands", Query::ValueBands { as_of: today }),
        (
            "rfm",
            Query::Rfm {
                period,
                with_members: false,
            },
        ),
        ("segments", Query::Segments(period)),
        (
            "groups_by_region",
            Query::Groups {
                period,
                by: "region".into(),
            },
        ),
        (
            "clusters",
            Query::Clusters {
                period,
                k: None,
                seed: DEFAULT_SEED,
            },
        ),
        ("liability", Query::Liability),
    ];
    let mut group = c.benchmark_group("reports");
    group.sample_size(10);
    for (name, query) in queries {
        group.bench_function(name, |b| {
            b.iter(|| program.report(query.clone()).expect("report"))
        });
    }
    drop(program);
    let db = sled::Config::new().path(&path).open().expect("sled");
    let tree = db.open_tree("tierd").expect("tree");
    group.bench_function("baseline/raw_sled_scan", |b| {
        b.iter(|| {
            tree.scan_prefix(b"m/")
                .map(|item| item.map(|(k, v)| k.len() + v.len()).unwrap_or(0))
                .sum::<usize>()
        })
    });
    group.finish();
    drop(dir);
}

criterion_group!(report_benches, bench);
criterion_main!(report_benches);
