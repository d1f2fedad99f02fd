//! The single writer thread: every change runs here as a job, one after
//! another, and is answered only once it is on disk.
//!
//! The writer works in rounds (group commit): it runs every queued job,
//! then flushes sled and `fdatasync`s its data file once for the whole
//! round, then answers the round's jobs. The fdatasync is needed because
//! sled 0.34 writes its log with `sync_file_range`, which (sled issue
//! #1351) flushes neither the file size nor the drive's write cache.
//! Rounds, rather than a flusher thread beside the writer, because sled's
//! `apply_batch` takes a global lock that its `flush` holds for the whole
//! I/O: a concurrent flusher stalls the writer after every batch (measured:
//! rounds of about 5 writes, where the round design gathers about 30 at 64
//! requests in flight). `flush_async` is never used: it deadlocks under
//! concurrency in sled 0.34 (sled issue #1308).
//!
//! sled writes a log message larger than a quarter of a segment (128 KiB:
//! a member with many long attributes, a large node rewrite) to its own
//! file under `blobs/`, and never fsyncs it. A round therefore also fsyncs
//! the blob files that appeared since the last round (and the directory
//! that names them) before the data file: listing a directory of a few
//! files costs microseconds, and a round that wrote no blob fsyncs nothing
//! more.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    ffi::OsString,
    fs::File,
    path::PathBuf,
    thread,
};

use tokio::sync::oneshot;

use super::{
    Commit, EraseCommit, StoreError, codec, keys,
    records::{
        AliasRecord, ErasureRecord, HistoryRecord, MemberRecord, OrderRecord, RulesVersionRecord,
    },
};
use crate::{
    domain::{
        decide::HistoryEntry,
        member::MemberState,
        merge::Alias,
        receipt::{OrderRedemptions, Receipt},
    },
    rules::RulesVersion,
    telemetry,
};

/// What a write job gets: reads of the current state and one atomic commit.
/// Only the writer thread ever holds one, so whatever a job reads stays true
/// until it commits.
///
/// Commits go to the round's overlay, not to sled: reads look in the
/// overlay first, so the jobs of one round see each other's commits in
/// order, and the round applies the overlay as one sled batch at its end
/// ([`SledWriter::apply_pending`]). A request's commit enters the overlay
/// whole or not at all, so it is in the round's batch whole or not at all.
pub struct SledWriter {
    pub(super) next_seq: u64,
    pub(super) tree: sled::Tree,
    /// Set by a commit; the round then ends with a flush.
    dirty: bool,
    /// The round's commits, key -> value (`None`: removed), not yet in
    /// sled.
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// `next_seq` as sled has it: where a failed round goes back to.
    applied_seq: u64,
}

/// Queued writes before senders wait (backpressure instead of an
/// unbounded queue).
const WRITE_QUEUE: usize = 1024;

/// Most jobs in one round, so a round's latency stays bounded.
const MAX_ROUND: usize = 512;

/// Hands a job's result to its caller once the round is durable (or not).
type Delivery = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Job = Box<dyn FnOnce(&mut SledWriter) -> Delivery + Send>;

