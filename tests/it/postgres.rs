//! The suites about writes, idempotency, history, bad input, crashes,
//! reports and simulation again, each test on a database of its own on a
//! throwaway PostgreSQL cluster (`harness::on_postgres`, `pg`): the same
//! files, not copies of them.

#[path = "accounts.rs"]
mod accounts;
#[path = "bad_input.rs"]
mod bad_input;
#[path = "basket.rs"]
mod basket;
#[path = "batch.rs"]
mod batch;
#[path = "crash.rs"]
mod crash;
#[path = "erase.rs"]
mod erase;
#[path = "export.rs"]
mod export;
#[path = "ingestion.rs"]
mod ingestion;
#[path = "limits.rs"]
mod limits;
#[path = "merge.rs"]
mod merge;
#[path = "metrics.rs"]
mod metrics;
#[path = "overrides.rs"]
mod overrides;
#[path = "reports.rs"]
mod reports;
#[path = "restart.rs"]
mod restart;
#[path = "rewards.rs"]
mod rewards;
#[path = "simulate.rs"]
mod simulate;
#[path = "tiers.rs"]
mod tiers;
#[path = "watch.rs"]
mod watch;
