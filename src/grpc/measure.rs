//! Every request counted and timed, by RPC and status, as one tower layer
//! around the whole server (health and reflection included): the handlers
//! stay as thin as they are.
//!
//! The status is the `grpc-status` header of the response: tonic sends
//! one there for every refusal ("trailers-only"), and none for an answer,
//! whose status (OK) follows the body. A stream that fails after it began
//! counts as OK: its status travels in trailers this layer does not wait
//! for.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tonic::codegen::http;
use tower::Service;

use crate::telemetry;

/// The layer: wraps a service in [`Measured`].
pub fn layer<S>(inner: S) -> Measured<S> {
    Measured { inner }
}

/// A service whose requests are counted and timed.
#[derive(Clone)]
pub struct Measured<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for Measured<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().trim_start_matches('/').to_owned();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<i32>().ok())
                .map_or(tonic::Code::Ok, tonic::Code::from);
            metrics::counter!(telemetry::REQUESTS, "rpc" => rpc.clone(), "status" => format!("{code:?}"))
                .increment(1);
            metrics::histogram!(telemetry::REQUEST_SECONDS, "rpc" => rpc)
                .record(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}
