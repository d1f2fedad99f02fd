//! Fills a data directory with realistic synthetic members, placed by the
//! example rules, to try `tierd simulate` or the service on a program-sized
//! store: `cargo run --release --example seed -- DATA_DIR [MEMBERS]`
//! (default 100000; the directory must not be in use by a running tierd).

use std::{path::Path, time::Instant};

use tierd::{rules, store::Store, tools::seed};

/// The service's allocator (see `src/main.rs`): seeding 250,000 members
/// took 62 s with glibc's and 33 s with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = args.next().ok_or("usage: seed DATA_DIR [MEMBERS]")?;
    let count: u64 = args.next().map_or(Ok(100_000), |n| n.parse())?;
    let rules = rules::load(Path::new("rules/example.yaml"))?;
    let store = Store::open(Path::new(&data))?;
    let started = Instant::now();
    let written = seed::seed(&store, &rules, count, 42, chrono::Utc::now()).await?;
    println!(
        "{written} members written to {data} in {:.1?}",
        started.elapsed()
    );
    Ok(())
}
