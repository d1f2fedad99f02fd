//! The `tierd` command line: `serve`, `rules check`, `rules test`,
//! `simulate`, `report`, `keys new`, `backup`, `restore`, `migrate-store`,
//! `member export`, `compact`.
//!
//! Flags may also come from `TIERD_*` environment variables and, for
//! `serve`, from a YAML config file (`--config`); see [`crate::config`].

/// Writes a line to stdout and returns the write's result. Unlike
/// `println!`, which panics when the reader has gone away (`tierd ... |
/// head -1`), a closed pipe comes back as an error, on which `main` ends
/// quietly with status 0.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod compact;
mod member;
mod report;
mod serve;
mod watch;

use std::{io::Write as _, net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::{
    app::{Program, system_clock},
    config, grpc, rules,
    store::{Location, Store},
    tools::rules_test,
};

/// tierd: a rules-driven loyalty tier engine.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC service.
    Serve(ServeArgs),
    /// Work with rules files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write a consistent backup of a data directory, or of a running
    /// service (with --server and an admin key).
    Backup(BackupArgs),
    /// What-if: how candidate rules would place the stored members (reads
    /// only; on a stopped service's data or a restored backup, or asked of
    /// a running service with --server and a marketing or admin key).
    Simulate(SimulateArgs),
    /// A programme report (distribution, migration, value ranks, RFM,
    /// value bands, segments, clusters, liability, or all of them on an
    /// HTML page) from a data directory, or from a running service with
    /// --server and a reporting or admin key.
    Report(report::ReportArgs),
    /// A member's data: `tierd member export ID`.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Rewrite a stopped store so that it holds only its live records
    /// (after an erasure: no old bytes of the member); on PostgreSQL,
    /// VACUUM FULL of tierd's tables.
    Compact(StoreArgs),
    /// Restore a backup into a new data directory or an empty database.
    Restore {
        /// The backup file.
        #[arg(long = "in")]
        input: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Move a programme from one store to another (sled or PostgreSQL, in
    /// either direction), through a backup file: stop the service on the
    /// source first.
    MigrateStore {
        /// The store to read, e.g. sled:./data.
        #[arg(long)]
        from: Location,
        /// The new store, empty, e.g. postgres://tierd@db/loyalty.
        #[arg(long)]
        to: Location,
    },
}

/// Where the data is, for every command that opens it.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The store: sled:DIR or postgres://USER@HOST/DB [default: sled:./data].
    #[arg(long, env = "TIERD_STORE")]
    store: Option<Location>,
    /// A sled data directory: the same as --store sled:DIR.
    #[arg(long, env = "TIERD_DATA")]
    data: Option<PathBuf>,
}

impl StoreArgs {
    /// The store named, `--store` first; `None` when neither was given.
    pub fn location(&self) -> Option<Location> {
        self.store
            .clone()
            .or_else(|| self.data.clone().map(Location::Sled))
    }
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// The candidate rules file.
    #[arg(long)]
    rules: PathBuf,
    /// Evaluate as of this time (RFC 3339) [default: now].
    #[arg(long)]
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    #[command(flatten)]
    store: StoreArgs,
    // With --server the service simulates over its own members
    // (SimulateRules).
    #[command(flatten)]
    remote: ServerArgs,
    /// `table`, `csv` or `json`.
    #[arg(long, value_enum, default_value = "table")]
    format: SimulationFormat,
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// Where to write the backup.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    remote: ServerArgs,
}

/// A running service to ask instead of a stopped store, and the key to
/// ask with: what `backup`, `simulate` and `report` share.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// A running service, e.g. http://127.0.0.1:50051, instead of a data
    /// directory or database.
    #[arg(long, conflicts_with_all = ["store", "data"])]
    server: Option<String>,
    /// The API key for --server (the command's description says which
    /// role it needs).
    #[arg(long, env = "TIERD_API_KEY")]
    key: Option<String>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new random key; prints it once, and the line for the config file.
    New {
        /// Who will hold it ("till-042").
        #[arg(long)]
        name: String,
        /// pos, marketing, reporting, service or admin.
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// YAML config file (`listen`, `store`, `rules`, `metrics_listen`, ...).
    #[arg(long, env = "TIERD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "TIERD_LISTEN")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    store: StoreArgs,
    /// Rules file, or a directory with one rules file [default: ./rules].
    #[arg(long, env = "TIERD_RULES")]
    rules: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, serves TLS.
    #[arg(long, env = "TIERD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "TIERD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Do not watch the rules file (reload only on SIGHUP or ReloadRules).
    #[arg(long, env = "TIERD_NO_WATCH")]
    no_watch: bool,
    /// CA (PEM) that client certificates must be signed by (mutual TLS).
    #[arg(long, env = "TIERD_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDRESS/metrics [default: off].
    #[arg(long, env = "TIERD_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Validate rules files; prints `file:line:column: error|warning: ...`
    /// per problem and exits non-zero on any error.
    Check {
        /// Rules files or directories [default: ./rules].
        paths: Vec<PathBuf>,
        /// `text` for people, `json` for editors and CI.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        // With a store (--data, --store) or a running service (--server),
        // a version label put live before with other content is refused,
        // as `serve` and a reload would refuse it.
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: ServerArgs,
    },
    /// Run the test cases kept next to rules files (`x.test.yaml`).
    Test {
        /// Rules files or directories [default: ./rules].
        paths: Vec<PathBuf>,
    },
}

/// What `main` prints for a failed command: the service's message as it
/// is, once, when the failure came from the service (rather than tonic's
/// `code: '...', message: "..."`), saying how to send a key when the
/// service wanted one; otherwise the error and its causes.
pub fn failure_message(err: &anyhow::Error) -> String {
    let Some(status) = err.chain().find_map(|e| e.downcast_ref::<tonic::Status>()) else {
        return format!("{err:#}");
    };
    match status.code() {
        tonic::Code::Unauthenticated => format!(
            "{}: give an API key with --key KEY (or TIERD_API_KEY)",
            status.message()
        ),
        _ => status.message().to_owned(),
    }
}

impl Cli {
    /// Runs the chosen subcommand.
    ///
    /// # Errors
    /// Whatever stops the command, with context for the person reading it.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => serve::serve(args),
            Command::Rules(RulesCommand::Check {
                paths,
                format,
                store,
                remote,
            }) => check(paths, format, &History { store, remote }),
            Command::Rules(RulesCommand::Test { paths }) => test_rules(paths),
            Command::Keys(KeysCommand::New { name, role }) => new_key(&name, &role),
            Command::Backup(args) => backup(args),
            Command::Simulate(args) => simulate(args),
            Command::Restore { input, store } => restore(&input, store.location()),
            Command::MigrateStore { from, to } => migrate_store(&from, &to),
            Command::Report(args) => report::run(args),
            Command::Member(command) => member::run(command),
            Command::Compact(store) => compact::run(store),
        }
    }
}

fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let written = runtime.block_on(async {
        match &args.remote.server {
            Some(server) => backup_from_server(server, args.remote.key.as_deref(), &args.out).await,
            None => {
                let store = open_stopped(args.store.location())?;
                let out = std::fs::File::create(&args.out)
                    .with_context(|| format!("writing {}", args.out.display()))?;
                Ok(store.write(move |writer| writer.snapshot(&out)).await??)
            }
        }
    })?;
    out!("backup written: {} ({written} bytes)", args.out.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Streams the backup of a running service into `out`; returns its size.
async fn backup_from_server(
    server: &str,
    key: Option<&str>,
    out: &std::path::Path,
) -> anyhow::Result<u64> {
    use std::io::Write as _;
    use tokio_stream::StreamExt as _;
    let mut client = grpc::pb::loyalty_client::LoyaltyClient::connect(server.to_owned())
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let request = authorized(grpc::pb::BackupRequest {}, key)?;
    let mut stream = client.backup(request).await?.into_inner();
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("writing {}", out.display()))?,
    );
    let mut written = 0;
    while let Some(chunk) = stream.next().await {
        let data = chunk?.data;
        file.write_all(&data)?;
        written += data.len() as u64;
    }
    file.flush()?;
    Ok(written)
}

/// The store at `location` (default `sled:./data`): for sled, the data
/// directory of a stopped service; a database may be in use by running
/// nodes meanwhile.
fn open_stopped(location: Option<Location>) -> anyhow::Result<Store> {
    let data = match location {
        None => config::DEFAULT_DATA.into(),
        Some(Location::Sled(dir)) => dir,
        Some(location) => {
            return Store::at(&location).with_context(|| format!("opening {location}"));
        }
    };
    // Opening would create an empty store, and every report would then
    // say "0 members" about a mistyped path.
    if !data.join("conf").is_file() {
        anyhow::bail!(
            "{} holds no tierd data: give the data directory of a stopped service or a restored backup",
            data.display()
        );
    }
    Store::open(&data).with_context(|| {
        format!(
            "opening {} (if the service is running, use --server)",
            data.display()
        )
    })
}

