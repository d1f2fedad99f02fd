//! The gRPC face of tierd: the `loyalty.v1.Loyalty` service over
//! [`Program`], with the standard health service and server reflection.
//!
//! - [`service`]: thin handlers (admit, decode, call, encode).
//! - [`convert`]: every proto <-> service conversion, in one place.
//! - [`status`]: the one mapping from errors to `tonic::Status`.
//! - [`auth`]: API keys and roles.
//! - [`gate`]: the key and the size of each call, checked before its body
//!   is read.
//! - [`connections`]: how many connections, from whom, and how long a new
//!   one may stay silent.
//!
//! [`serve`] runs until `shutdown` completes; in-flight requests finish
//! before it returns.

pub mod auth;
pub mod connections;
pub mod convert;
pub mod gate;
pub mod ingest;
mod measure;
pub mod reports;
pub mod service;
pub mod status;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tonic::transport::{Certificate, Identity, ServerTlsConfig, server::TcpIncoming};

use crate::app::Program;
use auth::Keyring;
use service::LoyaltyApi;

/// The generated protobuf types, client and server.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("loyalty.v1");

    /// The encoded descriptors of `loyalty.proto`, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("loyalty_descriptor");
}

use gate::{GateLayer, RequestCaps};
use ingest::wire::ingest_server::IngestServer;
use pb::{loyalty_server::LoyaltyServer, reports_server::ReportsServer};

/// Limits that protect the service from more work than it can do: the
/// config file's `limits:` section, each key optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeLimits {
    /// Loyalty requests handled at once, across all connections (1024). One
    /// more is refused at once with `RESOURCE_EXHAUSTED` (load shedding)
    /// rather than queued without bound; clients retry with backoff.
    /// Health and reflection are never shed.
    pub max_in_flight: usize,
    /// Largest request message, in bytes (64 KiB; the largest valid request
    /// is far smaller). Larger ones are refused unread with `OUT_OF_RANGE`
    /// (tonic 0.14.5's code for it); so is each event of a batch.
    /// `SimulateRules` may carry a rules file at its own limit
    /// ([`crate::rules::MAX_FILE_BYTES`]).
    pub max_request_bytes: usize,
    /// Largest `RecordEvents` call, in bytes (8 MiB), refused the same way;
    /// it holds at most [`crate::app::MAX_EVENTS`] events, counted before
    /// any is decoded.
    pub max_batch_bytes: usize,
    /// Connections open at once, in all (4,096; keep it below the
    /// process's descriptor limit, `ulimit -n`). One more is closed as
    /// soon as it is accepted.
    pub max_connections: usize,
    /// Connections open at once from one peer IP address (256): a till
    /// needs one, a load balancer a few dozen.
    pub max_connections_per_peer: usize,
    /// How long a new connection may stay silent before it is closed (10
    /// s). Its first bytes are a TLS hello or the HTTP/2 preface, which any
    /// client sends at once.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// How often an HTTP/2 keepalive ping goes to a quiet connection (30
    /// s); one unanswered for 20 s closes it.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// HTTP/2 streams (calls) open at once on one connection (256).
    pub max_streams_per_connection: u32,
    /// `WatchTierChanges` streams open at once, across all connections
    /// (16: a programme has a handful of consumers, a CRM, an e-mail
    /// service, a warehouse). One more is refused with
    /// `RESOURCE_EXHAUSTED`. Each holds a bounded buffer whatever its
    /// reader does, but each reads the history on its own, so streams
    /// catching up share the cores with the writer: at 16 a purchase's p99
    /// stays within 2x of its p99 with none open (docs/reliability.md).
    pub max_watch_streams: usize,
}

/// How long a keepalive ping may go unanswered before its connection is
/// closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            max_request_bytes: 64 * 1024,
            max_batch_bytes: 8 * 1024 * 1024,
            max_connections: 4096,
            max_connections_per_peer: 256,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            max_streams_per_connection: 256,
            max_watch_streams: 16,
        }
    }
}

/// How the service is exposed: its limits, who may call it, and TLS.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Load and size limits.
    pub limits: ServeLimits,
    /// API keys; an empty keyring lets everyone in as admin.
    pub keyring: Keyring,
    /// TLS (rustls); `None` serves plaintext.
    pub tls: Option<TlsPem>,
}

