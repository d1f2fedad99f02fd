//! The gRPC face of tierd: thin handlers over [`Program`].
//!
//! Each handler decodes the request into a domain command
//! ([`convert`]), calls the program, and encodes the reply. Errors become a
//! `tonic::Status` in exactly one place ([`status_of`]), which never leaks
//! internals: storage failures are logged and answered as `INTERNAL`.
//!
//! [`serve`] runs the `loyalty.v1.Loyalty` service together with the
//! standard health service and server reflection, until `shutdown`
//! completes; in-flight requests finish before it returns.

pub mod auth;
pub mod convert;

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::{
    net::TcpListener,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tonic::{
    Request, Response, Status,
    transport::{Certificate, Identity, ServerTlsConfig, server::TcpIncoming},
};

use crate::program::{
    ActivityEvent, Adjustment, Program, ProgramError, Purchase, Redemption, Return,
};
use auth::{Action, Caller, Keyring};
use convert::{Reply, time_from};

/// The generated protobuf types, client and server.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("loyalty.v1");

    /// The encoded descriptors of `loyalty.proto`, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("loyalty_descriptor");
}

use pb::loyalty_server::{Loyalty, LoyaltyServer};

/// The one mapping from domain errors to gRPC statuses.
pub fn status_of(err: ProgramError) -> Status {
    match err {
        ProgramError::InvalidArgument { .. } => Status::invalid_argument(err.to_string()),
        ProgramError::NotFound(message) => Status::not_found(message),
        ProgramError::AlreadyExists(message) => Status::already_exists(message),
        ProgramError::FailedPrecondition(message) => Status::failed_precondition(message),
        ProgramError::Store(inner) => {
            tracing::error!(error = %inner, "storage failure");
            Status::internal("storage failure; the request was not recorded")
        }
    }
}

/// Size of the pieces a backup is streamed in.
const BACKUP_CHUNK_BYTES: usize = 1 << 20;

/// Largest page of history one call returns.
pub const MAX_PAGE_SIZE: u32 = 1000;
const DEFAULT_PAGE_SIZE: u32 = 100;

/// Limits that protect the service from more work than it can do.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Loyalty requests handled at once, across all connections (1024). One
    /// more is refused at once with `RESOURCE_EXHAUSTED` (load shedding)
    /// rather than queued without bound; clients retry with backoff.
    /// Health and reflection are never shed.
    pub max_in_flight: usize,
    /// Largest request message, in bytes (64 KiB; the largest valid request
    /// is far smaller). Larger ones are refused unread with `OUT_OF_RANGE`
    /// (tonic 0.14.5's code for it).
    pub max_request_bytes: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            max_request_bytes: 64 * 1024,
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

/// The `loyalty.v1.Loyalty` service.
pub struct LoyaltyApi {
    program: Arc<Program>,
    in_flight: Arc<Semaphore>,
    keyring: Keyring,
}

/// A request let in: who sent it, and its place among those in flight
/// (given back when this is dropped).
struct Admitted {
    caller: Caller,
    _place: OwnedSemaphorePermit,
}

impl LoyaltyApi {
    /// Serves `program` under `options`.
    pub fn new(program: Arc<Program>, options: &ServeOptions) -> Self {
        Self {
            program,
            in_flight: Arc::new(Semaphore::new(options.limits.max_in_flight)),
            keyring: options.keyring.clone(),
        }
    }

    /// Checks the caller's key and role for `action`, then takes a place
    /// among the requests in flight, or refuses at once with
    /// `RESOURCE_EXHAUSTED` (load shedding).
    fn admit<T>(&self, request: &Request<T>, action: Action) -> Result<Admitted, Status> {
        let caller = self.keyring.authorize(request.metadata(), action)?;
        let place = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| {
                Status::resource_exhausted(
                    "tierd is at its limit of requests in flight; retry with backoff",
                )
            })?;
        Ok(Admitted {
            caller,
            _place: place,
        })
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Loyalty for LoyaltyApi {
    async fn record_purchase(
        &self,
        request: Request<pb::RecordPurchaseRequest>,
    ) -> Answer<pb::RecordPurchaseResponse> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let mut command: Purchase = request.into_inner().try_into().map_err(status_of)?;
        command.actor = admitted.caller.name.clone();
        let reply = Reply::from(
            self.program
                .record_purchase(command)
                .await
                .map_err(status_of)?,
        );
        Ok(Response::new(pb::RecordPurchaseResponse {
            member: reply.member,
            points_earned: reply.points,
            tier_change: reply.tier_change,
            duplicate: reply.duplicate,
        }))
    }

