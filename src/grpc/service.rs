//! The `loyalty.v1.Loyalty` handlers: admit the caller, decode the request
//! into a command ([`super::convert`]), call the service, encode the reply.
//! Errors become statuses in one place ([`super::status`]).

use std::{io::Read as _, sync::Arc};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::{
    ServeOptions,
    auth::{Action, Caller, Keyring},
    convert::{self, time_from},
    gate::Rpc,
    pb::{self, loyalty_server::Loyalty},
    status::status_of,
};
use crate::{
    app::{Program, ProgramError},
    rules::{self, Candidate},
};

/// Size of the pieces a backup is streamed in.
const BACKUP_CHUNK_BYTES: usize = 1 << 20;

/// Backup pieces read ahead of a slow client (bounded memory).
const BACKUP_CHUNKS_AHEAD: usize = 4;

/// Largest page of history one call returns.
pub const MAX_PAGE_SIZE: u32 = 1000;
const DEFAULT_PAGE_SIZE: u32 = 100;

/// The `loyalty.v1.Loyalty` service (and, with [`super::reports`], the
/// `Reports` service: clones share the limit of requests in flight).
#[derive(Clone)]
pub struct LoyaltyApi {
    program: Arc<Program>,
    in_flight: Arc<Semaphore>,
    /// Places for open `WatchTierChanges` streams: a stream outlives its
    /// handler (and its in-flight place), so it is counted here for as
    /// long as it is open.
    watch_streams: Arc<Semaphore>,
    keyring: Keyring,
    /// The largest single request, and so the largest event of a batch.
    pub(super) max_event_bytes: usize,
}

/// A request let in: who sent it, and its place among those in flight
/// (given back when this is dropped).
pub(super) struct Admitted {
    pub(super) caller: Caller,
    _place: OwnedSemaphorePermit,
}

impl LoyaltyApi {
    /// The program served.
    pub(super) fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// Serves `program` under `options`.
    pub fn new(program: Arc<Program>, options: &ServeOptions) -> Self {
        Self {
            program,
            in_flight: Arc::new(Semaphore::new(options.limits.max_in_flight)),
            watch_streams: Arc::new(Semaphore::new(options.limits.max_watch_streams)),
            keyring: options.keyring.clone(),
            max_event_bytes: options.limits.max_request_bytes,
        }
    }

    /// Checks the caller's role for `action` (its key was checked by the
    /// gate, before the body was read; the keyring is asked again only
    /// when a request came by another way), then takes a place among the
    /// requests in flight, or refuses at once with `RESOURCE_EXHAUSTED`
    /// (load shedding).
    pub(super) fn admit<T>(
        &self,
        request: &Request<T>,
        action: Action,
    ) -> Result<Admitted, Status> {
        let caller = match request.extensions().get::<Caller>() {
            Some(caller) => caller.clone(),
            None => self.keyring.authenticate(request.metadata().as_ref())?,
        };
        let rpc = request
            .extensions()
            .get::<Rpc>()
            .map_or("this RPC", Rpc::method);
        caller.may(action, rpc)?;
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

/// Decodes `request` into the command `C`, or answers INVALID_ARGUMENT.
fn command<R, C: TryFrom<R, Error = ProgramError>>(request: Request<R>) -> Result<C, Status> {
    C::try_from(request.into_inner()).map_err(status_of)
}

/// The reply to a service result.
fn reply<T, P: From<T>>(result: Result<T, ProgramError>) -> Answer<P> {
    result
        .map(|value| Response::new(value.into()))
        .map_err(status_of)
}

#[tonic::async_trait]
impl Loyalty for LoyaltyApi {
    async fn record_purchase(
        &self,
        request: Request<pb::RecordPurchaseRequest>,
    ) -> Answer<pb::RecordPurchaseResponse> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let purchase = command(request)?;
        reply(
            self.program
                .record_purchase(purchase, &admitted.caller.name)
                .await,
        )
    }

    async fn record_activity(
        &self,
        request: Request<pb::RecordActivityRequest>,
    ) -> Answer<pb::RecordActivityResponse> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let activity = command(request)?;
        reply(
            self.program
                .record_activity(activity, &admitted.caller.name)
                .await,
        )
    }

