//! Metrics for the people who run a fleet: Prometheus text format on a
//! listen address of their own (`--metrics-listen`, never the gRPC port),
//! served by `metrics-exporter-prometheus`.
//!
//! Every metric's name is here, with what it means ([`describe`]); the
//! layers record them where things happen, through the `metrics` macros.
//! Without `--metrics-listen` no recorder is installed and each recording
//! is a check that goes nowhere.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

/// Requests answered, by `rpc` (`Service/Method`) and gRPC `status` name.
pub const REQUESTS: &str = "tierd_requests_total";
/// Time to answer a request, by `rpc`.
pub const REQUEST_SECONDS: &str = "tierd_request_duration_seconds";
/// Write jobs per round of sled's writer thread (group commit).
pub const ROUND_JOBS: &str = "tierd_write_round_jobs";
/// Time a round spends making its commits durable (sled flush + fsync).
pub const FSYNC_SECONDS: &str = "tierd_fsync_duration_seconds";
/// Bytes of keys and values handed to sled by write rounds (what a write
/// costs the store before sled's own copying).
pub const WRITTEN_BYTES: &str = "tierd_store_written_bytes_total";
/// Keys set or removed by write rounds.
pub const WRITTEN_KEYS: &str = "tierd_store_written_keys_total";
/// Connections closed as soon as accepted: over the total or per-peer
/// limit (`limits.max_connections`, `limits.max_connections_per_peer`).
pub const CONNECTIONS_REFUSED: &str = "tierd_connections_refused_total";
/// Write transactions run again after a conflict on a database, by SQLSTATE
/// `code`.
pub const STORE_RERUNS: &str = "tierd_store_reruns_total";
/// 1 while the store answers, 0 while it cannot be reached.
pub const STORE_REACHABLE: &str = "tierd_store_reachable";
/// Bytes the store holds on disk (sled directory, or database size).
pub const STORE_BYTES: &str = "tierd_store_size_bytes";
/// The process's resident memory.
pub const RESIDENT_BYTES: &str = "tierd_resident_memory_bytes";
/// 1 for the rules version in force (label `version`), 0 for those before.
pub const RULES_ACTIVE: &str = "tierd_rules_active";
/// Rules reloads refused (an invalid file; the running rules stayed).
pub const RULES_RELOAD_FAILURES: &str = "tierd_rules_reload_failures_total";
/// `WatchTierChanges` streams open now.
pub const WATCH_STREAMS: &str = "tierd_watch_streams";
/// How far behind a stream's entries are as they are sent: now minus the
/// time of the change.
pub const WATCH_LAG_SECONDS: &str = "tierd_watch_lag_seconds";
/// Tier changes an endpoint accepted, by `endpoint`.
pub const WEBHOOK_DELIVERED: &str = "tierd_webhook_delivered_total";
/// How far behind an endpoint is: now minus the time of the last tier
/// change it accepted, by `endpoint`.
pub const WEBHOOK_LAG_SECONDS: &str = "tierd_webhook_lag_seconds";

/// Latency buckets, in seconds: a loopback read to a slow batch.
const SECONDS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Round sizes, up to the writer's largest round.
const JOBS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The metrics endpoint could not be started.
#[derive(Debug, thiserror::Error)]
#[error("serving metrics on {address}: {source}")]
pub struct TelemetryError {
    address: SocketAddr,
    source: BuildError,
}

/// Serves `/metrics` on `address` from now on, on the current tokio
/// runtime. Once per process.
///
/// # Errors
/// When the address cannot be bound or a recorder is installed already.
pub fn serve(address: SocketAddr) -> Result<(), TelemetryError> {
    let failed = |source| TelemetryError { address, source };
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
        .and_then(|builder| builder.set_buckets_for_metric(Matcher::Full(ROUND_JOBS.into()), JOBS))
        .and_then(PrometheusBuilder::install)
        .map_err(failed)?;
    describe();
    tracing::info!(%address, "serving metrics at /metrics");
    Ok(())
}

/// The help text Prometheus shows for each metric.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(REQUESTS, "Requests answered, by rpc and gRPC status");
    describe_histogram!(REQUEST_SECONDS, Unit::Seconds, "Time to answer, by rpc");
    describe_histogram!(ROUND_JOBS, "Write jobs per group-commit round (sled)");
    describe_histogram!(
        FSYNC_SECONDS,
        Unit::Seconds,
        "Flush and fsync per round (sled)"
    );
    describe_counter!(
        WRITTEN_BYTES,
        Unit::Bytes,
        "Bytes of keys and values handed to sled by write rounds"
    );
    describe_counter!(WRITTEN_KEYS, "Keys set or removed by write rounds (sled)");
    describe_counter!(
        STORE_RERUNS,
        "Transactions rerun after a conflict, by SQLSTATE"
    );
    describe_gauge!(STORE_REACHABLE, "1 while the store answers");
    describe_gauge!(STORE_BYTES, Unit::Bytes, "Bytes the store holds");
    describe_gauge!(
        RESIDENT_BYTES,
        Unit::Bytes,
        "Resident memory of the process"
    );
    describe_gauge!(RULES_ACTIVE, "1 for the rules version in force");
    describe_counter!(RULES_RELOAD_FAILURES, "Rules reloads refused");
    describe_gauge!(WATCH_STREAMS, "WatchTierChanges streams open");
    describe_histogram!(
        WATCH_LAG_SECONDS,
        Unit::Seconds,
        "Now minus the time of each change a stream sends"
    );
    describe_counter!(WEBHOOK_DELIVERED, "Tier changes an endpoint accepted");
    describe_gauge!(
        WEBHOOK_LAG_SECONDS,
        Unit::Seconds,
        "Now minus the time of the last change an endpoint accepted"
    );
}

/// The process's resident memory, from `/proc/self/status` (Linux); `None`
/// elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
