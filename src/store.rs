//! Durable state in sled: layout, encoding, atomic commits, group fsync.
//!
//! # Layout
//! One sled tree, `tierd`, with a key prefix per kind of record:
//!
//! | key                                  | value                       |
//! |--------------------------------------|-----------------------------|
//! | `meta/format`                        | data format version, u32 BE |
//! | `meta/next_seq`                      | next history seq, u64 BE    |
//! | `m/{member_id}`                      | [`MemberState`]             |
//! | `t/{transaction_id}`                 | [`TxnRecord`]               |
//! | `h/{seq, u64 BE}`                    | [`HistoryEntry`]            |
//! | `i/{member_id} 0xFF {seq, u64 BE}`   | empty (per-member index)    |
//! | `r/{n, u64 BE}`                      | [`RulesVersion`], n-th live |
//!
//! A backup ([`Writer::snapshot`], [`restore`]) is `TIERDBK1`, the data
//! format (u32 BE), every key/value pair length-prefixed (u32 BE), and a
//! SHA-256 of all of it.
//!
//! Ids are UTF-8, which never contains the byte 0xFF, so the index key is
//! unambiguous and sorts a member's entries by seq. Values are one format
//! version byte followed by the record in `postcard` encoding.
//!
//! # Promises
//! - **Atomic**: everything one request changes (member, idempotency
//!   record, history entries, index, seq counter) goes in one sled batch,
//!   applied all or nothing.
//! - **One writer**: every change runs as a job on a single writer thread
//!   ([`Store::write`]), one after another, so a read-modify-write of a
//!   member never interleaves with another and no async worker ever blocks
//!   on a lock. Readers go to sled directly.
//! - **Gap-free seq**: seqs are handed out by the writer thread and the
//!   counter is stored in the same batch as the entries that use them.
//! - **Durable when answered**: [`Store::write`] returns a job's result only
//!   after its commit is on disk. The writer works in rounds (group commit):
//!   it runs every queued job, then flushes sled and `fdatasync`s its data
//!   file once for the whole round, then answers the round's jobs. The
//!   fdatasync is needed because sled 0.34 writes its log with
//!   `sync_file_range`, which (sled issue #1351) flushes neither the file
//!   size nor the drive's write cache. Rounds, rather than a flusher thread
//!   beside the writer, because sled's `apply_batch` takes a global lock
//!   that its `flush` holds for the whole I/O: a concurrent flusher stalls
//!   the writer after every batch (measured: rounds of about 5 writes, where
//!   the round design gathers about 30 at 64 requests in flight).
//!   `flush_async` is never used: it deadlocks under concurrency in sled
//!   0.34 (sled issue #1308).
//! - Readers may see a commit a moment (one round, about a millisecond)
//!   before it is durable; nothing is *answered* as done before that.

use std::{fs::File, path::Path, thread};

use serde::{Serialize, de::DeserializeOwned};
use sha2::Digest as _;
use tokio::sync::oneshot;

use crate::ledger::{HistoryEntry, MemberState, TxnRecord};

/// The data format this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// Value encoding version (the first byte of every value).
const VALUE_VERSION: u8 = 1;

const FORMAT_KEY: &[u8] = b"meta/format";
const NEXT_SEQ_KEY: &[u8] = b"meta/next_seq";

/// Why the store failed. Callers treat every variant as an internal error:
/// the request changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    /// sled failed.
    Sled(#[from] sled::Error),
    #[error("i/o on the data directory: {0}")]
    /// The file system failed.
    Io(#[from] std::io::Error),
    /// A stored value this build cannot decode.
    #[error("undecodable record at key {key:?}: {reason}")]
    Corrupt {
        /// The key whose value is unreadable.
        key: String,
        /// What the decoder said.
        reason: String,
    },
    /// The data directory was written by another format version.
    #[error(
        "the data directory has format version {found}, but this tierd reads version {supported}"
    )]
    FormatVersion {
        /// The directory's version.
        found: u32,
        /// This build's version.
        supported: u32,
    },
    #[error("the writer thread has stopped")]
    /// The writer thread is gone (shutting down, or a job panicked).
    WriterStopped,
    #[error("making the commit durable failed: {0}")]
    /// The commit was made but the flush failed.
    Durability(String),
}

