//! The embedded store: sled in a data directory on this machine, with one
//! writer thread and group commit ([`super::writer`]). The default, and the
//! fastest for one node; see the parent module for what every store
//! promises, and [`super::keys`] for the layout.
//!
//! sled runs no background flusher here (we flush every round). Its IO
//! threads still let go of the database a moment after the last handle
//! is dropped (they drop their share just after signalling a write done),
//! so [`open_db`] waits up to [`LOCK_WAIT`] for the directory lock before
//! it reports the directory as in use: a restart in the same process (a
//! test, a tool) opens it again reliably, and a directory held by another
//! running tierd is refused with a clear message.

use std::path::{Path, PathBuf};

use super::{
    RawMember, StoreError, from_bytes, keys, migrate,
    records::{AliasRecord, BadTime, HistoryRecord, OrderRecord, RulesVersionRecord},
    writer::{self, SledWriter},
};
use crate::{
    domain::{
        decide::HistoryEntry,
        member::MemberState,
        merge::Alias,
        receipt::{OrderRedemptions, Receipt},
    },
    rules::RulesVersion,
};
use serde::de::DeserializeOwned;

/// The store on sled.
pub struct SledStore {
    tree: sled::Tree,
    dir: PathBuf,
    writer: writer::WriterThread,
    durable: tokio::sync::watch::Receiver<u64>,
}

/// The bytes of records sled keeps decoded in memory. sled's own default
/// (1 GiB) lets one pass over a million members (a report, a simulation)
/// grow the process past 1 GiB, to cache pages that pass will not read
/// again; the operating system's page cache keeps the file itself warm.
pub const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// How long [`open_db`] waits for a directory lock that is being released.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The bytes of the files under `dir`.
fn directory_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            directory_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// The rules version recorded last in `tree`, if any.
pub(super) fn last_rules_version(tree: &sled::Tree) -> Result<Option<RulesVersion>, StoreError> {
    tree.scan_prefix(keys::RULES)
        .next_back()
        .transpose()?
        .map(|(key, value)| from_bytes::<RulesVersionRecord, _>(&key, &value))
        .transpose()
}

/// Opens sled the way tierd uses it: no background flusher (the writer
/// flushes every round), a page cache of [`CACHE_BYTES`]; a directory lock still held by a handle that is
/// being released is waited for, up to [`LOCK_WAIT`].
///
/// # Errors
/// [`StoreError::InUse`] when the lock stays held; any other failure of
/// sled to open the directory.
pub fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    open_db_within(dir, LOCK_WAIT)
}

/// [`open_db`], waiting at most `wait` for the directory lock.
fn open_db_within(dir: &Path, wait: std::time::Duration) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(None);
        match config.open() {
            Err(sled::Error::Io(err)) if err.to_string().contains("could not acquire lock") => {
                if started.elapsed() >= wait {
                    return Err(StoreError::InUse(dir.display().to_string()));
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            opened => return Ok(opened?),
        }
    }
}

/// Reads and decodes the record at `key`, if there is one.
pub(super) fn read<R, T>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, StoreError>
where
    R: DeserializeOwned,
    T: TryFrom<R, Error = BadTime>,
{
    tree.get(key)?
        .map(|bytes| from_bytes::<R, T>(key, &bytes))
        .transpose()
}

