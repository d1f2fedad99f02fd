//! The `tierd` command line: `serve`, `rules check`, `keys new`, `backup`,
//! `restore`.
//!
//! Flags may also come from `TIERD_*` environment variables and, for
//! `serve`, from a YAML config file (`--config`); see [`crate::config`].

mod watch;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::{
    config::{self, Config, ConfigFile},
    grpc,
    program::{self, Program},
    rules,
    store::Store,
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
    /// service (with --server).
    Backup(BackupArgs),
    /// What-if: how candidate rules would place the stored members (reads
    /// only; run it on a stopped service's data or a restored backup).
    Simulate {
        /// The candidate rules file.
        #[arg(long)]
        rules: PathBuf,
        /// Evaluate as of this time (RFC 3339) [default: now].
        #[arg(long)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
        /// The data directory [default: ./data].
        #[arg(long, env = "TIERD_DATA")]
        data: Option<PathBuf>,
        /// `table`, `csv` or `json`.
        #[arg(long, value_enum, default_value = "table")]
        format: SimulationFormat,
    },
    /// Restore a backup into a new data directory.
    Restore {
        /// The backup file.
        #[arg(long = "in")]
        input: PathBuf,
        /// The data directory to create.
        #[arg(long, env = "TIERD_DATA")]
        data: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// Where to write the backup.
    #[arg(long)]
    out: PathBuf,
    /// The data directory of a stopped service [default: ./data].
    #[arg(long, env = "TIERD_DATA", conflicts_with = "server")]
    data: Option<PathBuf>,
    /// A running service, e.g. http://127.0.0.1:50051 (needs an admin key).
    #[arg(long)]
    server: Option<String>,
    /// The admin API key for --server.
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
        /// pos, marketing, reporting or admin.
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// YAML config file with `listen`, `data` and `rules` keys.
    #[arg(long, env = "TIERD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "TIERD_LISTEN")]
    listen: Option<SocketAddr>,
    /// sled data directory [default: ./data].
    #[arg(long, env = "TIERD_DATA")]
    data: Option<PathBuf>,
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
    },
    /// Run the test cases kept next to rules files (`x.test.yaml`).
    Test {
        /// Rules files or directories [default: ./rules].
        paths: Vec<PathBuf>,
    },
}