/// A member record as stored, decoded only when needed.
pub struct RawMember {
    key: sled::IVec,
    value: sled::IVec,
}

impl RawMember {
    /// The member's state.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an undecodable record.
    pub fn decode(&self) -> Result<MemberState, StoreError> {
        decode(&self.key, &self.value)
    }
}

/// Everything one request writes, committed together by [`Writer::commit`].
#[derive(Debug, Default)]
pub struct Commit {
    /// Member states to store.
    pub members: Vec<MemberState>,
    /// Idempotency records to store, by transaction id.
    pub txns: Vec<(String, TxnRecord)>,
    /// Entries numbered from [`Writer::next_seq`] on, in order.
    pub history: Vec<HistoryEntry>,
}

/// The durable store. Cheap to share behind an `Arc`.
pub struct Store {
    tree: sled::Tree,
    writer: WriterThread,
}

/// Queued writes before senders wait (backpressure instead of an
/// unbounded queue).
const WRITE_QUEUE: usize = 1024;

/// Most jobs in one round, so a round's latency stays bounded.
const MAX_ROUND: usize = 512;

/// Hands a job's result to its caller once the round is durable (or not).
type Delivery = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Job = Box<dyn FnOnce(&mut Writer) -> Delivery + Send>;

/// The writer thread and its queue. Dropping it lets the queued jobs finish,
/// stops the thread and waits for it, so the data directory is released
/// when the store is dropped (a restarted server can open it at once).
struct WriterThread {
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

/// What a write job gets: reads of the current state and one atomic commit.
/// Only the writer thread ever holds one, so whatever a job reads stays true
/// until it commits.
pub struct Writer {
    next_seq: u64,
    tree: sled::Tree,
    /// Set by a commit; the round then ends with a flush.
    dirty: bool,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = vec![VALUE_VERSION];
    // Serializing our own plain data into a Vec cannot fail.
    bytes.extend(postcard::to_stdvec(value).unwrap_or_default());
    bytes
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason,
    };
    match bytes.split_first() {
        Some((&VALUE_VERSION, body)) => {
            postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))
        }
        Some((version, _)) => Err(corrupt(format!("unknown value version {version}"))),
        None => Err(corrupt("empty value".into())),
    }
}

fn member_key(member_id: &str) -> Vec<u8> {
    [b"m/", member_id.as_bytes()].concat()
}

fn txn_key(transaction_id: &str) -> Vec<u8> {
    [b"t/", transaction_id.as_bytes()].concat()
}

fn history_key(seq: u64) -> Vec<u8> {
    [b"h/".as_slice(), &seq.to_be_bytes()].concat()
}

fn index_prefix(member_id: &str) -> Vec<u8> {
    [b"i/", member_id.as_bytes(), &[0xFF]].concat()
}