/// The writer thread and its queue. Dropping it lets the queued jobs finish,
/// stops the thread and waits for it (after its final flush), so the data
/// directory is released when the store is dropped.
pub(super) struct WriterThread {
    jobs: Option<tokio::sync::mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl SledWriter {
    /// A writer over `tree`, numbering history from `next_seq`.
    pub(super) fn new(tree: sled::Tree, next_seq: u64) -> Self {
        Self {
            next_seq,
            tree,
            dirty: false,
            pending: HashMap::new(),
            applied_seq: next_seq,
        }
    }

    /// Applies the round's overlay to sled as one batch (all of it or
    /// nothing). On failure the overlay is dropped and the seq counter goes
    /// back: the round's requests fail, and nothing of them was written.
    ///
    /// # Errors
    /// When sled refuses the batch.
    pub(super) fn apply_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let keys = self.pending.len() as u64;
        let bytes: usize = self
            .pending
            .iter()
            .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
            .sum();
        metrics::counter!(telemetry::WRITTEN_KEYS).increment(keys);
        metrics::counter!(telemetry::WRITTEN_BYTES).increment(bytes as u64);
        for (key, value) in self.pending.drain() {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        match self.tree.apply_batch(batch) {
            Ok(()) => {
                self.applied_seq = self.next_seq;
                Ok(())
            }
            Err(err) => {
                self.next_seq = self.applied_seq;
                Err(err.into())
            }
        }
    }

    /// Reads the value at `key` as this round sees it (its overlay, then
    /// sled) with `read`, without copying it.
    fn read_value<T>(
        &self,
        key: &[u8],
        read: impl FnOnce(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self.pending.get(key) {
            Some(value) => value.as_deref().map(read).transpose(),
            None => self.tree.get(key)?.as_deref().map(read).transpose(),
        }
    }

    /// The record at `key` as this round sees it.
    fn get<R, T>(&self, key: &[u8]) -> Result<Option<T>, StoreError>
    where
        R: serde::de::DeserializeOwned,
        T: TryFrom<R, Error = super::records::BadTime>,
    {
        self.read_value(key, |bytes| super::from_bytes::<R, T>(key, bytes))
    }

    /// The due moment the member value at `key` holds (`None`: no member
    /// stored yet), as this round sees it.
    fn stored_due(&self, key: &[u8]) -> Result<Option<keys::DueBytes>, StoreError> {
        self.read_value(key, |bytes| {
            codec::split_member(key, bytes).map(|value| value.due.unwrap_or(keys::DUE_UNKNOWN))
        })
    }

    /// Moves `member_id`'s entry in the due index from `old` (`None`: it has
    /// none yet) to `new`; nothing when it stays.
    fn move_due(
        member_id: &str,
        old: Option<keys::DueBytes>,
        new: keys::DueBytes,
        batch: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) {
        if old == Some(new) {
            return;
        }
        if let Some(old) = old {
            batch.push((keys::due(&old, member_id), None));
        }
        batch.push((keys::due(&new, member_id), Some(Vec::new())));
    }

    /// The seqs the next `count` history entries get: the counter's next
    /// ones, taken by the commit that stores them.
    pub fn seqs(&self, count: usize) -> Vec<u64> {
        (self.next_seq..).take(count).collect()
    }

    /// Makes the current round end with a flush even if nothing was
    /// committed (a durability barrier).
    pub(super) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Applies a commit atomically. History entries must be numbered from
    /// [`SledWriter::seqs`] gave, without gaps.
    ///
    /// # Errors
    /// On a storage failure; then nothing was written.
    pub fn commit(&mut self, commit: &Commit) -> Result<(), StoreError> {
        // Built apart first, so that the overlay takes the commit whole.
        let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let dues: HashMap<&str, keys::DueBytes> = commit
            .dues
            .iter()
            .map(|(id, due)| {
                let moment = due.at.map(|t| t.timestamp_micros());
                (id.as_str(), keys::due_bytes(due.rules, moment))
            })
            .collect();
        for member in &commit.members {
            let key = keys::member(&member.member_id);
            let old = self.stored_due(&key)?;
            // A member stored without a moment keeps the one it had; a new
            // one is due at once.
            let new = dues
                .get(member.member_id.as_str())
                .copied()
                .or(old)
                .unwrap_or(keys::DUE_UNKNOWN);
            Self::move_due(&member.member_id, old, new, &mut batch);
            let value = codec::encode_member(&new, &MemberRecord::from(member));
            batch.push((key, Some(value)));
        }
        let stored: HashSet<&str> = commit
            .members
            .iter()
            .map(|m| m.member_id.as_str())
            .collect();
        for (&member_id, &new) in &dues {
            if stored.contains(member_id) {
                continue;
            }
            // Only the moment moved: the member's value is rewritten with
            // it, its record's bytes as they are.
            let key = keys::member(member_id);
            let moved = self.read_value(&key, |bytes| {
                let old = codec::split_member(&key, bytes)?
                    .due
                    .unwrap_or(keys::DUE_UNKNOWN);
                if old == new {
                    return Ok(None);
                }
                codec::with_due(&key, bytes, &new).map(|value| Some((old, value)))
            })?;
            if let Some(Some((old, value))) = moved {
                Self::move_due(member_id, Some(old), new, &mut batch);
                batch.push((key, Some(value)));
            }
        }
        for member_id in &commit.removed_members {
            let key = keys::member(member_id);
            if let Some(old) = self.stored_due(&key)? {
                batch.push((keys::due(&old, member_id), None));
            }
            batch.push((key, None));
        }
        for alias in &commit.aliases {
            let key = keys::alias(&alias.member_id);
            if let Some(old) = self.alias(&alias.member_id)? {
                batch.push((keys::alias_into(&old.into, &alias.member_id), None));
            }
            batch.push((key, Some(codec::encode(&AliasRecord::from(alias)))));
            batch.push((
                keys::alias_into(&alias.into, &alias.member_id),
                Some(Vec::new()),
            ));
        }
        for (id, receipt) in &commit.receipts {
            batch.push((keys::receipt(id), Some(super::receipt_to_bytes(receipt))));
        }
        for (member_id, order_id) in &commit.removed_orders {
            batch.push((keys::order(member_id, order_id), None));
        }
        for (member_id, order_id, order) in &commit.orders {
            let record = OrderRecord::from(order);
            batch.push((
                keys::order(member_id, order_id),
                Some(codec::encode(&record)),
            ));
        }
        let mut next_seq = self.next_seq;
        for entry in &commit.history {
            debug_assert_eq!(entry.seq, next_seq, "history seqs must be gap-free");
            let record = HistoryRecord::from(entry);
            batch.push((keys::history(entry.seq), Some(codec::encode(&record))));
            batch.push((keys::index(&entry.member_id, entry.seq), Some(Vec::new())));
            next_seq = entry.seq + 1;
        }
        if next_seq != self.next_seq {
            batch.push((
                keys::NEXT_SEQ.to_vec(),
                Some(next_seq.to_be_bytes().to_vec()),
            ));
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.pending.extend(batch);
        self.next_seq = next_seq;
        self.dirty = true;
        Ok(())
    }

    /// Applies an erasure atomically (see [`super::Writer::erase`]).
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn erase(&mut self, erasure: &EraseCommit) -> Result<(), StoreError> {
        let pseudonym = erasure.member.member_id.as_str();
        let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for id in &erasure.ids {
            let key = keys::member(id);
            if let Some(old) = self.stored_due(&key)? {
                batch.push((keys::due(&old, id), None));
            }
            batch.push((key, None));
            for key in self.prefixed(&keys::index_prefix(id))?.into_keys() {
                batch.push((key, None));
            }
            if let Some(alias) = self.alias(id)? {
                batch.push((keys::alias(id), None));
                batch.push((keys::alias_into(&alias.into, id), None));
            }
            let prefix = keys::order_prefix(id);
            for (key, value) in self.prefixed(&prefix)? {
                let order_id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                batch.push((key, None));
                batch.push((keys::order(pseudonym, &order_id), Some(value)));
            }
        }
        let moment = erasure.due.at.map(|t| t.timestamp_micros());
        let due = keys::due_bytes(erasure.due.rules, moment);
        batch.push((keys::due(&due, pseudonym), Some(Vec::new())));
        let record = MemberRecord::from(&erasure.member);
        batch.push((
            keys::member(pseudonym),
            Some(codec::encode_member(&due, &record)),
        ));
        for (id, receipt) in &erasure.receipts {
            batch.push((keys::receipt(id), Some(super::receipt_to_bytes(receipt))));
        }
        for entry in &erasure.history {
            let record = HistoryRecord::from(entry);
            batch.push((keys::history(entry.seq), Some(codec::encode(&record))));
            batch.push((keys::index(pseudonym, entry.seq), Some(Vec::new())));
        }
        batch.push((
            keys::erasure(pseudonym),
            Some(codec::encode(&ErasureRecord::from(&erasure.erasure))),
        ));
        self.pending.extend(batch);
        self.dirty = true;
        Ok(())
    }

    /// Records that a rules version went live.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn record_rules_version(&mut self, version: &RulesVersion) -> Result<(), StoreError> {
        self.apply_pending()?;
        let last = self
            .tree
            .scan_prefix(keys::RULES)
            .keys()
            .next_back()
            .transpose()?;
        let next = last
            .and_then(|key| keys::number_after(keys::RULES, &key))
            .map_or(0, |n| n + 1);
        let record = RulesVersionRecord::from(version);
        self.tree
            .insert(keys::rules_version(next), codec::encode(&record))?;
        self.dirty = true;
        Ok(())
    }

    /// The rules version recorded last, if any.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn last_rules_version(&self) -> Result<Option<RulesVersion>, StoreError> {
        super::embedded::last_rules_version(&self.tree)
    }

    /// Keeps `seq` as the last history entry the webhook endpoint `name`
    /// delivered; durable with the round.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn set_delivery_position(&mut self, name: &str, seq: u64) -> Result<(), StoreError> {
        self.pending
            .insert(keys::delivery(name), Some(seq.to_be_bytes().to_vec()));
        self.dirty = true;
        Ok(())
    }

