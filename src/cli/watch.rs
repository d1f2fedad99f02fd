//! Reloads the rules when their file changes on disk.
//!
//! The directory is watched rather than the file, because editors often
//! save by writing a new file and renaming it over the old one. Events come
//! in bursts while a file is written, so a reload waits until the file has
//! been quiet for [`SETTLE`]. A file that fails validation is logged and
//! changes nothing (see [`crate::app::live_rules`]).

use std::{path::PathBuf, sync::Arc, time::Duration};

use notify::{RecursiveMode, Watcher as _};
use tokio_util::sync::CancellationToken;

use crate::app::Program;

/// How long the file must be quiet before it is read.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Watches `file` and reloads `program`'s rules after each change, until
/// `stop` is cancelled; then the watcher is dropped (its thread ends) and
/// this returns. Logs and gives up if the platform cannot watch.
pub async fn reload_on_change(program: Arc<Program>, file: PathBuf, stop: CancellationToken) {
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let watched = file.file_name().map(ToOwned::to_owned);
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            // The rules file, or a `.rhai` script beside it.
            let touches_rules = event.is_ok_and(|e| {
                e.paths.iter().any(|p| {
                    p.file_name() == watched.as_deref()
                        || p.extension().is_some_and(|x| x == "rhai")
                })
            });
            if touches_rules {
                let _ = changed.send(());
            }
        },
    ) {
        Ok(watcher) => watcher,
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch the rules file; reload with SIGHUP or ReloadRules");
            return;
        }
    };
    let directory = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), ToOwned::to_owned);
    if let Err(err) = watcher.watch(&directory, RecursiveMode::NonRecursive) {
        tracing::warn!(error = %err, directory = %directory.display(), "cannot watch the rules directory");
        return;
    }
    tracing::info!(file = %file.display(), "watching the rules file for changes");
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            change = changes.recv() => if change.is_none() { break },
        }
        // Let the burst of events of one save settle.
        while tokio::time::timeout(SETTLE, changes.recv())
            .await
            .is_ok_and(|e| e.is_some())
        {}
        match program.reload_rules().await {
            Ok((version, true)) => {
                tracing::info!(rules_version = %version.version, "rules file changed: reloaded")
            }
            Ok((_, false)) => {}
            Err(err) => tracing::warn!(error = %err, "rules file changed but was not reloaded"),
        }
    }
    tracing::debug!("rules watcher stopped");
}
