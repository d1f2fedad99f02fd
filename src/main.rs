//! The `tierd` binary: parse the command line, set up logging, run.

use std::{io::IsTerminal as _, process::ExitCode};

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: the writer thread and the member
/// scans spend their time allocating and freeing (sled copies a leaf node
/// on every insert; every member decoded is a few dozen small allocations),
/// and glibc's `_int_malloc`/`malloc_consolidate` were a third of the
/// writer's profile. docs/performance.md has the figures before and after.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match tierd::cli::Cli::parse().run() {
        Ok(code) => code,
        // The reader went away (`tierd report ... | head`): everything it
        // wanted was written; say nothing, as other command-line tools do.
        Err(err) if closed_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tierd: {}", tierd::cli::failure_message(&err));
            ExitCode::FAILURE
        }
    }
}

fn closed_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
