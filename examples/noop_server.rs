//! The load generator's baseline: a server of the same gRPC contract that
//! answers `RecordPurchase` at once with an empty reply and does nothing
//! else (every other method is the generated UNIMPLEMENTED stub). It runs
//! in its own process, as `tierd serve` does, with the same transport
//! settings (Nagle off), so that `loadgen --compare-noop` measures what
//! tierd adds to a request and nothing else.
//!
//! `cargo run --release --example noop_server -- [ADDR]` (default
//! 127.0.0.1:0); prints `listening on ADDR` once it accepts connections.

use tonic::{Request, Response, Status};

use tierd::grpc::{
    self,
    pb::{self, loyalty_server::Loyalty},
};

struct NoOp;

#[tonic::async_trait]
impl Loyalty for NoOp {
    async fn record_purchase(
        &self,
        _: Request<pb::RecordPurchaseRequest>,
    ) -> Result<Response<pb::RecordPurchaseResponse>, Status> {
        Ok(Response::new(pb::RecordPurchaseResponse::default()))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("listening on {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(pb::loyalty_server::LoyaltyServer::new(NoOp))
        .serve_with_incoming(grpc::incoming(listener))
        .await?;
    Ok(())
}