impl Store {
    /// Opens (or creates) the data directory.
    ///
    /// # Errors
    /// When sled cannot open it, or it holds another format version.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        let tree = db.open_tree("tierd")?;
        check_format(&tree)?;
        let next_seq = match tree.get(NEXT_SEQ_KEY)? {
            Some(bytes) => {
                u64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    key: "meta/next_seq".into(),
                    reason: "not 8 bytes".into(),
                })?)
            }
            None => 1,
        };
        let data_file = File::open(dir.join("db"))?;
        let writer = Writer {
            next_seq,
            tree: tree.clone(),
            dirty: false,
        };
        let writer = spawn_writer(writer, db, data_file)?;
        Ok(Self { tree, writer })
    }

    /// A member's state, if the member exists.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn member(&self, member_id: &str) -> Result<Option<MemberState>, StoreError> {
        self.get(&member_key(member_id))
    }

    /// The idempotency record of a transaction id, if it was recorded.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn txn(&self, transaction_id: &str) -> Result<Option<TxnRecord>, StoreError> {
        self.get(&txn_key(transaction_id))
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.tree
            .get(key)?
            .map(|bytes| decode(key, &bytes))
            .transpose()
    }

    /// Up to `limit` history entries of a member with seq > `after`, oldest
    /// first, and whether more follow.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn history(
        &self,
        member_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<HistoryEntry>, bool), StoreError> {
        let prefix = index_prefix(member_id);
        let start = [prefix.as_slice(), &after.saturating_add(1).to_be_bytes()].concat();
        let mut entries = Vec::new();
        for item in self.tree.range(start..).take(limit + 1) {
            let (key, _) = item?;
            let Some(seq_bytes) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            if entries.len() == limit {
                return Ok((entries, true));
            }
            let seq =
                u64::from_be_bytes(seq_bytes.try_into().map_err(|_| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: "index key without an 8-byte seq".into(),
                })?);
            let entry = self
                .get(&history_key(seq))?
                .ok_or_else(|| StoreError::Corrupt {
                    key: format!("h/{seq}"),
                    reason: "indexed history entry is missing".into(),
                })?;
            entries.push(entry);
        }
        Ok((entries, false))
    }

    /// Every member's stored record, undecoded, in key order: for whole-store
    /// reads that decode on several threads ([`RawMember::decode`]).
    pub fn raw_members(&self) -> impl Iterator<Item = Result<RawMember, StoreError>> + '_ {
        self.tree.scan_prefix(b"m/").map(|item| {
            item.map(|(key, value)| RawMember { key, value })
                .map_err(StoreError::from)
        })
    }

    /// Every member id, in key order.
    pub fn member_ids(&self) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
        self.tree.scan_prefix(b"m/").keys().map(|key| {
            let key = key?;
            Ok(String::from_utf8_lossy(&key[2..]).into_owned())
        })
    }

    /// Runs `job` on the writer thread, after every job queued before it,
    /// and returns its result once whatever it committed is on disk.
    ///
    /// # Errors
    /// [`StoreError::WriterStopped`] when the writer thread is gone (the job
    /// panicked or the store is shutting down); [`StoreError::Durability`]
    /// when the flush failed (the commit may or may not survive a crash: a
    /// retry with the same transaction id settles it).
    pub async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> T + Send + 'static,
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
        self.writer
            .jobs
            .as_ref()
            .ok_or(StoreError::WriterStopped)?
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        result.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// A rules version as it went live: kept for ever, so that every tier
/// change can be traced to the exact text that decided it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct RulesVersion {
    /// The file's `version` label.
    pub version: String,
    /// SHA-256 of the text.
    pub content_hash: String,
    /// The program id.
    pub program: String,
    /// When it went live.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub activated_at: chrono::DateTime<chrono::Utc>,
    /// The file's text.
    pub text: String,
}

fn rules_key(index: u64) -> Vec<u8> {
    [b"r/".as_slice(), &index.to_be_bytes()].concat()
}

impl Store {
    /// Every rules version that went live, oldest first.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn rules_versions(&self) -> Result<Vec<RulesVersion>, StoreError> {
        self.tree
            .scan_prefix(b"r/")
            .map(|item| {
                let (key, value) = item?;
                decode(&key, &value)
            })
            .collect()
    }
}

/// The first bytes of every backup file.
const BACKUP_MAGIC: &[u8; 8] = b"TIERDBK1";