    async fn record_activity(
        &self,
        request: Request<pb::RecordActivityRequest>,
    ) -> Answer<pb::RecordActivityResponse> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let mut command: ActivityEvent = request.into_inner().try_into().map_err(status_of)?;
        command.actor = admitted.caller.name.clone();
        let reply = Reply::from(
            self.program
                .record_activity(command)
                .await
                .map_err(status_of)?,
        );
        Ok(Response::new(pb::RecordActivityResponse {
            member: reply.member,
            points_earned: reply.points,
            capped: reply.capped,
            duplicate: reply.duplicate,
            tier_change: reply.tier_change,
        }))
    }

    async fn record_return(
        &self,
        request: Request<pb::RecordReturnRequest>,
    ) -> Answer<pb::RecordReturnResponse> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let mut command: Return = request.into_inner().try_into().map_err(status_of)?;
        command.actor = admitted.caller.name.clone();
        let reply = Reply::from(
            self.program
                .record_return(command)
                .await
                .map_err(status_of)?,
        );
        Ok(Response::new(pb::RecordReturnResponse {
            member: reply.member,
            points_reversed: reply.points,
            duplicate: reply.duplicate,
            tier_change: reply.tier_change,
        }))
    }

    async fn adjust_points(
        &self,
        request: Request<pb::AdjustPointsRequest>,
    ) -> Answer<pb::AdjustPointsResponse> {
        let admitted = self.admit(&request, Action::Adjust)?;
        let mut command = Adjustment::from(request.into_inner());
        command.actor = admitted.caller.name.clone();
        let reply = Reply::from(
            self.program
                .adjust_points(command)
                .await
                .map_err(status_of)?,
        );
        Ok(Response::new(pb::AdjustPointsResponse {
            member: reply.member,
            duplicate: reply.duplicate,
            tier_change: reply.tier_change,
        }))
    }

    async fn redeem_points(
        &self,
        request: Request<pb::RedeemPointsRequest>,
    ) -> Answer<pb::RedeemPointsResponse> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let mut command = Redemption::from(request.into_inner());
        command.actor = admitted.caller.name.clone();
        let reply = Reply::from(
            self.program
                .redeem_points(command)
                .await
                .map_err(status_of)?,
        );
        Ok(Response::new(pb::RedeemPointsResponse {
            member: reply.member,
            duplicate: reply.duplicate,
        }))
    }

    async fn get_member(&self, request: Request<pb::GetMemberRequest>) -> Answer<pb::Member> {
        let _admitted = self.admit(&request, Action::Read)?;
        let member = self
            .program
            .member(&request.into_inner().member_id)
            .map_err(status_of)?;
        Ok(Response::new(member.into()))
    }

    async fn get_tier_history(
        &self,
        request: Request<pb::GetTierHistoryRequest>,
    ) -> Answer<pb::GetTierHistoryResponse> {
        let _admitted = self.admit(&request, Action::Read)?;
        let request = request.into_inner();
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n <= MAX_PAGE_SIZE => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "page_size: {n} is above {MAX_PAGE_SIZE}"
                )));
            }
        };
        let after = match request.page_token.as_str() {
            "" => 0,
            token => token.parse::<u64>().map_err(|_| {
                Status::invalid_argument("page_token: not a token from a previous response")
            })?,
        };
        let (entries, more) = self
            .program
            .history(&request.member_id, after, page_size as usize)
            .map_err(status_of)?;
        let next_page_token = match entries.last() {
            Some(last) if more => last.seq.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(pb::GetTierHistoryResponse {
            entries: entries.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn evaluate_tiers(
        &self,
        request: Request<pb::EvaluateTiersRequest>,
    ) -> Answer<pb::EvaluateTiersResponse> {
        let writes = if request.get_ref().dry_run {
            Action::Read
        } else {
            Action::Sweep
        };
        let _admitted = self.admit(&request, writes)?;
        let request = request.into_inner();
        let as_of = time_from("as_of", request.as_of).map_err(status_of)?;
        let report = self
            .program
            .evaluate_tiers(as_of, &request.member_ids, request.dry_run)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::EvaluateTiersResponse {
            evaluated: report.evaluated,
            promoted: report.promoted,
            demoted: report.demoted,
            unchanged: report.unchanged,
            points_expired: report.points_expired,
            changes: report.changes.into_iter().map(Into::into).collect(),
            changes_truncated: report.changes_truncated,
        }))
    }

    async fn set_tier_override(
        &self,
        request: Request<pb::SetTierOverrideRequest>,
    ) -> Answer<pb::SetTierOverrideResponse> {
        let _admitted = self.admit(&request, Action::Adjust)?;
        let command = request.into_inner().try_into().map_err(status_of)?;
        let recorded = self
            .program
            .set_override(command)
            .await
            .map_err(status_of)?;
        let manual = recorded
            .outcome
            .tier_changes
            .first()
            .cloned()
            .map(Into::into);
        Ok(Response::new(pb::SetTierOverrideResponse {
            member: Some(recorded.outcome.member.into()),
            tier_change: manual,
        }))
    }

    async fn get_rules(
        &self,
        request: Request<pb::GetRulesRequest>,
    ) -> Answer<pb::GetRulesResponse> {
        let _admitted = self.admit(&request, Action::Read)?;
        let (active, scheduled, last_failure) = self.program.rules_status();
        Ok(Response::new(pb::GetRulesResponse {
            active: Some(active.into()),
            scheduled: scheduled.map(Into::into),
            campaigns: self
                .program
                .rules()
                .campaigns
                .iter()
                .map(Into::into)
                .collect(),
            last_failure: last_failure.map(Into::into),
            script_failures: crate::script::failures(),
        }))
    }

    async fn reload_rules(
        &self,
        request: Request<pb::ReloadRulesRequest>,
    ) -> Answer<pb::ReloadRulesResponse> {
        let _admitted = self.admit(&request, Action::ChangeRules)?;
        let (active, changed) = self.program.reload_rules().await.map_err(status_of)?;
        let (_, scheduled, _) = self.program.rules_status();
        Ok(Response::new(pb::ReloadRulesResponse {
            active: Some(active.into()),
            changed,
            scheduled: scheduled.map(Into::into),
        }))
    }

    async fn simulate_rules(
        &self,
        request: Request<pb::SimulateRulesRequest>,
    ) -> Answer<pb::SimulateRulesResponse> {
        let _admitted = self.admit(&request, Action::Simulate)?;
        let request = request.into_inner();
        let as_of = time_from("as_of", request.as_of).map_err(status_of)?;
        let candidate = crate::rules::parse(std::path::Path::new("candidate"), &request.rules_text)
            .map_err(|d| Status::invalid_argument(format!("rules_text: {d}")))?;
        let tiers: Vec<String> = candidate.tiers.iter().map(|t| t.id.clone()).collect();
        // Reading every member is long work: keep it off the async workers.
        let program = Arc::clone(&self.program);
        let simulation = tokio::task::spawn_blocking(move || program.simulate(&candidate, as_of))
            .await
            .map_err(|_| Status::internal("the simulation failed"))?
            .map_err(status_of)?;
        Ok(Response::new(convert::simulation_reply(simulation, &tiers)))
    }

    async fn list_rules_versions(
        &self,
        request: Request<pb::ListRulesVersionsRequest>,
    ) -> Answer<pb::ListRulesVersionsResponse> {
        let _admitted = self.admit(&request, Action::Read)?;
        let versions = self.program.rules_versions().map_err(status_of)?;
        Ok(Response::new(pb::ListRulesVersionsResponse {
            versions: versions.into_iter().map(Into::into).collect(),
        }))
    }

    async fn backup(
        &self,
        request: Request<pb::BackupRequest>,
    ) -> Answer<tonic::codegen::BoxStream<pb::BackupChunk>> {
        let _admitted = self.admit(&request, Action::Backup)?;
        let snapshot = self.program.backup().await.map_err(status_of)?;
        let chunks: Vec<_> = snapshot
            .chunks(BACKUP_CHUNK_BYTES)
            .map(|data| {
                Ok(pb::BackupChunk {
                    data: data.to_vec(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn upsert_member(&self, request: Request<pb::UpsertMemberRequest>) -> Answer<pb::Member> {
        let _admitted = self.admit(&request, Action::RecordEvents)?;
        let command = request.into_inner().try_into().map_err(status_of)?;
        let member = self
            .program
            .upsert_member(command)
            .await
            .map_err(status_of)?;
        Ok(Response::new(member.into()))
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
    health.set_serving::<LoyaltyServer<LoyaltyApi>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    tracing::info!(%address, rules_version = %program.rules().version, "serving loyalty.v1.Loyalty");
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        health.set_not_serving::<LoyaltyServer<LoyaltyApi>>().await;
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &options.tls {
        builder = builder.tls_config(tls.server_config())?;
    }
    builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            LoyaltyServer::new(LoyaltyApi::new(program, &options))
                .max_decoding_message_size(options.limits.max_request_bytes),
        )
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}