/// `message` as a request carrying `key` as a bearer token, if given.
fn authorized<T>(message: T, key: Option<&str>) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {key}")
                .parse()
                .context("the key is not ASCII")?,
        );
    }
    Ok(request)
}

fn restore(input: &std::path::Path, location: Option<Location>) -> anyhow::Result<ExitCode> {
    let location =
        location.ok_or_else(|| anyhow::anyhow!("name the new store with --store or --data"))?;
    let records = crate::store::restore(input, &location)?;
    out!("restored {records} records into {location}")?;
    Ok(ExitCode::SUCCESS)
}

/// Snapshots `from` into a temporary backup file and restores it into `to`.
fn migrate_store(from: &Location, to: &Location) -> anyhow::Result<ExitCode> {
    let source = open_stopped(Some(from.clone()))?;
    let scratch = tempfile::NamedTempFile::new().context("a temporary backup file")?;
    let file = scratch.reopen()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let bytes = runtime
        .block_on(source.write(move |writer| writer.snapshot(&file)))?
        .with_context(|| format!("reading {from}"))?;
    drop(source);
    let records =
        crate::store::restore(scratch.path(), to).with_context(|| format!("writing {to}"))?;
    out!("moved {records} records ({bytes} bytes) from {from} to {to}")?;
    Ok(ExitCode::SUCCESS)
}

fn new_key(name: &str, role: &str) -> anyhow::Result<ExitCode> {
    let role_ok = ["pos", "marketing", "reporting", "service", "admin"].contains(&role);
    anyhow::ensure!(
        role_ok,
        "--role must be pos, marketing, reporting, service or admin, not {role:?}"
    );
    let key = grpc::auth::new_key().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    out!("key (give it to {name}; it is not stored anywhere): {key}")?;
    out!("config file line, under api_keys:")?;
    out!(
        "  - {{ name: {name}, role: {role}, sha256: {} }}",
        grpc::auth::hash_key(&key)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The paths given, or the default rules directory.
fn or_default_rules(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(config::DEFAULT_RULES)]
    } else {
        paths
    }
}

