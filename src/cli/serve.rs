//! `tierd serve`: start-up and shutdown, in order.
//!
//! Start-up: resolve the configuration, load the rules (a bad file stops
//! here with its diagnostics), open the data directory, register the
//! signals before serving (so that none can arrive while its default
//! action, ending the process at once, still applies), start the rules
//! watcher and the SIGHUP reloader, serve.
//!
//! Shutdown (SIGTERM or Ctrl-C): health turns NOT_SERVING, the server
//! stops accepting and drains the requests in flight (for at most
//! [`SHUTDOWN_GRACE`]), the background tasks are told to stop on a
//! cancellation token and are joined, every write is flushed and fsynced,
//! and only then is "tierd stopped" logged and the process exits 0.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{ServeArgs, watch};
use crate::{
    app::{Program, system_clock},
    config::{self, Config, ConfigFile},
    grpc, rules,
    store::Store,
    telemetry, webhook,
};

/// How long in-flight requests get to finish after SIGTERM or Ctrl-C.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the service until a signal stops it.
///
/// # Errors
/// A configuration, data directory or transport failure.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let watch_rules = !args.no_watch;
    let config = resolve(args)?;
    let tls = config.tls.as_ref().map(read_tls).transpose()?;
    let rules_path = config::rules_file(&config.rules)?;
    let rules = match rules::load(&rules_path) {
        Ok(rules) => rules,
        Err(rejected) => {
            eprintln!("{rejected}");
            eprintln!("tierd: not started: the rules file is invalid");
            return Ok(ExitCode::FAILURE);
        }
    };
    let store = Store::at(&config.store).with_context(|| format!("opening {}", config.store))?;
    let program = Arc::new(
        Program::new(store, Arc::new(rules), system_clock()).with_rules_file(rules_path.clone()),
    );
    let options = grpc::ServeOptions {
        limits: config.limits,
        keyring: config.keyring.clone(),
        tls,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run(program, &config, rules_path, watch_rules, options))
}

fn resolve(args: ServeArgs) -> anyhow::Result<Config> {
    let file = match &args.config {
        Some(path) => ConfigFile::read(path)?,
        None => ConfigFile::default(),
    };
    let tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| config::TlsFiles {
            cert,
            key,
            client_ca: args.tls_client_ca,
        });
    Ok(Config::resolve(
        args.listen,
        args.store.location(),
        args.rules,
        tls,
        args.metrics_listen,
        file,
    )?)
}

async fn run(
    program: Arc<Program>,
    config: &Config,
    rules_path: PathBuf,
    watch_rules: bool,
    options: grpc::ServeOptions,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(store = %config.store, rules = %rules_path.display(), "tierd starting");
    if config.keyring.is_open() {
        tracing::warn!(
            listen = %config.listen,
            "no api keys configured: every caller acts as admin; allowed only because the address is loopback"
        );
    }
    let signals = Signals::register().context("registering signal handlers")?;
    let stop = CancellationToken::new();
    if let Some(address) = config.metrics_listen {
        telemetry::serve(address)?;
        let version = program.rules().version.clone();
        metrics::gauge!(telemetry::RULES_ACTIVE, "version" => version).set(1.0);
        tokio::spawn(sample_sizes(Arc::clone(&program), stop.clone()));
    }
    let mut background: Vec<JoinHandle<()>> = vec![tokio::spawn(reload_on_sighup(
        Arc::clone(&program),
        signals.hangup,
        stop.clone(),
    ))];
    background.push(tokio::spawn({
        let program = Arc::clone(&program);
        let stop = stop.clone();
        async move { program.follow_rules(stop).await }
    }));
    background.extend(webhook::spawn_all(&program, config.webhooks.clone())?);
    if watch_rules {
        background.push(tokio::spawn(watch::reload_on_change(
            Arc::clone(&program),
            rules_path,
            stop.clone(),
        )));
    }
    serve_until_stopped(Arc::clone(&program), options, listener, signals.stopping).await?;
    stop.cancel();
    for task in background {
        let _ = task.await;
    }
    tracing::info!("rules watcher and reloader stopped");
    program
        .sync()
        .await
        .context("flushing the data directory")?;
    tracing::info!("every answered write is on disk");
    drop(program);
    tracing::info!("tierd stopped");
    Ok(ExitCode::SUCCESS)
}

/// Serves until SIGTERM or SIGINT, then drains requests in flight for at
/// most [`SHUTDOWN_GRACE`].
async fn serve_until_stopped(
    program: Arc<Program>,
    options: grpc::ServeOptions,
    listener: tokio::net::TcpListener,
    stopping: Stopping,
) -> anyhow::Result<()> {
    let (stop_requested, requested) = tokio::sync::oneshot::channel::<()>();
    let server = grpc::serve(listener, program, options, async {
        stopping.wait().await;
        let _ = stop_requested.send(());
    });
    tokio::select! {
        served = server => served?,
        () = async {
            let _ = requested.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still in flight after the grace period; stopping anyway"),
    }
    Ok(())
}

/// Reloads the rules on every SIGHUP until `stop`; a bad file is logged
/// and changes nothing.
/// How often the sizes metrics show are read.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Keeps the memory and store size metrics current, until `stop`.
async fn sample_sizes(program: Arc<Program>, stop: CancellationToken) {
    loop {
        if let Some(bytes) = telemetry::resident_bytes() {
            metrics::gauge!(telemetry::RESIDENT_BYTES).set(bytes as f64);
        }
        let sizing = Arc::clone(&program);
        match tokio::task::spawn_blocking(move || sizing.store_size()).await {
            Ok(Ok(bytes)) => metrics::gauge!(telemetry::STORE_BYTES).set(bytes as f64),
            Ok(Err(err)) => tracing::debug!(error = %err, "sizing the store failed"),
            Err(_) => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
    }
}

async fn reload_on_sighup(program: Arc<Program>, mut hangups: Signal, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            hangup = hangups.recv() => if hangup.is_none() { return },
        }
        match program.reload_rules().await {
            Ok((version, changed)) => {
                tracing::info!(rules_version = %version.version, changed, "SIGHUP: rules reloaded")
            }
            Err(err) => tracing::warn!(error = %err, "SIGHUP: rules not reloaded"),
        }
    }
}

/// The signals `serve` acts on.
struct Signals {
    stopping: Stopping,
    hangup: Signal,
}

/// SIGTERM and SIGINT (Ctrl-C): either stops the service.
struct Stopping {
    terminate: Signal,
    interrupt: Signal,
}

impl Stopping {
    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {},
            _ = self.interrupt.recv() => {},
        }
    }
}

impl Signals {
    fn register() -> std::io::Result<Self> {
        Ok(Self {
            stopping: Stopping {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            },
            hangup: signal(SignalKind::hangup())?,
        })
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