    async fn record_return(
        &self,
        request: Request<pb::RecordReturnRequest>,
    ) -> Answer<pb::RecordReturnResponse> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let refund = command(request)?;
        reply(
            self.program
                .record_return(refund, &admitted.caller.name)
                .await,
        )
    }

    async fn adjust_points(
        &self,
        request: Request<pb::AdjustPointsRequest>,
    ) -> Answer<pb::AdjustPointsResponse> {
        let admitted = self.admit(&request, Action::Adjust)?;
        let adjustment = command(request)?;
        reply(
            self.program
                .adjust_points(adjustment, &admitted.caller.name)
                .await,
        )
    }

    async fn redeem_points(
        &self,
        request: Request<pb::RedeemPointsRequest>,
    ) -> Answer<pb::RedeemPointsResponse> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let redemption = command(request)?;
        reply(
            self.program
                .redeem_points(redemption, &admitted.caller.name)
                .await,
        )
    }

    async fn get_member(&self, request: Request<pb::GetMemberRequest>) -> Answer<pb::Member> {
        let _admitted = self.admit(&request, Action::Read)?;
        let member_id = convert::member_id(request.into_inner().member_id).map_err(status_of)?;
        reply(self.program.member_with_prediction(&member_id))
    }

    async fn get_tier_history(
        &self,
        request: Request<pb::GetTierHistoryRequest>,
    ) -> Answer<pb::GetTierHistoryResponse> {
        let _admitted = self.admit(&request, Action::Read)?;
        let request = request.into_inner();
        let page = convert::history_page(
            request.page_size,
            &request.page_token,
            MAX_PAGE_SIZE,
            DEFAULT_PAGE_SIZE,
        )
        .map_err(status_of)?;
        let member_id = convert::member_id(request.member_id).map_err(status_of)?;
        reply(self.program.history(&member_id, page.after, page.size))
    }

    async fn evaluate_tiers(
        &self,
        request: Request<pb::EvaluateTiersRequest>,
    ) -> Answer<pb::EvaluateTiersResponse> {
        let action = if request.get_ref().dry_run {
            Action::Read
        } else {
            Action::Sweep
        };
        let _admitted = self.admit(&request, action)?;
        let request = request.into_inner();
        let as_of = time_from("as_of", request.as_of).map_err(status_of)?;
        let members = convert::member_ids(request.member_ids).map_err(status_of)?;
        reply(
            self.program
                .evaluate_tiers(as_of, &members, request.dry_run)
                .await,
        )
    }

    async fn set_tier_override(
        &self,
        request: Request<pb::SetTierOverrideRequest>,
    ) -> Answer<pb::SetTierOverrideResponse> {
        let admitted = self.admit(&request, Action::Adjust)?;
        let placement = command(request)?;
        reply(
            self.program
                .set_override(placement, &admitted.caller.name)
                .await,
        )
    }

    async fn close_member(
        &self,
        request: Request<pb::CloseMemberRequest>,
    ) -> Answer<pb::CloseMemberResponse> {
        let admitted = self.admit(&request, Action::Accounts)?;
        let close = command(request)?;
        reply(
            self.program
                .close_member(close, &admitted.caller.name)
                .await,
        )
    }

    async fn reopen_member(
        &self,
        request: Request<pb::ReopenMemberRequest>,
    ) -> Answer<pb::ReopenMemberResponse> {
        let admitted = self.admit(&request, Action::Accounts)?;
        let reopen = command(request)?;
        reply(
            self.program
                .reopen_member(reopen, &admitted.caller.name)
                .await,
        )
    }

    async fn merge_members(
        &self,
        request: Request<pb::MergeMembersRequest>,
    ) -> Answer<pb::MergeMembersResponse> {
        let admitted = self.admit(&request, Action::Accounts)?;
        let merge = command(request)?;
        reply(
            self.program
                .merge_members(merge, &admitted.caller.name)
                .await,
        )
    }

    async fn erase_member(
        &self,
        request: Request<pb::EraseMemberRequest>,
    ) -> Answer<pb::EraseMemberResponse> {
        let admitted = self.admit(&request, Action::Privacy)?;
        let erase = command(request)?;
        let program = Arc::clone(&self.program);
        let plan = tokio::task::spawn_blocking(move || program.prepare_erasure(erase))
            .await
            .map_err(|err| Status::internal(format!("the erasure stopped: {err}")))?
            .map_err(status_of)?;
        reply(self.program.erase_member(plan, &admitted.caller.name).await)
    }

    async fn export_member(
        &self,
        request: Request<pb::ExportMemberRequest>,
    ) -> Answer<tonic::codegen::BoxStream<pb::ExportChunk>> {
        let admitted = self.admit(&request, Action::Privacy)?;
        let member_id = convert::member_id(request.into_inner().member_id).map_err(status_of)?;
        tracing::info!(member_id = member_id.as_str(), caller = %admitted.caller.name, "export asked for");
        let program = Arc::clone(&self.program);
        let document = tokio::task::spawn_blocking(move || program.export_member(&member_id))
            .await
            .map_err(|err| Status::internal(format!("the export stopped: {err}")))?
            .map_err(status_of)?;
        // Each piece is copied out as it is sent, not all of them at once.
        let pieces = (0..document.len())
            .step_by(BACKUP_CHUNK_BYTES)
            .map(move |start| {
                let end = document.len().min(start + BACKUP_CHUNK_BYTES);
                Ok(pb::ExportChunk {
                    data: document[start..end].to_vec(),
                })
            });
        Ok(Response::new(Box::pin(tokio_stream::iter(pieces))))
    }

    async fn upsert_member(&self, request: Request<pb::UpsertMemberRequest>) -> Answer<pb::Member> {
        let _admitted = self.admit(&request, Action::RecordEvents)?;
        let upsert = command(request)?;
        reply(self.program.upsert_member(upsert).await)
    }

    async fn get_rules(
        &self,
        request: Request<pb::GetRulesRequest>,
    ) -> Answer<pb::GetRulesResponse> {
        let _admitted = self.admit(&request, Action::Read)?;
        Ok(Response::new(convert::rules_status(&self.program)))
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
        // Reading the candidate and every member is long work: off the
        // async workers. Script files are those beside the live rules.
        let program = Arc::clone(&self.program);
        let script_dir = program
            .rules_file()
            .and_then(rules::RulesSource::script_dir);
        let candidate = Candidate::new("candidate", request.rules_text).with_script_dir(script_dir);
        tokio::task::spawn_blocking(move || {
            let candidate = rules::load(&candidate)
                .map_err(|rejected| ProgramError::invalid("rules_text", rejected.to_string()))?;
            let simulation = program.simulate(&candidate, as_of)?;
            let tiers: Vec<String> = candidate.tiers.iter().map(|t| t.id.clone()).collect();
            Ok(convert::simulation_reply(simulation, &tiers))
        })
        .await
        .map_err(|_| Status::internal("the simulation failed"))?
        .map(Response::new)
        .map_err(status_of)
    }

    async fn list_rules_versions(
        &self,
        request: Request<pb::ListRulesVersionsRequest>,
    ) -> Answer<pb::ListRulesVersionsResponse> {
        let _admitted = self.admit(&request, Action::Read)?;
        let page = convert::rules_versions_page(request.get_ref()).map_err(status_of)?;
        let versions = self
            .program
            .rules_versions(page.after, page.size + 1)
            .map_err(status_of)?;
        Ok(Response::new(convert::rules_versions_reply(
            versions, page.size,
        )))
    }

    async fn get_rules_version(
        &self,
        request: Request<pb::GetRulesVersionRequest>,
    ) -> Answer<pb::RulesVersion> {
        let _admitted = self.admit(&request, Action::Read)?;
        let position = request.get_ref().position;
        let version = self.program.rules_version(position).map_err(status_of)?;
        Ok(Response::new(convert::rules_version(position, version)))
    }

    async fn watch_tier_changes(
        &self,
        request: Request<pb::WatchTierChangesRequest>,
    ) -> Answer<tonic::codegen::BoxStream<pb::TierChange>> {
        let _admitted = self.admit(&request, Action::Report)?;
        let place = Arc::clone(&self.watch_streams)
            .try_acquire_owned()
            .map_err(|_| {
                Status::resource_exhausted(
                    "tierd is at its limit of open WatchTierChanges streams \
                     (limits.max_watch_streams); close one or retry with backoff",
                )
            })?;
        let request = request.into_inner();
        let rules = self.program.rules();
        let filter =
            convert::watch_filter(request.kinds, request.tiers, &rules).map_err(status_of)?;
        let entries = self.program.watch_tier_changes(request.from_seq, filter);
        // The place goes with the stream: given back when tonic drops it,
        // as the client hangs up or the server stops.
        let stream = ReceiverStream::new(entries).map(move |entry| {
            let _open = &place;
            entry.map(pb::TierChange::from).map_err(status_of)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn backup(
        &self,
        request: Request<pb::BackupRequest>,
    ) -> Answer<tonic::codegen::BoxStream<pb::BackupChunk>> {
        let _admitted = self.admit(&request, Action::Backup)?;
        let file = self.program.backup().await.map_err(status_of)?;
        let (chunks, stream) = mpsc::channel(BACKUP_CHUNKS_AHEAD);
        tokio::task::spawn_blocking(move || send_chunks(file, &chunks));
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }
}

/// Streams a backup file in pieces, a few ahead of the client; stops when
/// the client goes away.
fn send_chunks(mut file: std::fs::File, chunks: &mpsc::Sender<Result<pb::BackupChunk, Status>>) {
    loop {
        let mut data = Vec::with_capacity(BACKUP_CHUNK_BYTES);
        let read = (&mut file)
            .take(BACKUP_CHUNK_BYTES as u64)
            .read_to_end(&mut data);
        let chunk = match read {
            Ok(0) => return,
            Ok(_) => Ok(pb::BackupChunk { data }),
            Err(err) => {
                tracing::error!(error = %err, "reading the backup failed");
                Err(Status::internal("reading the backup failed"))
            }
        };
        let failed = chunk.is_err();
        if chunks.blocking_send(chunk).is_err() || failed {
            return;
        }
    }
}
