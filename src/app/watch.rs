//! The tier-change feed: every history entry in `seq` order, from any
//! point, then live, for the `WatchTierChanges` stream and the webhooks.
//!
//! A reader only ever reads entries that are on disk (below the store's
//! durable seq), so what it sees never disappears in a crash, and a client
//! that reconnects with the last `seq` it saw misses nothing and sees
//! nothing twice. Readers pull pages from the store at their own pace: a
//! slow reader holds one page and whatever its channel buffers, never more,
//! and never slows a write (the writer only publishes a number).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Program, ProgramError};
use crate::{
    domain::decide::{ChangeKind, HistoryEntry},
    telemetry,
};

/// History entries read from the store at a time.
pub const PAGE: usize = 256;

/// Entries buffered per stream ahead of its client.
pub const STREAM_BUFFER: usize = 64;

/// Which entries a reader wants: empty lists admit everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchFilter {
    /// Only entries of these kinds.
    pub kinds: Vec<ChangeKind>,
    /// Only entries from or to one of these tiers.
    pub tiers: Vec<String>,
}

impl WatchFilter {
    /// Whether `entry` passes.
    pub fn admits(&self, entry: &HistoryEntry) -> bool {
        let change = &entry.change;
        (self.kinds.is_empty() || self.kinds.contains(&change.kind))
            && (self.tiers.is_empty()
                || self
                    .tiers
                    .iter()
                    .any(|t| *t == change.from_tier || *t == change.to_tier))
    }
}

/// The answer of one wait for entries: those admitted, and the seq to read
/// after next time (past the entries the filter left out too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Admitted entries, in seq order.
    pub entries: Vec<HistoryEntry>,
    /// The last seq read.
    pub last_seq: u64,
}

impl Program {
    /// Waits until durable entries after `after` exist, then returns up to
    /// [`PAGE`] of them that `filter` admits (possibly none, when the
    /// filter left them all out). `None` once the program stops streaming.
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn tier_changes_after(
        &self,
        after: u64,
        filter: &WatchFilter,
    ) -> Result<Option<Page>, ProgramError> {
        let mut durable = self.store.durable_seqs();
        let mut stopping = self.stopping.subscribe();
        loop {
            if *stopping.borrow_and_update() {
                return Ok(None);
            }
            let below = *durable.borrow_and_update();
            let read = self.store.history_between(after, below, PAGE)?;
            if let Some(last) = read.last() {
                let last_seq = last.seq;
                let entries = read.into_iter().filter(|e| filter.admits(e)).collect();
                return Ok(Some(Page { entries, last_seq }));
            }
            tokio::select! {
                changed = durable.changed() => if changed.is_err() { return Ok(None) },
                _ = stopping.changed() => {}
            }
        }
    }

    /// Streams the entries after `from_seq` that `filter` admits, then new
    /// ones as they become durable, until the receiver is dropped or the
    /// program stops streaming (the last item is then an error saying so).
    pub fn watch_tier_changes(
        self: &Arc<Self>,
        from_seq: u64,
        filter: WatchFilter,
    ) -> mpsc::Receiver<Result<HistoryEntry, ProgramError>> {
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let program = Arc::clone(self);
        tokio::spawn(async move {
            let _open = OpenStream::counted();
            let mut after = from_seq;
            loop {
                let page = tokio::select! {
                    page = program.tier_changes_after(after, &filter) => page,
                    () = sender.closed() => return,
                };
                let page = match page {
                    Ok(Some(page)) => page,
                    Ok(None) => {
                        // Best effort: a client too slow to take it just
                        // sees the stream end.
                        let _ = sender.try_send(Err(ProgramError::Unavailable(format!(
                            "tierd is stopping: reconnect with from_seq {after}"
                        ))));
                        return;
                    }
                    Err(err) => {
                        let _ = sender.send(Err(err)).await;
                        return;
                    }
                };
                for entry in page.entries {
                    let behind = (program.now() - entry.change.at).as_seconds_f64();
                    metrics::histogram!(telemetry::WATCH_LAG_SECONDS).record(behind.max(0.0));
                    if sender.send(Ok(entry)).await.is_err() {
                        return;
                    }
                }
                after = page.last_seq;
            }
        });
        receiver
    }

    /// The last seq the webhook endpoint `name` delivered (0: none yet).
    ///
    /// # Errors
    /// On a storage failure.
    pub fn delivery_position(&self, name: &str) -> Result<u64, ProgramError> {
        Ok(self.store.delivery_position(name)?)
    }

    /// Keeps `seq` as the last entry `name` delivered; returns once durable.
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn save_delivery_position(&self, name: &str, seq: u64) -> Result<(), ProgramError> {
        let name = name.to_owned();
        self.store
            .write(move |writer| writer.set_delivery_position(&name, seq))
            .await??;
        Ok(())
    }

    /// Resolves once the program stops streaming (at shutdown).
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        // An error means the program is gone: stopped too.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// Whether the store can be reached (see
    /// [`crate::store::Store::reachable`]).
    pub fn store_reachable(&self) -> tokio::sync::watch::Receiver<bool> {
        self.store.reachable()
    }

    /// Ends every tier-change stream (at shutdown, so that draining the
    /// in-flight requests does not wait for clients that never hang up).
    pub fn stop_streaming(&self) {
        self.stopping.send_replace(true);
    }
}

/// Counts a stream in [`telemetry::WATCH_STREAMS`] while it is open.
struct OpenStream;

impl OpenStream {
    fn counted() -> Self {
        metrics::gauge!(telemetry::WATCH_STREAMS).increment(1.0);
        Self
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(telemetry::WATCH_STREAMS).decrement(1.0);
    }
}
