//! A tiny webhook receiver: checks each POST's `Tierd-Signature`, refuses
//! stale or forged ones, skips `seq`s it has seen (delivery is at least
//! once), and prints the tier changes.
//!
//! ```sh
//! TIERD_WEBHOOK_SECRET=whsec-demo cargo run --example webhook_receiver -- 127.0.0.1:8080
//! ```
//!
//! with, in tierd's config file:
//!
//! ```yaml
//! webhooks:
//!   - name: demo
//!     url: http://127.0.0.1:8080/tierd
//!     secret_env: TIERD_WEBHOOK_SECRET
//!     kinds: [promotion, demotion, at_risk, retained]
//! ```

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};

/// Signatures older than this are refused (replays).
const TOLERANCE_SECS: i64 = 300;

struct Receiver {
    secret: Vec<u8>,
    /// The highest seq handled: a redelivery at or below it is skipped.
    last_seq: Mutex<u64>,
}

async fn tierd_event(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature = headers
        .get("tierd-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(signed_at) = tierd::webhook::verify(&receiver.secret, signature, &body) else {
        eprintln!("refused: bad signature");
        return StatusCode::UNAUTHORIZED;
    };
    if (chrono::Utc::now().timestamp() - signed_at).abs() > TOLERANCE_SECS {
        eprintln!("refused: signature too old");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let seq = event["seq"].as_u64().unwrap_or(0);
    let mut last = receiver.last_seq.lock().unwrap_or_else(|p| p.into_inner());
    if seq <= *last {
        println!("#{seq} again (already handled)");
        return StatusCode::NO_CONTENT;
    }
    *last = seq;
    println!(
        "#{seq} {} {}: {} -> {} ({})",
        event["kind"].as_str().unwrap_or("?"),
        event["member_id"].as_str().unwrap_or("?"),
        event["from_tier"].as_str().unwrap_or(""),
        event["to_tier"].as_str().unwrap_or(""),
        event["reason"].as_str().unwrap_or(""),
    );
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into())
        .parse()?;
    let secret = std::env::var("TIERD_WEBHOOK_SECRET")
        .map_err(|_| anyhow::anyhow!("set TIERD_WEBHOOK_SECRET to the endpoint's secret"))?;
    let receiver = Arc::new(Receiver {
        secret: secret.into_bytes(),
        last_seq: Mutex::new(0),
    });
    let app = Router::new()
        .route("/tierd", post(tierd_event))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("receiving tierd webhooks on http://{listen}/tierd");
    axum::serve(listener, app).await?;
    Ok(())
}