/// A backup file that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Not a tierd backup, cut short, or altered.
    #[error("not a complete tierd backup: {0}")]
    Damaged(&'static str),
    /// Made by a tierd with another data format.
    #[error("the backup has data format {found}; this tierd restores format {supported}")]
    Format {
        /// The backup's format.
        found: u32,
        /// This build's format.
        supported: u32,
    },
    /// Restoring into a directory that already holds data.
    #[error("{0} already holds tierd data; restore into a new directory")]
    NotEmpty(String),
    /// The store failed while restoring.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Writer {
    /// A consistent snapshot of every record, as a backup file: the magic,
    /// the data format, length-prefixed key/value pairs, and a SHA-256 of
    /// all that. Taken on the writer thread, so no write interleaves.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn snapshot(&self) -> Result<Vec<u8>, StoreError> {
        let mut file = BACKUP_MAGIC.to_vec();
        file.extend(FORMAT_VERSION.to_be_bytes());
        for item in self.tree.iter() {
            let (key, value) = item?;
            for part in [&key, &value] {
                // Keys and values are far below 4 GiB.
                file.extend(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
                file.extend(part.iter());
            }
        }
        let digest = sha2::Sha256::digest(&file);
        file.extend(digest);
        Ok(file)
    }

    /// Records that a rules version went live.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn record_rules_version(&mut self, version: &RulesVersion) -> Result<(), StoreError> {
        let last = self
            .tree
            .scan_prefix(b"r/")
            .keys()
            .next_back()
            .transpose()?;
        let next = last
            .and_then(|key| <[u8; 8]>::try_from(&key[2..]).ok())
            .map_or(0, |n| u64::from_be_bytes(n) + 1);
        self.tree.insert(rules_key(next), encode(version))?;
        self.dirty = true;
        Ok(())
    }

    /// The seq the next history entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Applies a commit atomically. History entries must be numbered from
    /// [`Writer::next_seq`] on without gaps.
    ///
    /// # Errors
    /// On a storage failure; then nothing was written.
    pub fn commit(&mut self, commit: &Commit) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for member in &commit.members {
            batch.insert(member_key(&member.member_id), encode(member));
        }
        for (id, record) in &commit.txns {
            batch.insert(txn_key(id), encode(record));
        }
        let mut next_seq = self.next_seq;
        for entry in &commit.history {
            debug_assert_eq!(entry.seq, next_seq, "history seqs must be gap-free");
            batch.insert(history_key(entry.seq), encode(entry));
            let index = [
                index_prefix(&entry.member_id).as_slice(),
                &entry.seq.to_be_bytes(),
            ]
            .concat();
            batch.insert(index, Vec::new());
            next_seq = entry.seq + 1;
        }
        batch.insert(NEXT_SEQ_KEY, next_seq.to_be_bytes().to_vec());
        self.tree.apply_batch(batch)?;
        self.next_seq = next_seq;
        self.dirty = true;
        Ok(())
    }

    /// A member's state, as this writer last committed it.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn member(&self, member_id: &str) -> Result<Option<MemberState>, StoreError> {
        let key = member_key(member_id);
        self.tree.get(&key)?.map(|b| decode(&key, &b)).transpose()
    }

    /// A transaction record, as this writer last committed it.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn txn(&self, transaction_id: &str) -> Result<Option<TxnRecord>, StoreError> {
        let key = txn_key(transaction_id);
        self.tree.get(&key)?.map(|b| decode(&key, &b)).transpose()
    }
}

/// Writes a backup into a new data directory, checking it whole first.
///
/// # Errors
/// A damaged or foreign backup, a directory that already has data, or a
/// storage failure. Nothing is written unless the whole backup checks out.
pub fn restore(backup: &[u8], dir: &Path) -> Result<usize, BackupError> {
    let records = parse_backup(backup)?;
    let db = sled::Config::new()
        .path(dir)
        .open()
        .map_err(StoreError::from)?;
    let tree = db.open_tree("tierd").map_err(StoreError::from)?;
    if !tree.is_empty() {
        return Err(BackupError::NotEmpty(dir.display().to_string()));
    }
    let mut batch = sled::Batch::default();
    for (key, value) in &records {
        batch.insert(*key, *value);
    }
    tree.apply_batch(batch).map_err(StoreError::from)?;
    db.flush().map_err(StoreError::from)?;
    File::open(dir.join("db"))
        .and_then(|f| f.sync_all())
        .map_err(StoreError::from)?;
    Ok(records.len())
}

/// A key and its value, borrowed from a backup file.
type Record<'a> = (&'a [u8], &'a [u8]);

fn parse_backup(backup: &[u8]) -> Result<Vec<Record<'_>>, BackupError> {
    let body_len = backup
        .len()
        .checked_sub(32)
        .ok_or(BackupError::Damaged("too short"))?;
    let (body, digest) = backup.split_at(body_len);
    if sha2::Sha256::digest(body).as_slice() != digest {
        return Err(BackupError::Damaged("checksum mismatch"));
    }
    let rest = body
        .strip_prefix(BACKUP_MAGIC.as_slice())
        .ok_or(BackupError::Damaged("no tierd backup header"))?;
    let (version, mut rest) = rest
        .split_at_checked(4)
        .ok_or(BackupError::Damaged("no format"))?;
    let found = u32::from_be_bytes(
        version
            .try_into()
            .map_err(|_| BackupError::Damaged("no format"))?,
    );
    if found != FORMAT_VERSION {
        return Err(BackupError::Format {
            found,
            supported: FORMAT_VERSION,
        });
    }
    let mut records = Vec::new();
    while !rest.is_empty() {
        let key = take_part(&mut rest)?;
        let value = take_part(&mut rest)?;
        records.push((key, value));
    }
    Ok(records)
}

