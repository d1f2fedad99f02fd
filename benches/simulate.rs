//! What-if simulation over a program-sized store, against reading the same
//! store raw.
//!
//! `simulate/candidate_over_N` evaluates every seeded member under a
//! candidate version of the example rules (decode, sweep a copy, matrix); `baseline/raw_sled_scan_N` only walks the same
//! keys and values. N is `TIERD_SIM_MEMBERS` (default 100000; the issue's
//! target is 1,000,000 in at most 10 s on 2 cores).

use std::{path::Path, sync::Arc};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};

use tierd::{
    app::{Program, system_clock},
    rules,
    store::Store,
    tools::seed,
};

fn bench(c: &mut Criterion) {
    let members: u64 = std::env::var("TIERD_SIM_MEMBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules = rules::load(Path::new("rules/example.yaml")).expect("example rules");
    let store = Store::open(dir.path()).expect("store");
    runtime
        .block_on(seed::seed(&store, &rules, members, 7, Utc::now()))
        .expect("seeded");
    let text = rules
        .source
        .replace("qualifying_points: 500", "qualifying_points: 400");
    let candidate = rules::load(&rules::Candidate::new("candidate.yaml", text)).expect("candidate");
    let program = Program::new(store, Arc::new(rules), system_clock());
    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    group.bench_function(format!("candidate_over_{members}"), |b| {
        b.iter(|| program.simulate(&candidate, None).expect("simulated"))
    });
    drop(program);
    let db = sled::Config::new().path(dir.path()).open().expect("sled");
    let tree = db.open_tree("tierd").expect("tree");
    group.bench_function(format!("baseline/raw_sled_scan_{members}"), |b| {
        b.iter(|| {
            tree.scan_prefix(b"m/")
                .map(|item| item.map(|(k, v)| k.len() + v.len()).unwrap_or(0))
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(simulate_benches, bench);
criterion_main!(simulate_benches);
