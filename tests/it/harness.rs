//! Starting, stopping and talking to a real tierd server.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Code,
    transport::{Channel, ClientTlsConfig},
};
use tonic_types::StatusExt as _;

use tierd::{
    app::{Clock, Program},
    grpc::{self, ServeOptions, convert::timestamp, pb},
    rules,
    store::{Location, Store},
};

use crate::pg;

pub use pb::loyalty_client::LoyaltyClient;

/// The rules shipped in `rules/example.yaml`.
pub fn example_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/example.yaml")
}

/// A clock the test moves by hand; starts at 2026-03-02 10:00 UTC.
#[derive(Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> Self {
        let start = Utc
            .with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .expect("valid date");
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }

    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().expect("clock lock") += by;
    }

    fn as_clock(&self) -> Clock {
        let inner = Arc::clone(&self.0);
        Arc::new(move || *inner.lock().expect("clock lock"))
    }
}

/// A running server with its data directory and a connected client.
pub struct TestServer {
    pub client: LoyaltyClient<Channel>,
    pub channel: Channel,
    pub clock: TestClock,
    /// Where the server listens.
    pub address: std::net::SocketAddr,
    dir: Arc<TempDir>,
    /// Where the data is: kept across restarts.
    store: Location,
    rules: PathBuf,
    options: ServeOptions,
    client_tls: Option<ClientTlsConfig>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A server on the example rules.
    pub async fn start() -> Self {
        Self::with_options(ServeOptions::default()).await
    }

    /// A server on rules given as YAML text.
    pub async fn with_rules(yaml: &str) -> Self {
        let dir = Arc::new(TempDir::new().expect("temp dir"));
        let rules = dir.path().join("rules.yaml");
        std::fs::write(&rules, yaml).expect("write rules");
        let store = new_store(dir.path());
        Self::start_with(
            rules,
            dir,
            store,
            TestClock::new(),
            ServeOptions::default(),
            None,
        )
        .await
    }

    /// A server on a copy of the example rules of its own, which
    /// [`TestServer::relabel_rules`] may change.
    pub async fn on_example_copy() -> Self {
        let example = std::fs::read_to_string(example_rules()).expect("rules");
        Self::with_rules(&example).await
    }

    /// Rewrites the server's copy of the example rules with the version
    /// label `2026.{n}` (new content: new rules) and reloads it.
    pub async fn relabel_rules(&mut self, n: u32) -> pb::ReloadRulesResponse {
        let example = std::fs::read_to_string(example_rules()).expect("rules");
        let next = example.replacen("version: \"2026.1\"", &format!("version: \"2026.{n}\""), 1);
        assert_ne!(next, example, "the example's version label moved");
        std::fs::write(self.rules_path(), next).expect("edit rules");
        self.client
            .reload_rules(pb::ReloadRulesRequest {})
            .await
            .expect("reloaded")
            .into_inner()
    }

    /// A server on `rules` over a copy of the data directory `fixture`
    /// (which stays untouched), with the clock at `now`.
    pub async fn on_copy_of(fixture: &Path, rules: PathBuf, now: DateTime<Utc>) -> Self {
        let dir = Arc::new(TempDir::new().expect("temp dir"));
        let data = dir.path().join("data");
        copy_dir(fixture, &data);
        let clock = TestClock(Arc::new(Mutex::new(now)));
        let store = Location::Sled(data);
        Self::start_with(rules, dir, store, clock, ServeOptions::default(), None).await
    }

    /// A server on the example rules with other limits or keys.
    pub async fn with_options(options: ServeOptions) -> Self {
        Self::with_tls(options, None).await
    }

    /// A server with TLS in `options`, and a client connecting with
    /// `client_tls` (over https) or plaintext when `None`.
    pub async fn with_tls(options: ServeOptions, client_tls: Option<ClientTlsConfig>) -> Self {
        let dir = Arc::new(TempDir::new().expect("temp dir"));
        let store = new_store(dir.path());
        Self::start_with(
            example_rules(),
            dir,
            store,
            TestClock::new(),
            options,
            client_tls,
        )
        .await
    }