/// Takes one length-prefixed part off the front of `rest`.
fn take_part<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], BackupError> {
    let cut = || BackupError::Damaged("cut short");
    let (len, tail) = rest.split_at_checked(4).ok_or_else(cut)?;
    let len = u32::from_be_bytes(len.try_into().map_err(|_| cut())?);
    let (part, tail) = tail.split_at_checked(len as usize).ok_or_else(cut)?;
    *rest = tail;
    Ok(part)
}

fn check_format(tree: &sled::Tree) -> Result<(), StoreError> {
    match tree.get(FORMAT_KEY)? {
        None => {
            tree.insert(FORMAT_KEY, FORMAT_VERSION.to_be_bytes().to_vec())?;
            Ok(())
        }
        Some(bytes) => {
            let found = <[u8; 4]>::try_from(bytes.as_ref()).map_or(0, u32::from_be_bytes);
            if found == FORMAT_VERSION {
                Ok(())
            } else {
                Err(StoreError::FormatVersion {
                    found,
                    supported: FORMAT_VERSION,
                })
            }
        }
    }
}

/// Starts the writer thread. Each round takes the queued jobs (at least
/// one, at most [`MAX_ROUND`]) and runs them one after another; if any
/// committed, it flushes sled and fdatasyncs the data file once; then it
/// answers the round's jobs. A job that panics ends only its own request
/// (its caller sees `WriterStopped`); the thread goes on with the next.
fn spawn_writer(
    mut writer: Writer,
    db: sled::Db,
    data_file: File,
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
                let flush_error = if std::mem::take(&mut writer.dirty) {
                    make_durable(&db, &data_file).err()
                } else {
                    None
                };
                if let Some(err) = &flush_error {
                    tracing::error!(error = %err, "flushing the data directory failed");
                }
                tracing::trace!(jobs = deliveries.len(), "write round");
                for deliver in deliveries {
                    deliver(flush_error.as_ref());
                }
            }
            if let Err(err) = make_durable(&db, &data_file) {
                tracing::error!(error = %err, "final flush failed");
            }
        })?;
    Ok(WriterThread {
        jobs: Some(jobs),
        thread: Some(thread),
    })
}

fn run_job(job: Job, writer: &mut Writer) -> Option<Delivery> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(writer)));
    if outcome.is_err() {
        tracing::error!(
            "a write job panicked; its request failed (a retry finds whatever it committed)"
        );
    }
    outcome.ok()
}

/// Flushes sled's log, then fdatasyncs it: see the module comment.
fn make_durable(db: &sled::Db, data_file: &File) -> Result<(), StoreError> {
    db.flush()?;
    data_file.sync_data()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_data_format_is_refused_clearly() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        {
            let db = sled::Config::new().path(dir.path()).open().expect("sled");
            let tree = db.open_tree("tierd").expect("tree");
            tree.insert(FORMAT_KEY, 99_u32.to_be_bytes().to_vec())
                .expect("insert");
            db.flush().expect("flush");
        }
        let err = Store::open(dir.path()).err().expect("refused");
        assert!(
            matches!(
                err,
                StoreError::FormatVersion {
                    found: 99,
                    supported: 2
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_backup_is_refused_before_anything_is_written() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let mut backup = BACKUP_MAGIC.to_vec();
        backup.extend(FORMAT_VERSION.to_be_bytes());
        backup.extend(3_u32.to_be_bytes());
        backup.extend(b"key");
        backup.extend(sha2::Sha256::digest(&backup));
        assert!(matches!(
            restore(&backup, dir.path()),
            Err(BackupError::Damaged("cut short"))
        ));
        let last = backup.len() - 1;
        backup[last] ^= 1;
        assert!(matches!(
            restore(&backup, dir.path()),
            Err(BackupError::Damaged("checksum mismatch"))
        ));
        assert!(!dir.path().join("db").exists(), "nothing written");
    }
}
