//! Webhooks: the tier-history entries an endpoint asked for, POSTed to it
//! as JSON in `seq` order, signed, retried until it accepts them, resumed
//! after a restart.
//!
//! # What an endpoint receives
//! One POST per entry, `Content-Type: application/json`, body:
//!
//! ```json
//! {"seq":12,"member_id":"m1","kind":"at_risk","from_tier":"gold","to_tier":"gold",
//!  "at":"2026-11-24T10:00:00Z","reason":"retain of gold failed: ...","rules_version":"2026.1",
//!  "demotion_at":"2026-12-24T10:00:00Z","to_stay":[{"metric":"qualifying_points","missing":120}]}
//! ```
//!
//! with headers `Tierd-Event-Seq` (the `seq`), `Tierd-Event-Kind` and
//! `Tierd-Signature: t=<unix seconds>,v1=<hex>`, where `<hex>` is
//! HMAC-SHA256 with the endpoint's secret over `<t>.<body>` (the scheme
//! Stripe uses): a receiver recomputes it ([`verify`]) and may refuse old
//! timestamps to stop replays.
//!
//! # Promises
//! - **In order, at least once**: one delivery at a time per endpoint, in
//!   `seq` order. An entry is retried (exponential backoff from
//!   `retry_first` to `retry_max`) until the endpoint answers 2xx; nothing
//!   after it is sent before. Receivers de-duplicate by `seq`.
//! - **Durable position**: after each page of entries (at most
//!   [`crate::app::watch::PAGE`]) the last delivered `seq` is written to
//!   the store; a restart (or `kill -9`) resumes from there, so at most one
//!   page is sent again.
//! - Deliveries read the store at their own pace (see
//!   [`crate::app::watch`]): a slow or failing endpoint never slows
//!   ingestion, and holds at most one page in memory.

use std::{sync::Arc, time::Duration};

use chrono::SecondsFormat;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::{
    app::{
        Program,
        watch::{Page, WatchFilter},
    },
    domain::decide::{ChangeKind, HistoryEntry},
    telemetry,
};

/// One endpoint as the config file describes it (`webhooks:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Names the endpoint in logs and keys its delivery position: renaming
    /// it starts delivery from the beginning.
    pub name: String,
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// Kinds to send (`promotion`, `demotion`, `at_risk`, `retained`,
    /// `manual`, `initial`, `closed`, `reopened`); none: all.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only entries from or to these tiers; none: all.
    #[serde(default)]
    pub tiers: Vec<String>,
    /// The signing secret, written in the file...
    #[serde(default)]
    pub secret: Option<String>,
    /// ...or the environment variable holding it (better).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The first wait before a retry; doubled after each failure.
    #[serde(default = "default_retry_first", with = "humantime_serde")]
    pub retry_first: Duration,
    /// The longest wait between retries.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
    /// How long one POST may take before it counts as failed.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_retry_first() -> Duration {
    Duration::from_millis(500)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Why an endpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A kind that is not a tier change kind.
    #[error("webhook {endpoint}: unknown kind {kind:?}; the kinds are {known}")]
    UnknownKind {
        /// The endpoint's name.
        endpoint: String,
        /// The kind written.
        kind: String,
        /// The kinds there are.
        known: String,
    },
    /// No secret, or both `secret` and `secret_env`, or an unset variable.
    #[error(
        "webhook {0}: give the signing secret as `secret` or `secret_env` (a set variable), one of them"
    )]
    Secret(String),
    /// A URL that is not http(s).
    #[error("webhook {0}: url must start with http:// or https://")]
    Url(String),
    /// The HTTP client could not be built.
    #[error("webhook client: {0}")]
    Client(#[from] reqwest::Error),
}

/// An endpoint ready to deliver to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// What it wants.
    pub filter: WatchFilter,
    secret: Vec<u8>,
    retry_first: Duration,
    retry_max: Duration,
    timeout: Duration,
}

