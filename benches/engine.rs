//! The decision engine against a hand-written baseline.
//!
//! `engine/evaluate_example` decides a member's tier under
//! `rules/example.yaml` (thresholds, `any`/`all`, a rhai script, reasons in
//! words); `engine/evaluate_thresholds_only` decides the same four-tier
//! ladder written as plain thresholds (`benches/thresholds_only.yaml`, no
//! script; `peers/zen` times the same ladder in GoRules' zen-engine);
//! `baseline/hand_written_thresholds` is that ladder as four `if`s with no
//! reasons, the fastest a decision can be. `earning/*` prices a purchase
//! with and without the bonus script.

use std::{collections::BTreeMap, hint::black_box, path::Path};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

use tierd::{
    domain::{
        decide::{self, Metrics, Subject, TierState},
        earn::{self, PurchaseFacts},
    },
    rules,
};

fn hand_written(metrics: &Metrics) -> usize {
    if metrics.lifetime_value_minor >= 1_000_000 {
        3
    } else if metrics.qualifying_points >= 1_500 && metrics.purchase_count >= 5 {
        2
    } else if metrics.qualifying_points >= 500 || metrics.purchase_volume_minor >= 40_000 {
        1
    } else {
        0
    }
}

fn benches(c: &mut Criterion) {
    let rules = rules::load(Path::new("rules/example.yaml")).expect("example rules");
    let at = Utc
        .with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    let state = TierState {
        tier_id: "silver".into(),
        since: at,
        retain_failing_since: None,
        tier_override: None,
        warned: false,
    };
    let metrics = Metrics {
        qualifying_points: 900,
        purchase_volume_minor: 90_000,
        purchase_count: 4,
        lifetime_value_minor: 250_000,
        points_balance: 700,
        activity_count: 2,
    };
    let attributes = BTreeMap::from([("region".to_owned(), "north".to_owned())]);
    let subject = Subject {
        metrics: &metrics,
        attributes: &attributes,
        lifecycle: None,
    };
    c.bench_function("engine/evaluate_example", |b| {
        b.iter(|| decide::evaluate(black_box(&rules), black_box(&state), subject, at))
    });
    let thresholds =
        rules::load(Path::new("benches/thresholds_only.yaml")).expect("threshold ladder");
    c.bench_function("engine/evaluate_thresholds_only", |b| {
        b.iter(|| decide::evaluate(black_box(&thresholds), black_box(&state), subject, at))
    });
    c.bench_function("baseline/hand_written_thresholds", |b| {
        b.iter(|| hand_written(black_box(&metrics)))
    });
    let tags = vec!["double-points".to_owned()];
    let bought = earn::Purchase {
        transaction_id: "p",
        amount_minor: 25_000,
        channel: "pos",
        store_id: "s1",
        tags: &tags,
        occurred_at: at,
        lines: &[],
    };
    let purchase = PurchaseFacts {
        purchase: &bought,
        tier_id: "silver",
        rate_tier: Some("silver"),
    };
    c.bench_function("earning/points_with_bonus_script", |b| {
        b.iter(|| earn::points_for_purchase(black_box(&rules), purchase, subject))
    });
    let mut plain = rules.clone();
    plain.earning.bonus = None;
    c.bench_function("earning/points_without_script", |b| {
        b.iter(|| earn::points_for_purchase(black_box(&plain), purchase, subject))
    });
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