    /// A member's state, as this writer last committed it.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn member(&self, member_id: &str) -> Result<Option<MemberState>, StoreError> {
        let key = keys::member(member_id);
        self.read_value(&key, |bytes| super::member_from_bytes(&key, bytes))
    }

    /// A transaction id's receipt, as this writer last committed it.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn receipt(&self, transaction_id: &str) -> Result<Option<Receipt>, StoreError> {
        let key = keys::receipt(transaction_id);
        self.read_value(&key, |bytes| super::receipt_from_bytes(&key, bytes))
    }

    /// The redemptions of `member_id` against the order `order_id`, if any.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn order(
        &self,
        member_id: &str,
        order_id: &str,
    ) -> Result<Option<OrderRedemptions>, StoreError> {
        self.get::<OrderRecord, _>(&keys::order(member_id, order_id))
    }

    /// Every order `member_id` redeemed against, by order id, as this round
    /// sees them.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn orders_of(
        &self,
        member_id: &str,
    ) -> Result<Vec<(String, OrderRedemptions)>, StoreError> {
        let prefix = keys::order_prefix(member_id);
        self.prefixed(&prefix)?
            .iter()
            .map(|(key, value)| super::embedded::order_entry(prefix.len(), key, value))
            .collect()
    }

    /// The alias of `member_id`, if it was merged into another member.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn alias(&self, member_id: &str) -> Result<Option<Alias>, StoreError> {
        self.get::<AliasRecord, _>(&keys::alias(member_id))
    }

    /// The aliases that lead to `into`, by id, as this round sees them.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn aliases_into(&self, into: &str) -> Result<Vec<Alias>, StoreError> {
        let prefix = keys::aliases_into_prefix(into);
        let mut aliases = Vec::new();
        for key in self.prefixed(&prefix)?.keys() {
            let id = String::from_utf8_lossy(&key[prefix.len()..]);
            let alias = self.alias(&id)?.ok_or_else(|| {
                StoreError::corrupt(key, "an alias index entry without its alias")
            })?;
            aliases.push(alias);
        }
        Ok(aliases)
    }

    /// The keys under `prefix` and their values, as this round sees them
    /// (sled, then the overlay's changes).
    fn prefixed(&self, prefix: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut found = BTreeMap::new();
        for item in self.tree.scan_prefix(prefix) {
            let (key, value) = item?;
            found.insert(key.to_vec(), value.to_vec());
        }
        for (key, value) in self.pending.iter().filter(|(k, _)| k.starts_with(prefix)) {
            match value {
                Some(value) => found.insert(key.clone(), value.clone()),
                None => found.remove(key),
            };
        }
        Ok(found)
    }

    /// The history entry numbered `seq`.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn history_entry(&self, seq: u64) -> Result<Option<HistoryEntry>, StoreError> {
        self.get::<HistoryRecord, _>(&keys::history(seq))
    }
}

