//! `tierd member export ID`: everything stored about one member, as the
//! JSON document `ExportMember` sends (`crate::tools::export`), from a
//! stopped store (`--data`, `--store`) or a running service (`--server`
//! with an admin key), to a file (`--out`) or standard output.

use std::{io::Write as _, path::PathBuf, process::ExitCode};

use anyhow::Context as _;

use super::{ServerArgs, StoreArgs, authorized, open_stopped};
use crate::{grpc::pb, tools::export};

/// `tierd member` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum MemberCommand {
    /// Everything stored about one member as one JSON document (a member's
    /// request for their data): from a stopped store, or from a running
    /// service with --server and an admin key.
    Export {
        /// The member's id.
        member_id: String,
        /// Where to write it [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: ServerArgs,
    },
}

/// Runs `tierd member`.
///
/// # Errors
/// An unknown member, an unreachable store or service, a refused key, or
/// a failed write.
pub fn run(command: MemberCommand) -> anyhow::Result<ExitCode> {
    let MemberCommand::Export {
        member_id,
        out,
        store,
        remote,
    } = command;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let document = match &remote.server {
        Some(server) => runtime.block_on(from_server(server, remote.key.as_deref(), &member_id))?,
        None => {
            // A database's store works on this runtime, called from here.
            let _inside = runtime.enter();
            from_store(store, &member_id)?
        }
    };
    match out {
        Some(path) => std::fs::write(&path, &document)
            .with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout().lock().write_all(&document)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The export read from a stopped store.
fn from_store(store: StoreArgs, member_id: &str) -> anyhow::Result<Vec<u8>> {
    let store = open_stopped(store.location())?;
    export::export_json(&store, member_id, chrono::Utc::now())?
        .with_context(|| format!("no member {member_id:?}"))
}

/// The export a running service sends, its pieces put together.
async fn from_server(server: &str, key: Option<&str>, member_id: &str) -> anyhow::Result<Vec<u8>> {
    use tokio_stream::StreamExt as _;
    let mut client = pb::loyalty_client::LoyaltyClient::connect(server.to_owned())
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let request = authorized(
        pb::ExportMemberRequest {
            member_id: member_id.to_owned(),
        },
        key,
    )?;
    let mut chunks = client.export_member(request).await?.into_inner();
    let mut document = Vec::new();
    while let Some(chunk) = chunks.next().await {
        document.extend(chunk?.data);
    }
    Ok(document)
}
