//! The gate every tierd RPC passes before any of its body is read: who is
//! calling, from the headers alone, and how many bytes the RPC may send.
//!
//! tonic decodes a request before the handler runs, so a check in the
//! handler comes after the memory is spent: 8 MiB of empty batch events
//! decoded into 1.6 GB before the handler could say UNAUTHENTICATED. This
//! tower layer sits in front of the services instead:
//!
//! - A caller without a known key is answered `UNAUTHENTICATED` from the
//!   headers; the body is never polled. A known caller travels to the
//!   handler in the request's extensions, which checks its role.
//! - Each RPC's body is capped at what its largest valid request can be
//!   ([`RequestCaps`]), counted as it arrives: past the cap the request
//!   fails with `OUT_OF_RANGE` and the rest is never read.
//!
//! Health and reflection (any path outside `loyalty.v1`) pass untouched, so
//! probes and standard tools need no key.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http_body::Frame;
use tonic::{Status, body::Body, codegen::http};
use tower::Service;

use super::{ServeLimits, auth::Keyring};

/// The path a request calls, as the gate found it: what a refusal names.
/// It shares the request URI's bytes, so keeping it costs no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rpc(http::uri::PathAndQuery);

impl Rpc {
    /// The method's name (`WatchTierChanges`).
    pub fn method(&self) -> &str {
        let path = self.0.path();
        path.rsplit('/').next().unwrap_or(path)
    }
}

/// The package whose RPCs pass the gate.
const GATED: &str = "/loyalty.v1.";

/// The most bytes each RPC's request body may carry, gRPC framing (five
/// bytes per message) included.
#[derive(Debug, Clone, Copy)]
pub struct RequestCaps {
    /// `SimulateRules`: a rules file at its size limit, and its `as_of`.
    simulate: usize,
    /// `RecordEvents`: a batch.
    batch: usize,
    /// Every other RPC.
    single: usize,
}

/// Room for the fields beside the largest one, and the gRPC frame header.
const ENVELOPE_BYTES: usize = 4 * 1024;

impl RequestCaps {
    /// The caps `limits` allow.
    pub fn new(limits: &ServeLimits) -> Self {
        Self {
            simulate: crate::rules::MAX_FILE_BYTES + ENVELOPE_BYTES,
            batch: limits.max_batch_bytes + ENVELOPE_BYTES,
            single: limits.max_request_bytes + ENVELOPE_BYTES,
        }
    }

    /// The cap of the RPC at `path` (`/package.Service/Method`).
    fn of(&self, path: &str) -> usize {
        match path {
            "/loyalty.v1.Loyalty/SimulateRules" => self.simulate,
            "/loyalty.v1.Ingest/RecordEvents" => self.batch,
            _ => self.single,
        }
    }

    /// The largest cap of all: what tonic's own per-service limit is set
    /// to, so that the gate's cap is the one a caller meets.
    pub fn largest(&self) -> usize {
        self.simulate.max(self.batch).max(self.single)
    }
}

/// What the gate checks against, shared by every connection.
#[derive(Debug)]
struct Checks {
    keyring: Keyring,
    caps: RequestCaps,
}

/// The layer: wraps the server's routes in a [`Gate`].
#[derive(Debug, Clone)]
pub struct GateLayer {
    checks: Arc<Checks>,
}

impl GateLayer {
    /// A gate that lets in `keyring`'s callers, with `caps`.
    pub fn new(keyring: Keyring, caps: RequestCaps) -> Self {
        Self {
            checks: Arc::new(Checks { keyring, caps }),
        }
    }
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            checks: Arc::clone(&self.checks),
        }
    }
}

/// The services behind the gate.
#[derive(Debug, Clone)]
pub struct Gate<S> {
    inner: S,
    checks: Arc<Checks>,
}

impl<S> Service<http::Request<Body>> for Gate<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        if !path.starts_with(GATED) {
            return Box::pin(self.inner.call(request));
        }
        let cap = self.checks.caps.of(path);
        let rpc = request.uri().path_and_query().cloned().map(Rpc);
        match self.checks.keyring.authenticate(request.headers()) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                if let Some(rpc) = rpc {
                    request.extensions_mut().insert(rpc);
                }
            }
            Err(refused) => return Box::pin(std::future::ready(Ok(refused.into_http()))),
        }
        let request = request.map(|body| {
            Body::new(Capped {
                body,
                left: cap,
                cap,
            })
        });
        Box::pin(self.inner.call(request))
    }
}

/// A request body that fails once it has carried more than its cap.
struct Capped {
    body: Body,
    left: usize,
    cap: usize,
}

impl http_body::Body for Capped {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        if let Some(Ok(frame)) = &frame {
            let size = frame.data_ref().map_or(0, Bytes::len);
            if size > self.left {
                return Poll::Ready(Some(Err(Status::out_of_range(format!(
                    "request too large: this call's limit is {} bytes",
                    self.cap
                )))));
            }
            self.left -= size;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