/// Starts the writer thread. Each round takes the queued jobs (at least
/// one, at most [`MAX_ROUND`]) and runs them one after another; if any
/// committed, it flushes sled and fdatasyncs the data file once; then it
/// tells `durable` the first history seq not yet on disk (the tier-change
/// stream reads only below it), and answers the round's jobs. A job that panics ends only its own request
/// (its caller sees `WriterStopped`); the thread goes on with the next.
pub(super) fn spawn(
    mut writer: SledWriter,
    mut disk: Disk,
    durable: tokio::sync::watch::Sender<u64>,
) -> Result<WriterThread, StoreError> {
    let (jobs, mut queue) = tokio::sync::mpsc::channel::<Job>(WRITE_QUEUE);
    let thread = thread::Builder::new()
        .name("tierd-writer".into())
        .spawn(move || {
            let mut round = Vec::with_capacity(MAX_ROUND);
            while let Some(first) = queue.blocking_recv() {
                round.push(first);
                while round.len() < MAX_ROUND {
                    match queue.try_recv() {
                        Ok(job) => round.push(job),
                        Err(_) => break,
                    }
                }
                let deliveries: Vec<Delivery> = round
                    .drain(..)
                    .filter_map(|job| run_job(job, &mut writer))
                    .collect();
                metrics::histogram!(telemetry::ROUND_JOBS).record(deliveries.len() as f64);
                let flush_error = if std::mem::take(&mut writer.dirty) {
                    let started = std::time::Instant::now();
                    let failed = writer
                        .apply_pending()
                        .err()
                        .or_else(|| disk.make_durable().err());
                    metrics::histogram!(telemetry::FSYNC_SECONDS)
                        .record(started.elapsed().as_secs_f64());
                    failed
                } else {
                    None
                };
                if let Some(err) = &flush_error {
                    tracing::error!(error = %err, "flushing the data directory failed");
                } else {
                    let next_seq = writer.next_seq;
                    durable.send_if_modified(|durable| {
                        let moved = *durable != next_seq;
                        *durable = next_seq;
                        moved
                    });
                }
                tracing::trace!(jobs = deliveries.len(), "write round");
                for deliver in deliveries {
                    deliver(flush_error.as_ref());
                }
            }
            if let Err(err) = disk.make_durable() {
                tracing::error!(error = %err, "final flush failed");
            }
        })?;
    Ok(WriterThread {
        jobs: Some(jobs),
        thread: Some(thread),
    })
}

