//! `loyalty.v1.Ingest`: many events in one call, each with its own
//! outcome (see `crate::app` for how a batch is applied). A service of its
//! own so that its calls may be larger than any single request; each event
//! is still held to the single-request limit.

use tonic::{Code, Request, Response, Status};

use super::{
    auth::{Action, Caller},
    convert,
    pb::{self, ingest_server::Ingest},
    service::LoyaltyApi,
    status::{event_error, status_of},
};
use crate::app::{MAX_EVENTS, ProgramError, command::Event};

#[tonic::async_trait]
impl Ingest for LoyaltyApi {
    async fn record_events(
        &self,
        request: Request<pb::RecordEventsRequest>,
    ) -> Result<Response<pb::RecordEventsResponse>, Status> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let events = request.into_inner().events;
        if events.len() > MAX_EVENTS {
            return Err(status_of(ProgramError::invalid(
                "events",
                format!("at most {MAX_EVENTS} events per call, got {}", events.len()),
            )));
        }
        let mut outcomes: Vec<Option<pb::EventOutcome>> = vec![None; events.len()];
        let (mut slots, mut commands) = (Vec::new(), Vec::new());
        for (slot, event) in events.into_iter().enumerate() {
            match self.admit_event(event, &admitted.caller) {
                Ok(command) => {
                    slots.push((slot, command.kind()));
                    commands.push(command);
                }
                Err(refused) => outcomes[slot] = Some(convert::error_outcome(refused)),
            }
        }
        let results = self
            .program()
            .record_events(commands, &admitted.caller.name)
            .await;
        for ((slot, kind), result) in slots.into_iter().zip(results) {
            outcomes[slot] = Some(convert::event_outcome(kind, result));
        }
        Ok(Response::new(pb::RecordEventsResponse {
            outcomes: outcomes.into_iter().flatten().collect(),
        }))
    }
}

impl LoyaltyApi {
    /// One event of a batch as a command, or why it is refused: over the
    /// single-request size, malformed, or an adjustment from a key that
    /// may not adjust.
    fn admit_event(&self, event: pb::Event, caller: &Caller) -> Result<Event, pb::EventError> {
        let size = prost::Message::encoded_len(&event);
        if size > self.max_event_bytes {
            return Err(pb::EventError {
                code: Code::OutOfRange as i32,
                message: format!(
                    "event: {size} bytes, over the limit of {} for one request",
                    self.max_event_bytes
                ),
                field: "event".into(),
            });
        }
        match convert::event(event).map_err(event_error)? {
            Event::Adjustment(_) if !caller.role.allows(Action::Adjust) => Err(pb::EventError {
                code: Code::PermissionDenied as i32,
                message: format!("adjustment: key {:?} may not adjust points", caller.name),
                field: "adjustment".into(),
            }),
            command => Ok(command),
        }
    }
}