/// The PEM material TLS needs.
#[derive(Clone)]
pub struct TlsPem {
    /// The server's certificate chain.
    pub cert: Vec<u8>,
    /// The server's private key.
    pub key: Vec<u8>,
    /// When set, clients must present a certificate signed by this CA
    /// (mutual TLS).
    pub client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsPem")
            .field("mutual", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsPem {
    fn server_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(&self.cert, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection: {0}")]
    /// The reflection service could not be built.
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    /// The transport failed.
    Transport(#[from] tonic::transport::Error),
    /// The running rules could not be recorded.
    #[error("recording the rules version: {0}")]
    Rules(String),
    #[error("listener: {0}")]
    /// The listener failed.
    Io(#[from] std::io::Error),
}

/// What `serve` logs, with an `address=` field, once it accepts
/// connections: tools that start `tierd serve` wait for it.
pub const SERVING: &str = "serving loyalty.v1.Loyalty";

/// The address a `tierd serve` log line announces, if it is the [`SERVING`]
/// line.
pub fn address_in_log(line: &str) -> Option<&str> {
    let rest = line.split(SERVING).nth(1)?.trim_start();
    rest.strip_prefix("address=")?.split_whitespace().next()
}

/// The connections `listener` accepts, with Nagle's algorithm off: an
/// answer is a few small HTTP/2 frames, and with Nagle on each waited for
/// the client's delayed ACK (40 ms on Linux) before going out.
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Sets every service SERVING or NOT_SERVING.
async fn set_health(health: &tonic_health::server::HealthReporter, serving: bool) {
    if serving {
        health.set_serving::<LoyaltyServer<LoyaltyApi>>().await;
        health.set_serving::<ReportsServer<LoyaltyApi>>().await;
        health.set_serving::<IngestServer<LoyaltyApi>>().await;
    } else {
        health.set_not_serving::<LoyaltyServer<LoyaltyApi>>().await;
        health.set_not_serving::<ReportsServer<LoyaltyApi>>().await;
        health.set_not_serving::<IngestServer<LoyaltyApi>>().await;
    }
}

/// Readiness follows the store: NOT_SERVING while the database cannot be
/// reached (a load balancer sends requests to the other nodes), SERVING
/// again when it answers, without a restart.
async fn follow_the_store(
    health: tonic_health::server::HealthReporter,
    mut reachable: tokio::sync::watch::Receiver<bool>,
) {
    metrics::gauge!(crate::telemetry::STORE_REACHABLE).set(1.0);
    while reachable.changed().await.is_ok() {
        let serving = *reachable.borrow_and_update();
        tracing::info!(serving, "readiness follows the store");
        metrics::gauge!(crate::telemetry::STORE_REACHABLE).set(f64::from(u8::from(serving)));
        set_health(&health, serving).await;
    }
}

/// Serves the loyalty service, health and reflection on `listener` until
/// `shutdown` completes, under `options`. Client deadlines (`grpc-timeout`)
/// are honoured: a request past its deadline is abandoned; a write it had
/// already committed stays, and the client's retry gets it as a duplicate.
/// Health turns NOT_SERVING as shutdown begins, then in-flight requests are
/// drained before this returns.
///
/// # Errors
/// When reflection cannot be built or the transport fails.
pub async fn serve(
    listener: TcpListener,
    program: Arc<Program>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let address: SocketAddr = listener.local_addr()?;
    program
        .go_live()
        .await
        .map_err(|err| ServeError::Rules(err.to_string()))?;
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, true).await;
    let readiness = tokio::spawn(follow_the_store(health.clone(), program.store_reachable()));
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    tracing::info!(%address, rules_version = %program.rules().version, "{SERVING}");
    let streams = Arc::clone(&program);
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        streams.stop_streaming();
        readiness.abort();
        set_health(&health, false).await;
    };
    let api = LoyaltyApi::new(program, &options);
    let caps = RequestCaps::new(&options.limits);
    let limits = options.limits;
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .max_concurrent_streams(limits.max_streams_per_connection);
    if let Some(tls) = &options.tls {
        builder = builder.tls_config(tls.server_config())?;
    }
    builder
        .layer(tower::layer::layer_fn(measure::layer))
        .layer(GateLayer::new(options.keyring.clone(), caps))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(LoyaltyServer::new(api.clone()).max_decoding_message_size(caps.largest()))
        .add_service(IngestServer::new(api.clone()).max_decoding_message_size(caps.largest()))
        .add_service(ReportsServer::new(api).max_decoding_message_size(caps.largest()))
        .serve_with_incoming_shutdown(connections::accept(listener, limits), shutdown)
        .await?;
    Ok(())
}
