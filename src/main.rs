//! The `tierd` binary: parse the command line, set up logging, run.

use std::{io::IsTerminal as _, process::ExitCode};

use clap::Parser;
use tracing_subscriber::EnvFilter;

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
        Err(err) => {
            eprintln!("tierd: {err:#}");
            ExitCode::FAILURE
        }
    }
}