impl SledStore {
    /// Opens (or creates) the data directory, migrating an older format.
    ///
    /// # Errors
    /// When sled cannot open it, or it holds a format this build cannot
    /// read.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::with_db(open_db(dir)?, dir)
    }

    /// Opens the store on a sled database already open on `dir`.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn with_db(db: sled::Db, dir: &Path) -> Result<Self, StoreError> {
        let tree = db.open_tree("tierd")?;
        let mut disk = writer::Disk::open(db, dir)?;
        migrate::to_current(&tree, &mut disk)?;
        let next_seq = match tree.get(keys::NEXT_SEQ)? {
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::corrupt(keys::NEXT_SEQ, "not 8 bytes"))?,
            ),
            None => 1,
        };
        let (durable_tx, durable) = tokio::sync::watch::channel(next_seq);
        let writer = writer::spawn(SledWriter::new(tree.clone(), next_seq), disk, durable_tx)?;
        Ok(Self {
            tree,
            dir: dir.to_owned(),
            writer,
            durable,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A member's state, if the member exists.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn member(&self, member_id: &str) -> Result<Option<MemberState>, StoreError> {
        let key = keys::member(member_id);
        self.tree
            .get(&key)?
            .map(|value| super::member_from_bytes(&key, &value))
            .transpose()
    }

    /// The receipt of a transaction id, if it was recorded.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn receipt(&self, transaction_id: &str) -> Result<Option<Receipt>, StoreError> {
        let key = keys::receipt(transaction_id);
        self.tree
            .get(&key)?
            .map(|value| super::receipt_from_bytes(&key, &value))
            .transpose()
    }

    /// Every receipt of `member_id`'s requests, by transaction id. Reads
    /// every receipt in the store (there is no index by member: a key more
    /// per event for a rare question), so its time grows with the store.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn receipts_of(&self, member_ids: &[String]) -> Result<Vec<(String, Receipt)>, StoreError> {
        let mut found = Vec::new();
        for item in self.tree.scan_prefix(keys::RECEIPTS) {
            let (key, value) = item?;
            let receipt = super::receipt_from_bytes(&key, &value)?;
            if member_ids.contains(&receipt.member_id) {
                let id = String::from_utf8_lossy(&key[keys::RECEIPTS.len()..]).into_owned();
                found.push((id, receipt));
            }
        }
        Ok(found)
    }

    /// `member_id`'s redemptions against orders, by order id.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn orders_of(
        &self,
        member_id: &str,
    ) -> Result<Vec<(String, OrderRedemptions)>, StoreError> {
        let prefix = keys::order_prefix(member_id);
        self.tree
            .scan_prefix(&prefix)
            .map(|item| {
                let (key, value) = item?;
                order_entry(prefix.len(), &key, &value)
            })
            .collect()
    }

    /// The alias of `member_id`, if it was merged into another member.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn alias(&self, member_id: &str) -> Result<Option<Alias>, StoreError> {
        let key = keys::alias(member_id);
        self.tree
            .get(&key)?
            .map(|value| from_bytes::<AliasRecord, Alias>(&key, &value))
            .transpose()
    }

    /// The ids merged into `into`, in id order.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn aliases_into(&self, into: &str) -> Result<Vec<String>, StoreError> {
        let prefix = keys::aliases_into_prefix(into);
        self.tree
            .scan_prefix(&prefix)
            .keys()
            .map(|key| Ok(String::from_utf8_lossy(&key?[prefix.len()..]).into_owned()))
            .collect()
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
        let prefix = keys::index_prefix(member_id);
        let start = keys::index(member_id, after.saturating_add(1));
        let mut entries = Vec::new();
        for item in self.tree.range(start..).take(limit.saturating_add(1)) {
            let (key, _) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            if entries.len() == limit {
                return Ok((entries, true));
            }
            let seq = keys::number_after(&prefix, &key)
                .ok_or_else(|| StoreError::corrupt(&key, "index key without an 8-byte seq"))?;
            let entry = read::<HistoryRecord, _>(&self.tree, &keys::history(seq))?
                .ok_or_else(|| StoreError::corrupt(&key, "indexed history entry is missing"))?;
            entries.push(entry);
        }
        Ok((entries, false))
    }

    /// The first history seq not yet durable: entries below it are on disk
    /// and stay. Changes whenever a write round makes more durable.
    pub fn durable_seqs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.durable.clone()
    }

    /// Up to `limit` history entries of all members with `after < seq <
    /// below`, in seq order.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn history_between(
        &self,
        after: u64,
        below: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        if after.saturating_add(1) >= below {
            return Ok(Vec::new());
        }
        let from = keys::history(after.saturating_add(1));
        let to = keys::history(below);
        self.tree
            .range(from..to)
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                from_bytes::<HistoryRecord, _>(&key, &value)
            })
            .collect()
    }

    /// The last history seq the webhook endpoint `name` has delivered (0:
    /// none yet).
    ///
    /// # Errors
    /// On a storage failure or a damaged position.
    pub fn delivery_position(&self, name: &str) -> Result<u64, StoreError> {
        let key = keys::delivery(name);
        match self.tree.get(&key)? {
            None => Ok(0),
            Some(bytes) => keys::number_after(b"", &bytes)
                .ok_or_else(|| StoreError::corrupt(&key, "not 8 bytes")),
        }
    }

    /// Every member's stored record, undecoded, in key order: for whole-store
    /// reads that decode on several threads ([`RawMember::decode`]).
    pub fn raw_members(&self) -> impl Iterator<Item = Result<RawMember, StoreError>> + '_ {
        self.tree.scan_prefix(keys::MEMBERS).map(|item| {
            item.map(|(key, value)| RawMember { key, value })
                .map_err(StoreError::from)
        })
    }

    /// See [`super::Store::due_member_ids`]: the due index read in three
    /// ranges, those of other rules before and after `rules`' own, and
    /// `rules`' own up to `as_of`.
    pub fn due_member_ids(
        &self,
        rules: u64,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let own = keys::due(&keys::due_bytes(rules, None), "");
        let own_start = &own[..keys::DUE.len() + 8];
        // Ids are UTF-8, which never holds 0xFF: every key of `rules` sorts
        // below its "never" moment followed by 0xFF.
        let own_end = [own.as_slice(), &[0xFF]].concat();
        let due_end = keys::due(&keys::due_bytes(rules, Some(as_of.timestamp_micros())), "");
        let ranges = [
            self.tree.range(keys::DUE.to_vec()..own_start.to_vec()),
            self.tree
                .range(own_start.to_vec()..=[due_end.as_slice(), &[0xFF]].concat()),
            self.tree.range(own_end..keys::DUE_END.to_vec()),
        ];
        let mut ids = Vec::new();
        for key in ranges.into_iter().flat_map(sled::Iter::keys) {
            let key = key?;
            let id =
                keys::member_of_due(&key).ok_or_else(|| StoreError::corrupt(&key, "too short"))?;
            ids.push(String::from_utf8_lossy(id).into_owned());
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Every member id, in key order.
    pub fn member_ids(&self) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
        self.tree.scan_prefix(keys::MEMBERS).keys().map(|key| {
            let key = key?;
            Ok(String::from_utf8_lossy(&key[keys::MEMBERS.len()..]).into_owned())
        })
    }

    /// See [`super::Store::rules_versions_after`].
    pub fn rules_versions_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, RulesVersion)>, StoreError> {
        // Stored under n = position - 1.
        self.tree
            .range(keys::rules_version(after)..)
            .take_while(|item| {
                item.as_ref()
                    .map_or(true, |(k, _)| k.starts_with(keys::RULES))
            })
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                let n = keys::number_after(keys::RULES, &key).unwrap_or(0);
                Ok((n + 1, from_bytes::<RulesVersionRecord, _>(&key, &value)?))
            })
            .collect()
    }

    /// See [`super::Store::rules_version_at`].
    pub fn rules_version_at(&self, position: u64) -> Result<Option<RulesVersion>, StoreError> {
        let Some(n) = position.checked_sub(1) else {
            return Ok(None);
        };
        let key = keys::rules_version(n);
        self.tree
            .get(&key)?
            .map(|value| from_bytes::<RulesVersionRecord, _>(&key, &value))
            .transpose()
    }

    /// See [`super::Store::size_bytes`].
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        Ok(directory_bytes(&self.dir)?)
    }

    /// See [`super::Store::last_rules_version`].
    pub fn last_rules_version(&self) -> Result<Option<RulesVersion>, StoreError> {
        last_rules_version(&self.tree)
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
        F: FnOnce(&mut SledWriter) -> T + Send + 'static,
    {
        self.writer.run(job).await
    }

    /// Returns once every write queued before it is on disk (flushed and
    /// fsynced), whether or not anything was written since the last round.
    ///
    /// # Errors
    /// As [`Store::write`].
    pub async fn sync(&self) -> Result<(), StoreError> {
        self.write(SledWriter::mark_dirty).await
    }
}

