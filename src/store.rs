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
//!
//! Ids are UTF-8, which never contains the byte 0xFF, so the index key is
//! unambiguous and sorts a member's entries by seq. Values are one format
//! version byte followed by the record in `postcard` encoding.
//!
//! # Promises
//! - **Atomic**: everything one request changes (member, idempotency
//!   record, history entries, index, seq counter) goes in one sled batch,
//!   applied all or nothing.
//! - **Gap-free seq**: seqs are handed out under the [`Writer`] lock and
//!   the counter is stored in the same batch as the entries that use them.
//! - **Durable when acknowledged**: callers answer only after [`Store::sync`]
//!   returned. `sync` flushes sled and then `fsync`s its data file, because
//!   sled 0.34 writes its log with `sync_file_range`, which (sled issue
//!   #1351) flushes neither file metadata nor the drive's write cache. The
//!   flush runs on one thread that serves every waiting writer at once
//!   (group commit), which also avoids `flush_async`, which deadlocks under
//!   concurrency in sled 0.34 (sled issue #1308).

use std::{
    fs::File,
    path::Path,
    sync::{Mutex, MutexGuard, mpsc},
    thread,
};

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use crate::ledger::{HistoryEntry, MemberState, TxnRecord};

/// The data format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Value encoding version (the first byte of every value).
const VALUE_VERSION: u8 = 1;

const FORMAT_KEY: &[u8] = b"meta/format";
const NEXT_SEQ_KEY: &[u8] = b"meta/next_seq";

/// Why the store failed. Callers treat every variant as an internal error:
/// the request changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("i/o on the data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("undecodable record at key {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(
        "the data directory has format version {found}, but this tierd reads version {supported}"
    )]
    FormatVersion { found: u32, supported: u32 },
    #[error("the flusher thread has stopped")]
    FlusherStopped,
}

/// Everything one request writes, committed together by [`Writer::commit`].
#[derive(Debug, Default)]
pub struct Commit {
    pub members: Vec<MemberState>,
    pub txns: Vec<(String, TxnRecord)>,
    /// Entries numbered from [`Writer::next_seq`] on, in order.
    pub history: Vec<HistoryEntry>,
}

/// The durable store. Cheap to share behind an `Arc`.
pub struct Store {
    tree: sled::Tree,
    next_seq: Mutex<u64>,
    flusher: Flusher,
}

type FlushWaiter = oneshot::Sender<Result<(), String>>;

/// The group-commit thread and the way to reach it. Dropping it stops the
/// thread and waits for it, so the data directory is released when the
/// store is dropped (a restarted server can open it at once).
struct Flusher {
    requests: Option<mpsc::Sender<FlushWaiter>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The single-writer lock: whoever holds it reads, decides and commits
/// without another write in between. It is a `std` mutex because it is
/// never held across an `.await` (the guard is not `Send`, so the compiler
/// enforces that); durability is awaited after releasing it.
pub struct Writer<'a> {
    next_seq: MutexGuard<'a, u64>,
    tree: &'a sled::Tree,
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
        let flusher = spawn_flusher(db, data_file)?;
        Ok(Self {
            tree,
            next_seq: Mutex::new(next_seq),
            flusher,
        })
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

    /// Every member id, in key order.
    pub fn member_ids(&self) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
        self.tree.scan_prefix(b"m/").keys().map(|key| {
            let key = key?;
            Ok(String::from_utf8_lossy(&key[2..]).into_owned())
        })
    }

    /// Takes the single-writer lock.
    pub fn writer(&self) -> Writer<'_> {
        Writer {
            // A panic while holding the lock cannot leave a half-applied
            // batch (batches are atomic), so a poisoned lock is still sound.
            next_seq: self.next_seq.lock().unwrap_or_else(|p| p.into_inner()),
            tree: &self.tree,
        }
    }

    /// Waits until everything committed before this call is on disk.
    ///
    /// # Errors
    /// When the flush or fsync failed, or the flusher has stopped.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.flusher
            .requests
            .as_ref()
            .ok_or(StoreError::FlusherStopped)?
            .send(done)
            .map_err(|_| StoreError::FlusherStopped)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Io(std::io::Error::other(reason))),
            Err(_) => Err(StoreError::FlusherStopped),
        }
    }
}

impl Writer<'_> {
    /// The seq the next history entry gets.
    pub fn next_seq(&self) -> u64 {
        *self.next_seq
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
        let mut next_seq = *self.next_seq;
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
        *self.next_seq = next_seq;
        Ok(())
    }

    /// A member's state read under the lock.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn member(&self, member_id: &str) -> Result<Option<MemberState>, StoreError> {
        let key = member_key(member_id);
        self.tree.get(&key)?.map(|b| decode(&key, &b)).transpose()
    }

    /// A transaction record read under the lock.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn txn(&self, transaction_id: &str) -> Result<Option<TxnRecord>, StoreError> {
        let key = txn_key(transaction_id);
        self.tree.get(&key)?.map(|b| decode(&key, &b)).transpose()
    }
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

/// Starts the group-commit thread: it takes every waiting flush request,
/// flushes sled and fsyncs the data file once, and answers them all. It owns
/// the last handle of the database, which it flushes and closes on exit.
fn spawn_flusher(db: sled::Db, data_file: File) -> Result<Flusher, StoreError> {
    let (requests, inbox) = mpsc::channel::<FlushWaiter>();
    let thread = thread::Builder::new()
        .name("tierd-flusher".into())
        .spawn(move || {
            while let Ok(first) = inbox.recv() {
                let mut waiting = vec![first];
                waiting.extend(inbox.try_iter());
                let result = db
                    .flush()
                    .map_err(|e| e.to_string())
                    .and_then(|_| data_file.sync_all().map_err(|e| e.to_string()));
                if let Err(reason) = &result {
                    tracing::error!(%reason, "flushing the data directory failed");
                }
                for waiter in waiting {
                    // A waiter that gave up (client gone) is no error.
                    let _ = waiter.send(result.clone());
                }
            }
            if let Err(err) = db.flush() {
                tracing::error!(error = %err, "final flush failed");
            }
        })?;
    Ok(Flusher {
        requests: Some(requests),
        thread: Some(thread),
    })
}