fn test_rules(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let paths = or_default_rules(paths);
    let (mut passed, mut failed) = (0, 0);
    for path in paths {
        let file = config::rules_file(&path)?;
        let rules = rules::load(&file).map_err(|d| anyhow::anyhow!("{d}"))?;
        let cases = rules_test::cases_file(&file);
        let results = rules_test::run_cases(&rules, &cases).map_err(|d| anyhow::anyhow!("{d}"))?;
        out!("{} (rules version {}):", cases.display(), rules.version)?;
        for result in results {
            match result.failure {
                None => {
                    passed += 1;
                    out!("  ok    {}", result.name)?;
                }
                Some(why) => {
                    failed += 1;
                    out!("  FAIL  {}: {why}", result.name)?;
                }
            }
        }
    }
    out!("{passed} passed, {failed} failed")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How `simulate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SimulationFormat {
    Table,
    Csv,
    Json,
}

fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let candidate = rules::load(&args.rules).map_err(|d| anyhow::anyhow!("{d}"))?;
    let simulation = match &args.remote.server {
        Some(server) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(simulate_on_server(server, &args, &candidate))?
        }
        None => {
            let store = open_stopped(args.store.location())?;
            let program = Program::new(store, Arc::new(candidate.clone()), system_clock());
            program.simulate(&candidate, args.as_of)?
        }
    };
    let tiers: Vec<String> = candidate.tiers.iter().map(|t| t.id.clone()).collect();
    let text = match args.format {
        SimulationFormat::Table => simulation.to_table(&tiers),
        SimulationFormat::Csv => simulation.to_csv(&tiers),
        SimulationFormat::Json => format!("{}\n", serde_json::to_string_pretty(&simulation)?),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `candidate` simulated by the running service at `server`, over its
/// members (`SimulateRules`), as the local simulation would be shown.
async fn simulate_on_server(
    server: &str,
    args: &SimulateArgs,
    candidate: &rules::RuleSet,
) -> anyhow::Result<crate::tools::simulate::Simulation> {
    let mut client = grpc::pb::loyalty_client::LoyaltyClient::connect(server.to_owned())
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let as_of = args.as_of.unwrap_or_else(chrono::Utc::now);
    let request = grpc::pb::SimulateRulesRequest {
        rules_text: candidate.source.clone(),
        as_of: Some(grpc::convert::timestamp(as_of)),
    };
    let reply = client
        .simulate_rules(authorized(request, args.remote.key.as_deref())?)
        .await?
        .into_inner();
    Ok(grpc::convert::simulation_of(reply, as_of))
}

/// How `rules check` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Where `rules check` finds the versions put live before, if anywhere.
struct History {
    store: StoreArgs,
    remote: ServerArgs,
}

impl History {
    /// Every version put live, oldest first; none when no store or service
    /// was named.
    fn versions(&self) -> anyhow::Result<Vec<rules::RulesVersion>> {
        if let Some(server) = &self.remote.server {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            return runtime.block_on(self.versions_on(server));
        }
        let Some(location) = self.store.location() else {
            return Ok(Vec::new());
        };
        let store = open_stopped(Some(location))?;
        let mut versions = Vec::new();
        let mut after = 0;
        loop {
            let page = store.rules_versions_after(after, 200)?;
            let Some(&(last, _)) = page.last() else {
                return Ok(versions);
            };
            after = last;
            versions.extend(page.into_iter().map(|(_, version)| version));
        }
    }

    async fn versions_on(&self, server: &str) -> anyhow::Result<Vec<rules::RulesVersion>> {
        let mut client = grpc::pb::loyalty_client::LoyaltyClient::connect(server.to_owned())
            .await
            .with_context(|| format!("connecting to {server}"))?;
        let mut versions = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = grpc::pb::ListRulesVersionsRequest {
                page_size: 200,
                page_token,
            };
            let page = client
                .list_rules_versions(authorized(request, self.remote.key.as_deref())?)
                .await?
                .into_inner();
            versions.extend(
                page.versions
                    .into_iter()
                    .map(grpc::convert::rules_version_of),
            );
            if page.next_page_token.is_empty() {
                return Ok(versions);
            }
            page_token = page.next_page_token;
        }
    }
}

fn check(paths: Vec<PathBuf>, format: Format, history: &History) -> anyhow::Result<ExitCode> {
    let paths = or_default_rules(paths);
    let recorded = history.versions()?;
    let mut diagnostics = Vec::new();
    let mut summaries = Vec::new();
    for path in paths {
        let file = match config::rules_file(&path) {
            Ok(file) => file,
            Err(err) => {
                let severity = rules::Severity::Error;
                diagnostics.push(rules::Diagnostic::about_file(
                    path,
                    severity,
                    err.to_string(),
                ));
                continue;
            }
        };
        match rules::load(&file) {
            Ok(rules) => {
                diagnostics.extend(recorded.iter().find_map(|v| v.reused_by(&rules, &file)));
                diagnostics.extend(rules::lint(&rules, &file));
                diagnostics.extend(rules_test::line_rules_no_case_matches(&rules, &file));
                summaries.push(format!(
                    "{}: ok: program {} version {}, {} tiers",
                    file.display(),
                    rules.program,
                    rules.version,
                    rules.tiers.len()
                ));
            }
            Err(rejected) => diagnostics.extend(rejected.diagnostics),
        }
    }
    match format {
        Format::Text => {
            for line in diagnostics.iter().map(ToString::to_string).chain(summaries) {
                out!("{line}")?;
            }
        }
        Format::Json => out!("{}", serde_json::to_string_pretty(&diagnostics)?)?,
    }
    let failed = diagnostics
        .iter()
        .any(|d| d.severity == rules::Severity::Error);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
