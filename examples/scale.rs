//! How tierd's whole-programme work scales: cold start, the sweep
//! (`EvaluateTiers` over every member), the what-if simulation and every
//! report over one seeded data directory, each in its own process, with its
//! wall time and peak resident memory (the kernel's `ru_maxrss` for that
//! process, what `/usr/bin/time -v` prints as "Maximum resident set size").
//!
//! ```sh
//! cargo build --release --bin tierd --example seed --example scale
//! target/release/examples/seed /tmp/s100k 100000
//! target/release/examples/scale /tmp/s100k
//! ```
//!
//! Run it from the repository root (it uses `rules/`). The order matters:
//! simulate and the reports read the seeded data as it is; then `tierd
//! serve` starts (cold start: process start to accepting connections and
//! answering health SERVING) and sweeps as of 30 days on (a monthly sweep:
//! the window moves on, so some members fall to at risk or lower and some
//! points expire), which writes what it finds, then sweeps again as of the
//! same moment (nothing is due). `--sweep-only` skips simulate and the
//! reports. Prints one Markdown table row per step, the first the raw scan
//! (every member's record walked in its own process, none decoded): what
//! reading alone costs, beside which the reports are measured.

use std::{
    process::{Child, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use tierd::grpc::{
    convert::timestamp,
    pb::{EvaluateTiersRequest, EvaluateTiersResponse, loyalty_client::LoyaltyClient},
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[path = "support/servers.rs"]
mod servers;

/// Every `tierd report` kind: each writes JSON to nowhere, `html` its page
/// to a temporary file.
const REPORTS: [&str; 10] = [
    "distribution",
    "migration",
    "value-ranks",
    "rfm",
    "value-bands",
    "segments",
    "clusters",
    "liability",
    "predict",
    "html",
];

/// Waits for `child` and reads what the kernel kept of it: its exit status
/// and its peak resident memory in KiB.
fn reap(child: &Child) -> anyhow::Result<(ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt as _;
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status = 0;
    // SAFETY: `usage` is a plain C struct the call fills in; `pid` is our
    // own child, which std has not waited for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    anyhow::ensure!(reaped == pid, "wait4: {}", std::io::Error::last_os_error());
    Ok((
        ExitStatus::from_raw(status),
        u64::try_from(usage.ru_maxrss)?,
    ))
}

fn row(step: &str, wall: Duration, peak_kib: u64, note: &str) {
    println!(
        "| {step} | {:.2} s | {} MiB | {note} |",
        wall.as_secs_f64(),
        peak_kib / 1024
    );
}

/// Runs one `tierd` command to the end, its output thrown away.
fn measure(step: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut tierd = servers::tierd()?;
    tierd.args(args);
    measure_command(step, tierd)
}

/// Runs `command` to the end, its output thrown away, and prints its row.
fn measure_command(step: &str, mut command: std::process::Command) -> anyhow::Result<()> {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let (status, peak) = reap(&child)?;
    anyhow::ensure!(status.success(), "{step}: {status}");
    row(step, started.elapsed(), peak, "");
    Ok(())
}

/// Starts `tierd serve`, waits for health SERVING, sweeps, then stops it
/// with SIGTERM (a clean shutdown) and reads its peak memory.
async fn serve_and_sweep(data: &str, days: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let server = servers::start_tierd(data.as_ref())?;
    let channel = Channel::from_shared(server.address.clone())?
        .connect()
        .await?;
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await?;
    let cold_start = started.elapsed();

    let mut client = LoyaltyClient::new(channel);
    let as_of = chrono::Utc::now() + chrono::Days::new(days);
    let first = sweep(&mut client, as_of).await?;
    let again = sweep(&mut client, as_of).await?;

    let pid = libc::pid_t::try_from(server.child.id())?;
    // SAFETY: signalling our own child, which has not been reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let (_, peak) = reap(&server.child)?;
    row(
        "cold start (`tierd serve` to health SERVING)",
        cold_start,
        peak,
        "",
    );
    for (step, (wall, report)) in [
        (
            "sweep (`EvaluateTiers` as of `--days` on: the month's due members)",
            first,
        ),
        ("sweep again, as of the same moment (nothing due)", again),
    ] {
        let note = format!(
            "{} evaluated, {} promoted, {} demoted, {} points expired; memory of the serve process",
            report.evaluated, report.promoted, report.demoted, report.points_expired
        );
        row(step, wall, peak, &note);
    }
    Ok(())
}

/// One sweep of every member due by `as_of`, timed.
async fn sweep(
    client: &mut LoyaltyClient<Channel>,
    as_of: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(Duration, EvaluateTiersResponse)> {
    let started = Instant::now();
    let report = client
        .evaluate_tiers(EvaluateTiersRequest {
            as_of: Some(timestamp(as_of)),
            ..EvaluateTiersRequest::default()
        })
        .await?
        .into_inner();
    Ok((started.elapsed(), report))
}

/// What to measure.
#[derive(clap::Parser)]
struct Args {
    /// A data directory seeded by `examples/seed`.
    data: String,
    /// Only start the service and sweep (twice), without simulate and
    /// the reports.
    #[arg(long)]
    sweep_only: bool,
    /// How many days on the sweeps are as of (another month on a store
    /// swept before: 60).
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// Walk every member's record without decoding it, then exit: the
    /// baseline beside the reports (`scale` runs itself with it, as a
    /// child, for its time and memory).
    #[arg(long, hide = true)]
    raw_scan: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args {
        data,
        sweep_only,
        days,
        raw_scan,
    } = clap::Parser::parse();
    if raw_scan {
        let store = tierd::store::Store::open(data.as_ref())?;
        let members = store
            .raw_members()
            .try_fold(0_u64, |n, raw| raw.map(|_| n + 1))?;
        eprintln!("{members} members walked");
        return Ok(());
    }
    println!("| step | wall | peak RSS | |\n|---|---|---|---|");
    if !sweep_only {
        simulate_and_report(&data)?;
    }
    serve_and_sweep(&data, days).await
}

/// Every whole-programme command that reads the data directory as it is,
/// after the raw scan they are read beside.
fn simulate_and_report(data: &str) -> anyhow::Result<()> {
    let mut raw_scan = std::process::Command::new(std::env::current_exe()?);
    raw_scan.args([data, "--raw-scan"]);
    measure_command(
        "raw scan (every member's record walked, none decoded)",
        raw_scan,
    )?;
    measure(
        "simulate (`rules/example.yaml` as the candidate)",
        &[
            "simulate",
            "--rules",
            "rules/example.yaml",
            "--data",
            data,
            "--format",
            "json",
        ],
    )?;
    let page = tempfile::NamedTempFile::new()?;
    let page = page
        .path()
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("temp path"))?;
    for kind in REPORTS {
        let output = if kind == "html" {
            ["--out", page]
        } else {
            ["--format", "json"]
        };
        let args = [["report", kind, "--data", data].as_slice(), &output].concat();
        measure(&format!("report {kind}"), &args)?;
    }
    Ok(())
}