impl Cli {
    /// Runs the chosen subcommand.
    ///
    /// # Errors
    /// Whatever stops the command, with context for the person reading it.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => serve(args),
            Command::Rules(RulesCommand::Check { paths, format }) => Ok(check(paths, format)),
            Command::Rules(RulesCommand::Test { paths }) => test_rules(paths),
            Command::Keys(KeysCommand::New { name, role }) => new_key(&name, &role),
            Command::Backup(args) => backup(args),
            Command::Simulate {
                rules,
                as_of,
                data,
                format,
            } => simulate(&rules, as_of, data, format),
            Command::Restore { input, data } => restore(&input, &data),
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let file = match &args.config {
        Some(path) => ConfigFile::read(path)?,
        None => ConfigFile::default(),
    };
    let no_watch = args.no_watch;
    let tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| config::TlsFiles {
            cert,
            key,
            client_ca: args.tls_client_ca,
        });
    let config = Config::resolve(args.listen, args.data, args.rules, tls, file)?;
    let tls = config.tls.as_ref().map(read_tls).transpose()?;
    let rules_path = config::rules_file(&config.rules)?;
    let rules = match rules::load(&rules_path) {
        Ok(rules) => rules,
        Err(diagnostic) => {
            eprintln!("{diagnostic}");
            eprintln!("tierd: not started: the rules file is invalid");
            return Ok(ExitCode::FAILURE);
        }
    };
    let store = Store::open(&config.data)
        .with_context(|| format!("opening the data directory {}", config.data.display()))?;
    let program = Arc::new(
        Program::new(store, Arc::new(rules), program::system_clock())
            .with_rules_file(rules_path.clone()),
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        tracing::info!(data = %config.data.display(), rules = %rules_path.display(), "tierd starting");
        if config.keyring.is_open() {
            tracing::warn!(
                listen = %config.listen,
                "no api keys configured: every caller acts as admin; allowed only because the address is loopback"
            );
        }
        let options = grpc::ServeOptions {
            limits: grpc::ServeLimits::default(),
            keyring: config.keyring.clone(),
            tls,
        };
        let Signals {
            terminate,
            interrupt,
            hangup,
        } = Signals::register().context("registering signal handlers")?;
        tokio::spawn(reload_on_sighup(Arc::clone(&program), hangup));
        if !no_watch {
            tokio::spawn(watch::reload_on_change(Arc::clone(&program), rules_path.clone()));
        }
        let (stopping, stop_requested) = tokio::sync::oneshot::channel::<()>();
        let server = grpc::serve(listener, program, options, async {
            shutdown_on(terminate, interrupt).await;
            let _ = stopping.send(());
        });
        tokio::select! {
            served = server => served?,
            _ = async {
                let _ = stop_requested.await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still in flight after the grace period; stopping anyway"),
        }
        // Dropping the program finished the queued writes and flushed them.
        tracing::info!("tierd stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Reloads the rules on every SIGHUP; a bad file is logged and changes
/// nothing.
async fn reload_on_sighup(program: Arc<Program>, mut hangups: Signal) {
    while hangups.recv().await.is_some() {
        match program.reload_rules().await {
            Ok((version, changed)) => {
                tracing::info!(rules_version = %version.version, changed, "SIGHUP: rules reloaded")
            }
            Err(err) => tracing::warn!(error = %err, "SIGHUP: rules not reloaded"),
        }
    }
}

/// How long in-flight requests get to finish after SIGTERM or Ctrl-C.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The signals `serve` acts on, registered before it starts serving, so
/// that none can arrive while its default action (ending the process at
/// once) still applies.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    fn register() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_on(mut terminate: Signal, mut interrupt: Signal) {
    tokio::select! {
        _ = terminate.recv() => {},
        _ = interrupt.recv() => {},
    }
}

fn read_tls(files: &config::TlsFiles) -> anyhow::Result<grpc::TlsPem> {
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    Ok(grpc::TlsPem {
        cert: read(&files.cert)?,
        key: read(&files.key)?,
        client_ca: files.client_ca.as_ref().map(read).transpose()?,
    })
}

fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let snapshot = runtime.block_on(async {
        match &args.server {
            Some(server) => backup_from_server(server, args.key.as_deref()).await,
            None => {
                let data = args
                    .data
                    .clone()
                    .unwrap_or_else(|| config::DEFAULT_DATA.into());
                let store = Store::open(&data).with_context(|| {
                    format!(
                        "opening {} (if the service is running, use --server)",
                        data.display()
                    )
                })?;
                Ok(store.write(|writer| writer.snapshot()).await??)
            }
        }
    })?;
    std::fs::write(&args.out, &snapshot)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "backup written: {} ({} bytes)",
        args.out.display(),
        snapshot.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn backup_from_server(server: &str, key: Option<&str>) -> anyhow::Result<Vec<u8>> {
    use tokio_stream::StreamExt as _;
    let mut client = grpc::pb::loyalty_client::LoyaltyClient::connect(server.to_owned())
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let mut request = tonic::Request::new(grpc::pb::BackupRequest {});
    if let Some(key) = key {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {key}")
                .parse()
                .context("the key is not ASCII")?,
        );
    }
    let mut stream = client.backup(request).await?.into_inner();
    let mut snapshot = Vec::new();
    while let Some(chunk) = stream.next().await {
        snapshot.extend(chunk?.data);
    }
    Ok(snapshot)
}

fn restore(input: &std::path::Path, data: &std::path::Path) -> anyhow::Result<ExitCode> {
    let backup = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let records = crate::store::restore(&backup, data)?;
    println!("restored {records} records into {}", data.display());
    Ok(ExitCode::SUCCESS)
}

fn new_key(name: &str, role: &str) -> anyhow::Result<ExitCode> {
    let role_ok = ["pos", "marketing", "reporting", "admin"].contains(&role);
    anyhow::ensure!(
        role_ok,
        "--role must be pos, marketing, reporting or admin, not {role:?}"
    );
    let key = grpc::auth::new_key().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    println!("key (give it to {name}; it is not stored anywhere): {key}");
    println!("config file line, under api_keys:");
    println!(
        "  - {{ name: {name}, role: {role}, sha256: {} }}",
        grpc::auth::hash_key(&key)
    );
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
        let cases = rules::cases_file(&file);
        let results = rules::run_cases(&rules, &cases).map_err(|d| anyhow::anyhow!("{d}"))?;
        println!("{} (rules version {}):", cases.display(), rules.version);
        for result in results {
            match result.failure {
                None => {
                    passed += 1;
                    println!("  ok    {}", result.name);
                }
                Some(why) => {
                    failed += 1;
                    println!("  FAIL  {}: {why}", result.name);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
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

fn simulate(
    candidate: &std::path::Path,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    data: Option<PathBuf>,
    format: SimulationFormat,
) -> anyhow::Result<ExitCode> {
    let candidate = rules::load(candidate).map_err(|d| anyhow::anyhow!("{d}"))?;
    let data = data.unwrap_or_else(|| config::DEFAULT_DATA.into());
    let store = Store::open(&data).with_context(|| {
        format!(
            "opening {} (a running service holds it: simulate on a backup restored elsewhere)",
            data.display()
        )
    })?;
    let program = Program::new(store, Arc::new(candidate.clone()), program::system_clock());
    let simulation = program.simulate(&candidate, as_of)?;
    let tiers: Vec<String> = candidate.tiers.iter().map(|t| t.id.clone()).collect();
    match format {
        SimulationFormat::Table => print!("{}", simulation.to_table(&tiers)),
        SimulationFormat::Csv => print!("{}", simulation.to_csv()),
        SimulationFormat::Json => println!("{}", serde_json::to_string_pretty(&simulation)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// How `rules check` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

fn check(paths: Vec<PathBuf>, format: Format) -> ExitCode {
    let paths = or_default_rules(paths);
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
                diagnostics.extend(rules::lint(&rules, &file));
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
            diagnostics.iter().for_each(|d| println!("{d}"));
            summaries.iter().for_each(|s| println!("{s}"));
        }
        Format::Json => match serde_json::to_string_pretty(&diagnostics) {
            Ok(json) => println!("{json}"),
            Err(err) => eprintln!("tierd: cannot encode the diagnostics: {err}"),
        },
    }
    let failed = diagnostics
        .iter()
        .any(|d| d.severity == rules::Severity::Error);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