impl EndpointConfig {
    /// The endpoint, its secret read and its kinds checked.
    ///
    /// # Errors
    /// [`WebhookError`] saying what is wrong.
    pub fn resolve(self) -> Result<Endpoint, WebhookError> {
        let name = self.name;
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(WebhookError::Url(name));
        }
        let secret = match (self.secret, self.secret_env) {
            (Some(secret), None) => secret,
            (None, Some(var)) => {
                std::env::var(&var).map_err(|_| WebhookError::Secret(name.clone()))?
            }
            _ => return Err(WebhookError::Secret(name)),
        };
        if secret.is_empty() {
            return Err(WebhookError::Secret(name));
        }
        let kinds = self
            .kinds
            .iter()
            .map(|kind| {
                ChangeKind::ALL
                    .into_iter()
                    .find(|k| k.name() == kind)
                    .ok_or_else(|| WebhookError::UnknownKind {
                        endpoint: name.clone(),
                        kind: kind.clone(),
                        known: ChangeKind::ALL.map(ChangeKind::name).join(", "),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Endpoint {
            name,
            url: self.url,
            filter: WatchFilter {
                kinds,
                tiers: self.tiers,
            },
            secret: secret.into_bytes(),
            retry_first: self.retry_first,
            retry_max: self.retry_max.max(self.retry_first),
            timeout: self.timeout,
        })
    }
}

/// One entry as an endpoint receives it.
#[derive(Debug, serde::Serialize)]
struct Event<'a> {
    seq: u64,
    member_id: &'a str,
    kind: &'static str,
    from_tier: &'a str,
    to_tier: &'a str,
    at: String,
    reason: &'a str,
    rules_version: &'a str,
    demotion_at: Option<String>,
    to_stay: Vec<Shortfall<'a>>,
}

#[derive(Debug, serde::Serialize)]
struct Shortfall<'a> {
    metric: &'a str,
    missing: i64,
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The JSON body of `entry`.
pub fn body(entry: &HistoryEntry) -> Vec<u8> {
    let change = &entry.change;
    let at_risk = change.at_risk.as_ref();
    let event = Event {
        seq: entry.seq,
        member_id: &entry.member_id,
        kind: change.kind.name(),
        from_tier: &change.from_tier,
        to_tier: &change.to_tier,
        at: rfc3339(change.at),
        reason: &change.reason,
        rules_version: &entry.rules_version,
        demotion_at: at_risk.map(|r| rfc3339(r.demotion_at)),
        to_stay: at_risk
            .map(|r| {
                r.to_stay
                    .iter()
                    .map(|(metric, missing)| Shortfall {
                        metric,
                        missing: *missing,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    // Plain strings and numbers: serialising cannot fail.
    serde_json::to_vec(&event).unwrap_or_default()
}

/// The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
fn mac_hex(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Tierd-Signature` header of `body` sent at `timestamp` (unix
/// seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", mac_hex(secret, timestamp, body))
}

/// Whether `header` (a `Tierd-Signature`) signs `body` under `secret`;
/// returns the signed timestamp when it does, for the receiver's replay
/// check.
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> Option<i64> {
    let mut timestamp = None;
    let mut given = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => given = Some(v),
            _ => {}
        }
    }
    let timestamp = timestamp?;
    let expected = mac_hex(secret, timestamp, body);
    // Compare in constant time: the length is public, the bytes are not.
    let given = given?.as_bytes();
    let same = given.len() == expected.len()
        && given
            .iter()
            .zip(expected.as_bytes())
            .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
    same.then_some(timestamp)
}

/// Starts delivering to every endpoint; each task ends when `program`
/// stops streaming.
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn spawn_all(
    program: &Arc<Program>,
    endpoints: Vec<Endpoint>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, WebhookError> {
    endpoints
        .into_iter()
        .map(|endpoint| {
            let client = reqwest::Client::builder()
                .timeout(endpoint.timeout)
                .build()?;
            let program = Arc::clone(program);
            Ok(tokio::spawn(deliver(program, client, endpoint)))
        })
        .collect()
}

/// Delivers to `endpoint` from its stored position on, until the program
/// stops.
async fn deliver(program: Arc<Program>, client: reqwest::Client, endpoint: Endpoint) {
    let name = endpoint.name.as_str();
    let mut after = match program.delivery_position(name) {
        Ok(after) => after,
        Err(err) => {
            tracing::error!(webhook = name, error = %err, "cannot read the delivery position; not delivering");
            return;
        }
    };
    tracing::info!(webhook = name, url = %endpoint.url, after, "delivering tier changes");
    loop {
        let page = match program.tier_changes_after(after, &endpoint.filter).await {
            Ok(Some(page)) => page,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(webhook = name, error = %err, "reading tier changes failed");
                if wait_or_stop(&program, endpoint.retry_max).await {
                    return;
                }
                continue;
            }
        };
        if !post_page(&program, &client, &endpoint, &page).await {
            return;
        }
        after = page.last_seq;
        record_delivery(name, &page);
        if let Err(err) = program.save_delivery_position(name, after).await {
            tracing::error!(webhook = name, error = %err, seq = after, "keeping the delivery position failed");
        }
    }
}

/// Counts what `endpoint` accepted, and how far behind it is now.
fn record_delivery(endpoint: &str, page: &Page) {
    metrics::counter!(telemetry::WEBHOOK_DELIVERED, "endpoint" => endpoint.to_owned())
        .increment(page.entries.len() as u64);
    if let Some(last) = page.entries.last() {
        let behind = (chrono::Utc::now() - last.change.at)
            .as_seconds_f64()
            .max(0.0);
        metrics::gauge!(telemetry::WEBHOOK_LAG_SECONDS, "endpoint" => endpoint.to_owned())
            .set(behind);
    }
}

/// POSTs every entry of `page` in order, each until accepted; false when
/// the program stopped first.
async fn post_page(
    program: &Program,
    client: &reqwest::Client,
    endpoint: &Endpoint,
    page: &Page,
) -> bool {
    for entry in &page.entries {
        let body = body(entry);
        let mut wait = endpoint.retry_first;
        let mut attempt: u32 = 1;
        loop {
            match post(client, endpoint, entry, body.clone()).await {
                Ok(()) => break,
                Err(why) => {
                    tracing::warn!(
                        webhook = endpoint.name,
                        seq = entry.seq,
                        member_id = entry.member_id,
                        attempt,
                        retry_in = ?wait,
                        error = %why,
                        "webhook delivery failed"
                    );
                    if wait_or_stop(program, wait).await {
                        return false;
                    }
                    wait = (wait * 2).min(endpoint.retry_max);
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }
    true
}

/// One POST of `body`: Ok on a 2xx answer.
async fn post(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    entry: &HistoryEntry,
    body: Vec<u8>,
) -> Result<(), String> {
    let now = chrono::Utc::now().timestamp();
    let response = client
        .post(&endpoint.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Tierd-Event-Seq", entry.seq.to_string())
        .header("Tierd-Event-Kind", entry.change.kind.name())
        .header("Tierd-Signature", signature(&endpoint.secret, now, &body))
        .body(body)
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// Waits `wait`, or less if the program stops; true when it stopped.
async fn wait_or_stop(program: &Program, wait: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => false,
        () = program.stopped() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_the_body_and_secret_it_signed() {
        let header = signature(b"s3cret", 1_700_000_000, b"{\"seq\":1}");
        assert!(header.starts_with("t=1700000000,v1="), "{header}");
        assert_eq!(
            verify(b"s3cret", &header, b"{\"seq\":1}"),
            Some(1_700_000_000)
        );
        assert_eq!(verify(b"other", &header, b"{\"seq\":1}"), None);
        assert_eq!(verify(b"s3cret", &header, b"{\"seq\":2}"), None);
        let replayed = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(verify(b"s3cret", &replayed, b"{\"seq\":1}"), None);
    }

    #[test]
    fn an_endpoint_needs_one_secret_known_kinds_and_an_http_url() {
        let config = |extra: &str| -> Result<Endpoint, WebhookError> {
            let text = format!("name: crm\nurl: http://127.0.0.1:9/hook\n{extra}");
            serde_yaml::from_str::<EndpointConfig>(&text)
                .expect("valid yaml")
                .resolve()
        };
        let endpoint =
            config("secret: x\nkinds: [promotion, at_risk]\nretry_first: 10ms\n").expect("valid");
        assert_eq!(
            endpoint.filter.kinds,
            [ChangeKind::Promotion, ChangeKind::AtRisk]
        );
        assert_eq!(endpoint.retry_first, Duration::from_millis(10));
        assert!(matches!(config(""), Err(WebhookError::Secret(_))));
        let err = config("secret: x\nkinds: [promoted]\n").expect_err("unknown kind");
        assert!(
            err.to_string().contains("the kinds are initial, promotion"),
            "{err}"
        );
        let ftp = serde_yaml::from_str::<EndpointConfig>("name: a\nurl: ftp://x\nsecret: x\n")
            .expect("yaml")
            .resolve();
        assert!(matches!(ftp, Err(WebhookError::Url(_))));
    }
}