impl WriterThread {
    /// Queues `job` and returns its result once whatever it committed is on
    /// disk.
    pub(super) async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SledWriter) -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |writer| {
            let value = job(writer);
            Box::new(move |flush_error: Option<&StoreError>| {
                let answer = match flush_error {
                    None => Ok(value),
                    Some(err) => Err(StoreError::Durability(err.to_string())),
                };
                // A caller that gave up (client gone) is no error.
                let _ = done.send(answer);
            })
        });
        self.jobs
            .as_ref()
            .ok_or(StoreError::WriterStopped)?
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        result.await.map_err(|_| StoreError::WriterStopped)?
    }
}

fn run_job(job: Job, writer: &mut SledWriter) -> Option<Delivery> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(writer)));
    if outcome.is_err() {
        tracing::error!(
            "a write job panicked; its request failed (a retry finds whatever it committed)"
        );
    }
    outcome.ok()
}

/// What a round makes durable: sled's log file and its blob files.
pub(super) struct Disk {
    db: sled::Db,
    data_file: File,
    blobs: PathBuf,
    /// Blob files fsynced already.
    synced_blobs: HashSet<OsString>,
}

impl Disk {
    /// The files of `db`, open on `dir`.
    ///
    /// # Errors
    /// When sled's data file cannot be opened.
    pub(super) fn open(db: sled::Db, dir: &std::path::Path) -> Result<Self, StoreError> {
        Ok(Self {
            db,
            data_file: File::open(dir.join("db"))?,
            blobs: dir.join("blobs"),
            synced_blobs: HashSet::new(),
        })
    }

    /// Flushes sled's log, fsyncs new blob files, then fdatasyncs the log:
    /// see the module comment.
    ///
    /// # Errors
    /// When sled or the file system fails.
    pub(super) fn make_durable(&mut self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.sync_new_blobs()?;
        self.data_file.sync_data()?;
        Ok(())
    }

    fn sync_new_blobs(&mut self) -> Result<(), StoreError> {
        let Ok(entries) = std::fs::read_dir(&self.blobs) else {
            return Ok(());
        };
        let mut present = HashSet::new();
        let mut new = false;
        for entry in entries {
            let name = entry?.file_name();
            if !self.synced_blobs.contains(&name) {
                File::open(self.blobs.join(&name))?.sync_data()?;
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&self.blobs)?.sync_all()?;
        }
        self.synced_blobs = present;
        Ok(())
    }
}
