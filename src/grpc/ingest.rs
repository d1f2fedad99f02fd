//! `loyalty.v1.Ingest`: many events in one call, each with its own
//! outcome (see `crate::app` for how a batch is applied). A service of its
//! own so that its calls may be larger than any single request; each event
//! is still held to the single-request limit.
//!
//! A batch is the one request whose decoded form can outgrow its bytes
//! many times over (an empty event is 2 bytes on the wire and hundreds in
//! memory), so it is not decoded the usual way: [`BatchCodec`] counts the
//! events in the raw bytes and refuses a call with too many before
//! anything is decoded, and keeps each event as its bytes (slices of the
//! one received buffer); the handler then decodes, checks and converts
//! them one at a time. What a batch holds in memory is its own bytes and
//! the validated commands, whatever the caller sent.

use bytes::{Buf, Bytes};
use prost::Message as _;
use tonic::{
    Code, Request, Response, Status,
    codec::{Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstEncoder;

use super::{
    auth::{Action, Caller},
    convert, pb,
    service::LoyaltyApi,
    status::{event_error, status_of},
};
use crate::app::{MAX_EVENTS, ProgramError, command::Event};

/// The server generated for [`Batch`] and [`BatchCodec`] (see `build.rs`).
#[allow(clippy::all, missing_docs)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/loyalty.v1.Ingest.rs"));
}

/// `RecordEventsRequest` as it arrives: its field 1 (`events`) with each
/// event still encoded. Wire-compatible with the proto's message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Batch {
    /// The events, each an encoded `loyalty.v1.Event`.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub events: Vec<Bytes>,
}

/// The codec of `RecordEvents`: answers encoded by prost, calls decoded
/// by [`BatchDecoder`].
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchCodec;

impl Codec for BatchCodec {
    type Encode = pb::RecordEventsResponse;
    type Decode = Batch;
    type Encoder = ProstEncoder<pb::RecordEventsResponse>;
    type Decoder = BatchDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(tonic::codec::BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        BatchDecoder
    }
}

/// Counts a batch's events in its bytes, refuses more than
/// [`MAX_EVENTS`], then splits it into [`Batch`].
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchDecoder;

impl Decoder for BatchDecoder {
    type Item = Batch;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Batch>, Status> {
        let events = count_events(buf.chunk())?;
        if events > MAX_EVENTS {
            return Err(status_of(ProgramError::invalid(
                "events",
                format!("at most {MAX_EVENTS} events per call, got {events}"),
            )));
        }
        Batch::decode(buf)
            .map(Some)
            .map_err(|err| Status::invalid_argument(format!("events: not a valid batch: {err}")))
    }
}

/// How many `events` (field 1) the encoded batch in `bytes` holds, read
/// from the field keys and lengths alone.
fn count_events(mut bytes: &[u8]) -> Result<usize, Status> {
    use prost::encoding::{DecodeContext, decode_key, skip_field};
    let malformed = |err: prost::DecodeError| {
        Status::invalid_argument(format!("events: not a valid batch: {err}"))
    };
    let mut events = 0_usize;
    while bytes.has_remaining() {
        let (tag, wire_type) = decode_key(&mut bytes).map_err(malformed)?;
        events += usize::from(tag == 1);
        skip_field(wire_type, tag, &mut bytes, DecodeContext::default()).map_err(malformed)?;
    }
    Ok(events)
}

#[tonic::async_trait]
impl wire::ingest_server::Ingest for LoyaltyApi {
    async fn record_events(
        &self,
        request: Request<Batch>,
    ) -> Result<Response<pb::RecordEventsResponse>, Status> {
        let admitted = self.admit(&request, Action::RecordEvents)?;
        let events = request.into_inner().events;
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
    fn admit_event(&self, event: Bytes, caller: &Caller) -> Result<Event, pb::EventError> {
        let size = event.len();
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
        let event = pb::Event::decode(event).map_err(|err| pb::EventError {
            code: Code::InvalidArgument as i32,
            message: format!("event: not a valid loyalty.v1.Event: {err}"),
            field: "event".into(),
        })?;
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