/// One of a member's redemptions against orders, its key `prefix_len`
/// bytes of `o/{member_id} 0xFF` and then the order id.
pub(super) fn order_entry(
    prefix_len: usize,
    key: &[u8],
    value: &[u8],
) -> Result<(String, OrderRedemptions), StoreError> {
    let order = from_bytes::<OrderRecord, OrderRedemptions>(key, value)?;
    let id = String::from_utf8_lossy(key.get(prefix_len..).unwrap_or_default()).into_owned();
    Ok((id, order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Commit, FORMAT_VERSION};

    #[test]
    fn a_newer_data_format_is_refused_clearly() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        // The same handle throughout: no second open has to wait for a
        // directory lock.
        let db = open_db(dir.path()).expect("sled");
        db.open_tree("tierd")
            .expect("tree")
            .insert(keys::FORMAT, 99_u32.to_be_bytes().to_vec())
            .expect("insert");
        db.flush().expect("flush");
        let err = SledStore::with_db(db, dir.path()).err().expect("refused");
        assert!(
            matches!(
                err,
                StoreError::FormatVersion {
                    found: 99,
                    supported: FORMAT_VERSION
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("format version 99"), "{err}");
    }

    /// The largest member a client can make (64 attributes, keys and
    /// values of 1 KiB) is over sled's 128 KiB log message limit: sled keeps
    /// it in a blob file, which the round fsyncs too.
    #[test]
    fn a_member_kept_as_a_sled_blob_is_written_and_read_back() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut member = MemberState::new("big", "bronze", chrono::DateTime::UNIX_EPOCH);
        member.attributes = (0..64)
            .map(|i| (format!("{i:0>1024}"), "v".repeat(1024)))
            .collect();
        {
            let store = SledStore::open(dir.path()).expect("store");
            let members = vec![member.clone()];
            runtime
                .block_on(store.write(move |writer| {
                    writer.commit(&Commit {
                        members,
                        ..Commit::default()
                    })
                }))
                .expect("written")
                .expect("committed");
        }
        let blobs = std::fs::read_dir(dir.path().join("blobs"))
            .expect("blobs")
            .count();
        assert!(blobs > 0, "sled kept the record as a blob");
        let store = SledStore::open(dir.path()).expect("reopened");
        assert_eq!(store.member("big").expect("readable"), Some(member));
    }

    /// Opening right after dropping always works, though sled lets go of
    /// the directory lock a moment after the last handle (it failed about
    /// once in 2,000 cycles before `open_db` waited for it).
    #[test]
    fn a_dropped_store_can_be_opened_again_at_once() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        for _ in 0..200 {
            let store = SledStore::open(dir.path()).expect("opens again at once");
            drop(store);
        }
    }

    #[test]
    fn a_directory_held_by_a_live_handle_is_reported_in_use() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let _held = SledStore::open(dir.path()).expect("store");
        let err = open_db_within(dir.path(), std::time::Duration::ZERO).expect_err("refused");
        assert!(matches!(err, StoreError::InUse(_)), "{err}");
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
    }
}