    async fn start_with(
        rules_path: PathBuf,
        dir: Arc<TempDir>,
        store_at: Location,
        clock: TestClock,
        options: ServeOptions,
        client_tls: Option<ClientTlsConfig>,
    ) -> Self {
        let rules = rules::load(&rules_path).expect("valid rules");
        let store = Store::at(&store_at).expect("open store");
        let program = Arc::new(
            Program::new(store, Arc::new(rules), clock.as_clock())
                .with_rules_file(rules_path.clone()),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let options_for_server = options.clone();
        let task = tokio::spawn(async move {
            let options = options_for_server;
            grpc::serve(listener, program, options, async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        let endpoint = match &client_tls {
            Some(tls) => Channel::from_shared(format!("https://{address}"))
                .expect("uri")
                .tls_config(tls.clone())
                .expect("client tls"),
            None => Channel::from_shared(format!("http://{address}")).expect("uri"),
        };
        let channel = endpoint.connect().await.expect("connect");
        Self {
            client: LoyaltyClient::new(channel.clone()),
            channel,
            clock,
            address,
            dir,
            store: store_at,
            rules: rules_path,
            options,
            client_tls,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Where the server keeps its data (the same after a restart or stop).
    pub fn store(&self) -> &Location {
        &self.store
    }

    /// The rules file the server loaded (and reloads).
    pub fn rules_path(&self) -> &Path {
        &self.rules
    }

    /// Stops the server and hands back its directory (sled data in
    /// `data/`), released and kept alive for inspection.
    pub async fn stop(mut self) -> Arc<TempDir> {
        self.shutdown().await;
        Arc::clone(&self.dir)
    }

    /// Stops the server (draining requests) and starts a new one on the same
    /// data directory and rules, with the clock where it was.
    pub async fn restart(mut self) -> Self {
        self.shutdown().await;
        let dir = Arc::clone(&self.dir);
        Self::start_with(
            self.rules.clone(),
            dir,
            self.store.clone(),
            self.clock.clone(),
            self.options.clone(),
            self.client_tls.clone(),
        )
        .await
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task ends cleanly");
        }
    }

    /// A purchase request at the current test time.
    pub fn purchase(
        &self,
        member: &str,
        txn: &str,
        amount_minor: i64,
    ) -> pb::RecordPurchaseRequest {
        pb::RecordPurchaseRequest {
            member_id: member.into(),
            transaction_id: txn.into(),
            amount_minor,
            currency: "EUR".into(),
            occurred_at: Some(timestamp(self.clock.now())),
            channel: "pos".into(),
            store_id: "store-1".into(),
            tags: vec![],
            lines: Vec::new(),
        }
    }

    /// Records a purchase and returns the response.
    pub async fn buy(
        &mut self,
        member: &str,
        txn: &str,
        amount_minor: i64,
    ) -> pb::RecordPurchaseResponse {
        let request = self.purchase(member, txn, amount_minor);
        self.client
            .record_purchase(request)
            .await
            .expect("purchase accepted")
            .into_inner()
    }

    /// A return request at the current test time.
    pub fn refund(
        &self,
        member: &str,
        txn: &str,
        original: &str,
        amount_minor: i64,
    ) -> pb::RecordReturnRequest {
        pb::RecordReturnRequest {
            member_id: member.into(),
            transaction_id: txn.into(),
            original_transaction_id: original.into(),
            amount_minor,
            occurred_at: Some(timestamp(self.clock.now())),
            currency: String::new(),
            lines: Vec::new(),
        }
    }

    pub async fn member(&mut self, member: &str) -> pb::Member {
        self.client
            .get_member(pb::GetMemberRequest {
                member_id: member.into(),
            })
            .await
            .expect("member exists")
            .into_inner()
    }

    pub async fn history(&mut self, member: &str) -> Vec<pb::TierChange> {
        self.client
            .get_tier_history(pb::GetTierHistoryRequest {
                member_id: member.into(),
                page_size: 0,
                page_token: String::new(),
            })
            .await
            .expect("history")
            .into_inner()
            .entries
    }

    /// Runs EvaluateTiers for everyone at `now + days`.
    pub async fn evaluate_in_days(&mut self, days: i64) -> pb::EvaluateTiersResponse {
        let as_of = self.clock.now() + TimeDelta::days(days);
        self.client
            .evaluate_tiers(pb::EvaluateTiersRequest {
                as_of: Some(timestamp(as_of)),
                member_ids: vec![],
                dry_run: false,
            })
            .await
            .expect("evaluation")
            .into_inner()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// True for the tests that run on PostgreSQL: the copies of the suites under
/// `postgres::` (`main.rs`; libtest names each test's thread after its
/// path), and every test when `TIERD_TEST_STORE=postgres`.
pub fn on_postgres() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|name| name.starts_with("postgres::"))
        || std::env::var("TIERD_TEST_STORE").is_ok_and(|store| store == "postgres")
}

/// Where a new test server keeps its data: a sled directory `data` in
/// `dir`, or a new database on the test cluster for a test [`on_postgres`]
/// (sled, after a line saying so, when there is no PostgreSQL here).
pub fn new_store(dir: &Path) -> Location {
    let sled = Location::Sled(dir.join("data"));
    if !on_postgres() {
        return sled;
    }
    pg::database().map_or(sled, Location::Postgres)
}

/// Copies the directory `from` to `to` with everything in it (sled keeps
/// large values as files under `blobs/`).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the directory") {
        let path = entry.expect("an entry").path();
        let target = to.join(path.file_name().expect("a name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, target).expect("copy");
        }
    }
}

/// The `(from, to, kind)` of history entries, for compact assertions.
pub fn moves(history: &[pb::TierChange]) -> Vec<(String, String, pb::TierChangeKind)> {
    history
        .iter()
        .map(|c| (c.from_tier.clone(), c.to_tier.clone(), c.kind()))
        .collect()
}

/// Refused with `code`, naming `field` in the message and, for bad or
/// unknown input, as a `google.rpc.BadRequest` field violation.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: Code,
    field: &str,
) {
    let status = result.expect_err("must be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(field),
        "message must name {field}: {status:?}"
    );
    if matches!(code, Code::InvalidArgument | Code::NotFound) {
        let violations = status
            .get_details_bad_request()
            .expect("a BadRequest detail")
            .field_violations;
        assert_eq!(violations.len(), 1, "{status:?}");
        assert_eq!(violations[0].field, field, "{status:?}");
        assert!(!violations[0].description.is_empty(), "{status:?}");
    }
}

/// A sled directory at `data` holding `members` seeded members (the
/// seeding tool's programme, drawn from `seed`) as of `now`, under the
/// example rules, which it records as in force.
pub async fn seeded(data: &Path, members: u64, seed: u64, now: DateTime<Utc>) {
    let store = tierd::store::Store::open(data).expect("store");
    let rules = tierd::rules::load(example_rules().as_path()).expect("rules");
    let written = tierd::tools::seed::seed(&store, &rules, members, seed, now)
        .await
        .expect("seeded");
    assert_eq!(written, members);
    store.sync().await.expect("synced");
}
