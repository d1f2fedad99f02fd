//! tierd's engine beside GoRules zen-engine, on the same four-tier decision,
//! in one run.
//!
//! The decision is `benches/thresholds_only.yaml`: silver at 500 qualifying
//! points or 400.00 of purchases, gold at 1,500 points and 5 purchases,
//! platinum at 10,000.00 of lifetime value. In zen it is one decision table
//! (hit policy `first`, best tier first) between an input and an output
//! node, the way a JDM editor user would draw it. Before timing, both
//! engines decide a handful of members and must agree, so the two benches
//! time the same answer.
//!
//! tierd is timed twice: for a member who stays in their tier (the usual
//! case: no words are built) and for one who moves (bronze to silver, the
//! reason written out for the history). zen does the same work either way.
//!
//! zen's `Decision::evaluate` is an async fn whose future is not `Send`: it
//! runs on a current-thread runtime, one decision per bench thread. tierd
//! does a little more per call than the table: it also applies the retain
//! thresholds of the member's current tier.
//!
//! `cargo bench -p tierd-zen-peer` (builds zen-engine's ~450 crates first).

use std::{collections::BTreeMap, hint::black_box, path::Path, sync::Arc};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tierd::{
    domain::decide::{self, Metrics, Subject, TierState},
    rules::{self, RuleSet},
};
use zen_engine::{DecisionEngine, model::DecisionContent};

/// The ladder as a JDM graph: request -> decision table -> response.
fn ladder_graph() -> DecisionContent {
    let row = |qp: &str, volume: &str, count: &str, ltv: &str, tier: &str| json!({ "qp": qp, "volume": volume, "count": count, "ltv": ltv, "tier": format!("\"{tier}\"") });
    let graph = json!({
        "nodes": [
            { "id": "in", "name": "request", "type": "inputNode" },
            { "id": "table", "name": "tier", "type": "decisionTableNode", "content": {
                "hitPolicy": "first",
                "inputs": [
                    { "id": "qp", "name": "qualifying points", "field": "qualifying_points" },
                    { "id": "volume", "name": "purchase volume", "field": "purchase_volume_minor" },
                    { "id": "count", "name": "purchases", "field": "purchase_count" },
                    { "id": "ltv", "name": "lifetime value", "field": "lifetime_value_minor" }
                ],
                "outputs": [ { "id": "tier", "name": "tier", "field": "tier" } ],
                "rules": [
                    row("", "", "", ">= 1000000", "platinum"),
                    row(">= 1500", "", ">= 5", "", "gold"),
                    row(">= 500", "", "", "", "silver"),
                    row("", ">= 40000", "", "", "silver"),
                    row("", "", "", "", "bronze")
                ]
            } },
            { "id": "out", "name": "response", "type": "outputNode" }
        ],
        "edges": [
            { "id": "e1", "sourceId": "in", "targetId": "table" },
            { "id": "e2", "sourceId": "table", "targetId": "out" }
        ]
    });
    serde_json::from_value(graph).expect("the ladder is a valid JDM graph")
}

fn context(metrics: &Metrics) -> serde_json::Value {
    json!({
        "qualifying_points": metrics.qualifying_points,
        "purchase_volume_minor": metrics.purchase_volume_minor,
        "purchase_count": metrics.purchase_count,
        "lifetime_value_minor": metrics.lifetime_value_minor,
    })
}

fn metrics(qualifying_points: i64, volume: i64, count: i64, lifetime: i64) -> Metrics {
    Metrics {
        qualifying_points,
        purchase_volume_minor: volume,
        purchase_count: count,
        lifetime_value_minor: lifetime,
        ..Metrics::default()
    }
}

/// A member in `tier`; a bronze member has nothing to retain, so both
/// engines answer from qualification alone and must agree.
fn member_in(tier: &str, at: chrono::DateTime<Utc>) -> TierState {
    TierState {
        tier_id: tier.into(),
        since: at,
        retain_failing_since: None,
        tier_override: None,
        warned: false,
    }
}

fn tierd_tier(
    rules: &RuleSet,
    state: &TierState,
    metrics: &Metrics,
    at: chrono::DateTime<Utc>,
) -> String {
    let attributes = BTreeMap::new();
    let subject = Subject {
        metrics,
        attributes: &attributes,
        lifecycle: None,
    };
    decide::evaluate(rules, state, subject, at).state.tier_id
}

fn benches(c: &mut Criterion) {
    let ladder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/thresholds_only.yaml");
    let rules = rules::load(&ladder).expect("threshold ladder");
    let at = Utc
        .with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    let state = member_in("bronze", at);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("current-thread runtime");
    let engine = DecisionEngine::default();
    let decision = engine.create_decision(Arc::new(ladder_graph()));
    let zen_tier = |metrics: &Metrics| {
        let response = runtime
            .block_on(decision.evaluate(context(metrics).into()))
            .expect("zen evaluates the ladder");
        let result = serde_json::to_value(&response.result).expect("zen's result is JSON");
        result["tier"].as_str().unwrap_or_default().to_owned()
    };
    for sample in [
        metrics(0, 0, 0, 0),
        metrics(900, 90_000, 4, 250_000),
        metrics(100, 45_000, 1, 45_000),
        metrics(1_600, 200_000, 6, 300_000),
        metrics(1_600, 200_000, 4, 300_000),
        metrics(0, 0, 0, 1_200_000),
    ] {
        assert_eq!(
            tierd_tier(&rules, &state, &sample, at),
            zen_tier(&sample),
            "{sample:?}"
        );
    }

    let member = metrics(900, 90_000, 4, 250_000);
    let silver = member_in("silver", at);
    assert_eq!(tierd_tier(&rules, &silver, &member, at), zen_tier(&member));
    let mut group = c.benchmark_group("ladder");
    // The usual case: the member stays where they are.
    group.bench_function("tierd_stays", |b| {
        b.iter(|| {
            tierd_tier(
                black_box(&rules),
                black_box(&silver),
                black_box(&member),
                at,
            )
        })
    });
    // A promotion, with its reason in words (the history keeps it).
    group.bench_function("tierd_moves", |b| {
        b.iter(|| tierd_tier(black_box(&rules), black_box(&state), black_box(&member), at))
    });
    group.bench_function("zen", |b| b.iter(|| zen_tier(black_box(&member))));
    group.finish();
}

criterion_group!(peer, benches);
criterion_main!(peer);
