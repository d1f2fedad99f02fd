//! Fills a data directory with realistic synthetic members, placed by a
//! rules file, to try `tierd simulate`, the reports or the service on a
//! program-sized store:
//! `cargo run --release --example seed -- DATA_DIR [MEMBERS] [--rules FILE]`
//! (100000 members and `rules/example.yaml` by default; the directory must
//! not be in use by a running tierd). The rules used are recorded in the
//! store as the version in force, as `tierd serve` records them, so a
//! report on the directory needs no rules file of its own.

use std::{path::PathBuf, time::Instant};

use clap::Parser;
use tierd::{rules, store::Store, tools::seed};

/// What to seed.
#[derive(Parser, Debug)]
struct Args {
    /// The data directory to fill.
    data: PathBuf,
    /// How many members.
    #[arg(default_value_t = 100_000)]
    members: u64,
    /// The rules the members are placed by (and recorded as in force).
    #[arg(long, default_value = "rules/example.yaml")]
    rules: PathBuf,
    /// The day the programme has reached (RFC 3339) [default: now]: the
    /// same day gives the same members, so documented figures can be
    /// reproduced.
    #[arg(long)]
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Write every purchase's receipt too (about 30 a member), as a real
    /// store has them: sweeps and returns then cost what they do there.
    #[arg(long)]
    receipts: bool,
}

/// The service's allocator (see `src/main.rs`): seeding 250,000 members
/// took 62 s with glibc's and 33 s with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let rules = rules::load(&args.rules)?;
    let store = Store::open(&args.data)?;
    let as_of = args.as_of.unwrap_or_else(chrono::Utc::now);
    let started = Instant::now();
    let written =
        seed::seed_members(&store, &rules, args.members, 42, as_of, args.receipts).await?;
    println!(
        "{written} members written to {} in {:.1?}, placed by {} (version {}, recorded as in force)",
        args.data.display(),
        started.elapsed(),
        args.rules.display(),
        rules.version
    );
    Ok(())
}
