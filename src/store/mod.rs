//! Durable state behind one interface, on either of two engines:
//!
//! - **sled** ([`embedded`]), the default: a data directory on this
//!   machine, one writer thread, group commit. One node, no database to run.
//! - **PostgreSQL** ([`postgres`]), for several stateless nodes over a
//!   database the operations team already runs (plain PostgreSQL, or a
//!   distributed engine that speaks its protocol): a connection pool, one
//!   database transaction per write.
//!
//! The application layer sees only [`Store`] (reads, and [`Store::write`]
//! to run a job) and [`Writer`] (what a job may read and commit). Both
//! engines keep the same records ([`records`], encoded by [`codec`]): the
//! sled layout is in [`keys`], the PostgreSQL tables in
//! `postgres/migrations/`.
//!
//! # Promises, on both engines
//! - **Atomic**: everything one job commits (members, receipts, history
//!   entries, the redemptions of an order) is stored all or nothing.
//! - **Serial per member**: whatever a job reads of a member stays true
//!   until it commits. sled runs every job on one thread; PostgreSQL locks
//!   the member's row (`SELECT ... FOR UPDATE`) and reruns the whole job
//!   when the database reports a conflict, which the idempotency receipt
//!   makes safe. A job must therefore be re-runnable ([`Store::write`] takes
//!   an `Fn`).
//! - **Durable when answered**: [`Store::write`] returns a job's result only
//!   once its commit is on disk (sled: flushed and fsynced; PostgreSQL:
//!   committed with `synchronous_commit` on).
//! - **History in order**: each member's entries are numbered in the order
//!   they happened; the tier-change stream reads every member's entries in
//!   one order below a watermark ([`Store::durable_seqs`]) that only moves
//!   forward, so a consumer resuming after a seq misses nothing and sees
//!   nothing twice. How each engine numbers is in its module comment.

pub mod backup;
pub mod codec;
pub mod embedded;
pub mod keys;
pub mod migrate;
pub mod postgres;
pub mod records;
pub mod writer;

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::de::DeserializeOwned;

pub use backup::{BackupError, restore};
pub use embedded::{CACHE_BYTES, LOCK_WAIT, SledStore, open_db};
use postgres::{PgStore, PgWriter};
use writer::SledWriter;

use crate::{
    domain::{
        books::Books,
        decide::HistoryEntry,
        due::{Due, RulesId},
        member::MemberState,
        merge::Alias,
        privacy::Erasure,
        receipt::{OrderRedemptions, Receipt},
    },
    rules::RulesVersion,
};
use records::{BadTime, MemberRecord, MemberRecordV8, ReceiptRecord, ReceiptRecordV7};

/// The data format this build reads and writes.
pub const FORMAT_VERSION: u32 = 10;

/// Why the store failed. Callers treat every variant as an internal error
/// (or, for [`StoreError::Unavailable`], a reason to try again): the
/// request changed nothing.
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
    /// The data was written by a format this build cannot read.
    #[error(
        "the store has data format version {found}, but this tierd reads version {supported} (and migrates the older ones from 2)"
    )]
    FormatVersion {
        /// The store's version.
        found: u32,
        /// This build's version.
        supported: u32,
    },
    /// Another process holds the data directory.
    #[error("the data directory {0} is in use by another process (a running tierd?)")]
    InUse(String),
    #[error("the writer thread has stopped")]
    /// The writer thread is gone (shutting down, or a job panicked).
    WriterStopped,
    #[error("making the commit durable failed: {0}")]
    /// The commit was made but the flush failed.
    Durability(String),
    /// The database refused a statement (`code` is its SQLSTATE).
    #[error("database error {code}: {message}")]
    Database {
        /// The SQLSTATE, e.g. `40001` for a serialization failure.
        code: String,
        /// What the database said.
        message: String,
    },
    /// The database cannot be reached (down, or the connection broke): the
    /// request may be retried with the same transaction id.
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    /// The operation is not available on this engine.
    #[error("{0}")]
    Unsupported(String),
}

impl StoreError {
    /// A damaged record at `key`.
    pub fn corrupt(key: &[u8], reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: reason.into(),
        }
    }
}

/// Where a programme's data lives, as `--store` names it: `sled:PATH` (a
/// data directory) or `postgres://...` (a connection URL, as libpq takes
/// it).
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A sled data directory.
    Sled(PathBuf),
    /// A PostgreSQL-protocol database.
    Postgres(String),
}

impl FromStr for Location {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("sled:") {
            if path.is_empty() {
                return Err("sled: needs a directory, e.g. sled:./data".into());
            }
            return Ok(Location::Sled(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            text.parse::<tokio_postgres::Config>()
                .map_err(|err| format!("{}: {err}", postgres::without_password(text)))?;
            return Ok(Location::Postgres(text.to_owned()));
        }
        Err(format!(
            "{text:?} is not a store: use sled:DIR (e.g. sled:./data) or postgres://USER@HOST/DB"
        ))
    }
}

impl<'de> serde::Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Shows the location without a password, so that it can be logged.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sled(dir) => write!(f, "sled:{}", dir.display()),
            Location::Postgres(url) => f.write_str(&postgres::without_password(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Everything one request writes, committed together by [`Writer::commit`].
#[derive(Debug, Default)]
pub struct Commit {
    /// Member states to store.
    pub members: Vec<MemberState>,
    /// Receipts to store, by transaction id.
    pub receipts: Vec<(String, Receipt)>,
    /// Entries numbered by [`Writer::seqs`], in order.
    pub history: Vec<HistoryEntry>,
    /// Redemptions against orders, by member id and order id.
    pub orders: Vec<(String, String, OrderRedemptions)>,
    /// Redemptions against orders removed (moved to the member their
    /// member merged into), by member id and order id.
    pub removed_orders: Vec<(String, String)>,
    /// Members merged away: their records (and due entries) go, in the
    /// same commit as the member they went into.
    pub removed_members: Vec<String>,
    /// Aliases to store: new ones, and those re-pointed to the member
    /// their member was merged into.
    pub aliases: Vec<Alias>,
    /// When the sweep must next decide these members (see
    /// [`crate::domain::due`]); a member stored here without one keeps the
    /// moment it had (a new one is due at once).
    pub dues: Vec<(String, Due)>,
}

/// Everything an erasure writes, atomically (see [`Writer::erase`]): the
/// member's ids go from every key and record, its data stays under the
/// pseudonym.
#[derive(Debug)]
pub struct EraseCommit {
    /// The ids erased: the member's, and those merged into it.
    pub ids: Vec<String>,
    /// The member under its pseudonym (`member_id`).
    pub member: MemberState,
    /// When the sweep must next decide it.
    pub due: Due,
    /// Its receipts under the pseudonym, and the erasure's own.
    pub receipts: Vec<(String, Receipt)>,
    /// Its history entries (and those of the ids merged into it) under the
    /// pseudonym, in seq order.
    pub history: Vec<HistoryEntry>,
    /// The erasure's record.
    pub erasure: Erasure,
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
        member_from_bytes(&self.key, &self.value)
    }
}

/// Decodes a stored record of type `R` into its domain type `T`.
fn from_bytes<R, T>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError>
where
    R: DeserializeOwned,
    T: TryFrom<R, Error = BadTime>,
{
    let record: R = codec::decode(key, bytes)?;
    T::try_from(record).map_err(|err| StoreError::corrupt(key, err.to_string()))
}

/// Decodes a receipt: of this format ([`codec::RECEIPT_ENCODING`]), or of
/// formats 5 to 7, which had no minimums and are read without a rewrite.
fn receipt_from_bytes(key: &[u8], bytes: &[u8]) -> Result<Receipt, StoreError> {
    let record: ReceiptRecord = match bytes.first() {
        Some(&codec::RECORD_ENCODING) => {
            codec::decode_as::<ReceiptRecordV7>(codec::RECORD_ENCODING, key, bytes)?
                .with_no_basket()
        }
        _ => codec::decode_as(codec::RECEIPT_ENCODING, key, bytes)?,
    };
    Receipt::try_from(record).map_err(|err| StoreError::corrupt(key, err.to_string()))
}

/// Encodes a receipt as this format keeps it.
fn receipt_to_bytes(receipt: &Receipt) -> Vec<u8> {
    codec::encode_as(codec::RECEIPT_ENCODING, &ReceiptRecord::from(receipt))
}

/// Decodes a member's value, in sled's layout (its due moment first) or a
/// database's ([`codec::split_member`]).
fn member_from_bytes(key: &[u8], bytes: &[u8]) -> Result<MemberState, StoreError> {
    let record: MemberRecord = codec::decode_member::<_, MemberRecordV8>(key, bytes)?;
    MemberState::try_from(record).map_err(|err| StoreError::corrupt(key, err.to_string()))
}

/// What a write job gets: reads of the state as the job's transaction sees
/// it, and commits. Whatever a job reads of a member stays true until the
/// job ends (see the module comment).
pub enum Writer<'a> {
    /// A job on sled's writer thread.
    Sled(&'a mut SledWriter),
    /// A job in a PostgreSQL transaction.
    Postgres(&'a PgWriter<'a>),
}

/// Calls the same method on whichever engine the writer is.
macro_rules! on_engine {
    ($writer:expr, $engine:ident => $call:expr) => {
        match $writer {
            Writer::Sled($engine) => $call,
            Writer::Postgres($engine) => $call,
        }
    };
}

/// A job's books are the store as the job sees it: the service's
/// bookkeeping runs the domain's code over them (see [`Books`]).
impl Books for Writer<'_> {
    type Error = StoreError;

    fn receipt(&self, transaction_id: &str) -> Result<Option<Receipt>, StoreError> {
        on_engine!(self, w => w.receipt(transaction_id))
    }

    fn order(
        &self,
        member_id: &str,
        order_id: &str,
    ) -> Result<Option<OrderRedemptions>, StoreError> {
        on_engine!(self, w => w.order(member_id, order_id))
    }

    fn owner(&self, member_id: &str) -> Result<String, StoreError> {
        Ok(self
            .alias(member_id)?
            .map_or_else(|| member_id.to_owned(), |alias| alias.into))
    }
}

impl Writer<'_> {
    /// A transaction id's receipt and a member's state, as this job sees
    /// them: what every write reads first, in one round trip on a database.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn receipt_and_member(
        &self,
        transaction_id: &str,
        member_id: &str,
    ) -> Result<(Option<Receipt>, Option<MemberState>), StoreError> {
        match self {
            Writer::Sled(w) => Ok((w.receipt(transaction_id)?, w.member(member_id)?)),
            Writer::Postgres(w) => w.receipt_and_member(transaction_id, member_id),
        }
    }

    /// A member's state, as this job sees it.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn member(&self, member_id: &str) -> Result<Option<MemberState>, StoreError> {
        on_engine!(self, w => w.member(member_id))
    }

    /// The history entry numbered `seq`.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn history_entry(&self, seq: u64) -> Result<Option<HistoryEntry>, StoreError> {
        on_engine!(self, w => w.history_entry(seq))
    }

    /// The alias of `member_id`, if it was merged into another member.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn alias(&self, member_id: &str) -> Result<Option<Alias>, StoreError> {
        on_engine!(self, w => w.alias(member_id))
    }

    /// The aliases that lead to `into`, by id.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn aliases_into(&self, into: &str) -> Result<Vec<Alias>, StoreError> {
        on_engine!(self, w => w.aliases_into(into))
    }

    /// Every order `member_id` redeemed against, by order id.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn orders_of(
        &self,
        member_id: &str,
    ) -> Result<Vec<(String, OrderRedemptions)>, StoreError> {
        on_engine!(self, w => w.orders_of(member_id))
    }

    /// The seqs for the next `count` history entries, in order. Commit the
    /// entries numbered with them before asking again.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn seqs(&self, count: usize) -> Result<Vec<u64>, StoreError> {
        match self {
            Writer::Sled(w) => Ok(w.seqs(count)),
            Writer::Postgres(w) => w.seqs(count),
        }
    }

    /// Stores a commit atomically with the rest of the job.
    ///
    /// # Errors
    /// On a storage failure; then nothing of the job is stored.
    pub fn commit(&mut self, commit: &Commit) -> Result<(), StoreError> {
        on_engine!(self, w => w.commit(commit))
    }

    /// Stores an erasure atomically with the rest of the job: the erased
    /// ids' member records, due entries, history index entries, aliases and
    /// redemptions against orders go; the member, its receipts, history
    /// entries and orders are written under the pseudonym.
    ///
    /// # Errors
    /// On a storage failure; then nothing of the job is stored.
    pub fn erase(&mut self, erasure: &EraseCommit) -> Result<(), StoreError> {
        on_engine!(self, w => w.erase(erasure))
    }

    /// Records that a rules version went live, unless it is the version
    /// recorded last already: nodes starting together on the same rules
    /// record it once (on a database, reading the last version locks the
    /// rules history until the transaction ends, so they take turns).
    /// Returns whether it recorded.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn record_rules_version(&mut self, version: &RulesVersion) -> Result<bool, StoreError> {
        let last = on_engine!(self, w => w.last_rules_version())?;
        if last.is_some_and(|last| last.content_hash == version.content_hash) {
            return Ok(false);
        }
        on_engine!(self, w => w.record_rules_version(version))?;
        Ok(true)
    }

    /// Keeps `seq` as the last history entry the webhook endpoint `name`
    /// delivered.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn set_delivery_position(&mut self, name: &str, seq: u64) -> Result<(), StoreError> {
        on_engine!(self, w => w.set_delivery_position(name, seq))
    }

    /// Writes a consistent snapshot of every record to `out` as a backup
    /// file; returns the bytes written.
    ///
    /// # Errors
    /// On a storage or write failure.
    pub fn snapshot(&mut self, out: impl std::io::Write) -> Result<u64, StoreError> {
        on_engine!(self, w => w.snapshot(out))
    }
}

/// The durable store, on whichever engine `--store` chose. Cheap to share
/// behind an `Arc`.
pub struct Store {
    engine: Engine,
}

enum Engine {
    Sled(SledStore),
    Postgres(PgStore),
}

/// Calls the same method on whichever engine the store is.
macro_rules! on_store {
    ($store:expr, $engine:ident => $call:expr) => {
        match &$store.engine {
            Engine::Sled($engine) => $call,
            Engine::Postgres($engine) => $call,
        }
    };
}

impl Store {
    /// Opens (or creates) a sled data directory, migrating an older format.
    ///
    /// # Errors
    /// When sled cannot open it, or it holds a format this build cannot
    /// read.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(SledStore::open(dir)?.into())
    }

    /// Opens the store at `location`: a sled directory, or a PostgreSQL
    /// database (whose schema is brought up to date first).
    ///
    /// # Errors
    /// As [`Store::open`]; for PostgreSQL, when the database cannot be
    /// reached or its schema is newer than this build's.
    pub fn at(location: &Location) -> Result<Self, StoreError> {
        match location {
            Location::Sled(dir) => Self::open(dir),
            Location::Postgres(url) => Ok(Self {
                engine: Engine::Postgres(PgStore::connect(url)?),
            }),
        }
    }

    /// Where backups are staged before they are streamed: the data
    /// directory (same disk as the data), or the system's temporary
    /// directory for a database.
    pub fn scratch_dir(&self) -> PathBuf {
        match &self.engine {
            Engine::Sled(store) => store.dir().to_owned(),
            Engine::Postgres(_) => std::env::temp_dir(),
        }
    }

    /// A member's state, if the member exists.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn member(&self, member_id: &str) -> Result<Option<MemberState>, StoreError> {
        on_store!(self, s => s.member(member_id))
    }

    /// The alias of `member_id`, if it was merged into another member.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn alias(&self, member_id: &str) -> Result<Option<Alias>, StoreError> {
        on_store!(self, s => s.alias(member_id))
    }

    /// On a database: rewrites tierd's tables without the row versions
    /// that updates and deletes left behind (`VACUUM FULL`), such as those
    /// an erasure replaced. `None` on sled, whose data directory is
    /// rewritten whole instead (`tierd compact`).
    ///
    /// # Errors
    /// On a database failure.
    pub fn vacuum(&self) -> Option<Result<(), StoreError>> {
        match &self.engine {
            Engine::Sled(_) => None,
            Engine::Postgres(store) => Some(store.vacuum()),
        }
    }

    /// The member `member_id` names: the one stored under it, or, for an
    /// id merged into another, that member with the alias that led there;
    /// `None` for an id that names neither.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn landing(
        &self,
        member_id: &str,
    ) -> Result<Option<(MemberState, Option<Alias>)>, StoreError> {
        if let Some(member) = self.member(member_id)? {
            return Ok(Some((member, None)));
        }
        let Some(alias) = self.alias(member_id)? else {
            return Ok(None);
        };
        Ok(self
            .member(&alias.into)?
            .map(|member| (member, Some(alias))))
    }

    /// The ids merged into `into` (directly or through a member merged
    /// into it later), in id order.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn aliases_into(&self, into: &str) -> Result<Vec<String>, StoreError> {
        on_store!(self, s => s.aliases_into(into))
    }

    /// The receipt of a transaction id, if it was recorded.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn receipt(&self, transaction_id: &str) -> Result<Option<Receipt>, StoreError> {
        on_store!(self, s => s.receipt(transaction_id))
    }

    /// Every receipt of the requests naming one of `member_ids`, by
    /// transaction id (in id order). On sled this reads every receipt
    /// stored.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn receipts_of(&self, member_ids: &[String]) -> Result<Vec<(String, Receipt)>, StoreError> {
        on_store!(self, s => s.receipts_of(member_ids))
    }

    /// `member_id`'s redemptions against orders, by order id.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn orders_of(
        &self,
        member_id: &str,
    ) -> Result<Vec<(String, OrderRedemptions)>, StoreError> {
        on_store!(self, s => s.orders_of(member_id))
    }

    /// Up to `limit` history entries of a member after the entry numbered
    /// `after` (0: from the first), in the order they happened, and whether
    /// more follow.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn history(
        &self,
        member_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<HistoryEntry>, bool), StoreError> {
        on_store!(self, s => s.history(member_id, after, limit))
    }

    /// The stream's watermark: every history entry with a seq below it is
    /// durable and no entry below it will ever appear. Changes as writes
    /// become durable (on PostgreSQL, as transactions on any node end).
    pub fn durable_seqs(&self) -> tokio::sync::watch::Receiver<u64> {
        on_store!(self, s => s.durable_seqs())
    }

    /// Whether the store can be reached: always for sled; for a database,
    /// whether it answered the last look. Serving health follows it.
    pub fn reachable(&self) -> tokio::sync::watch::Receiver<bool> {
        match &self.engine {
            Engine::Sled(_) => tokio::sync::watch::channel(true).1,
            Engine::Postgres(store) => store.reachable(),
        }
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
        on_store!(self, s => s.history_between(after, below, limit))
    }

    /// The last history seq the webhook endpoint `name` has delivered (0:
    /// none yet).
    ///
    /// # Errors
    /// On a storage failure or a damaged position.
    pub fn delivery_position(&self, name: &str) -> Result<u64, StoreError> {
        on_store!(self, s => s.delivery_position(name))
    }

    /// Every member's stored record, undecoded, in member id order: for
    /// whole-store reads that decode on several threads
    /// ([`RawMember::decode`]).
    pub fn raw_members(&self) -> Box<dyn Iterator<Item = Result<RawMember, StoreError>> + '_> {
        on_store!(self, s => Box::new(s.raw_members()))
    }

    /// The members the sweep must decide by `as_of` under the rules
    /// `rules` ([`crate::domain::due::rules_id`]), in member id order: those
    /// whose due moment has come, and every member whose moment was worked
    /// out under other rules (or never).
    ///
    /// # Errors
    /// On a storage failure.
    pub fn due_member_ids(
        &self,
        rules: RulesId,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, StoreError> {
        on_store!(self, s => s.due_member_ids(rules, as_of))
    }

    /// Every member id, in order.
    pub fn member_ids(&self) -> Box<dyn Iterator<Item = Result<String, StoreError>> + '_> {
        on_store!(self, s => Box::new(s.member_ids()))
    }

    /// Whether other nodes may write to this store at the same time (a
    /// database); a sled directory is locked by the one process that
    /// opened it.
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// Up to `limit` rules versions that went live after position `after`
    /// (positions count 1, 2, 3... in the order versions went live; 0 is
    /// before the first), oldest
    /// first, each with its position: a page, so that no answer holds every
    /// version's text at once.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn rules_versions_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, RulesVersion)>, StoreError> {
        on_store!(self, s => s.rules_versions_after(after, limit))
    }

    /// The rules version at `position`, if there is one.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn rules_version_at(&self, position: u64) -> Result<Option<RulesVersion>, StoreError> {
        on_store!(self, s => s.rules_version_at(position))
    }

    /// The bytes the store holds on disk: the sled directory's files, or
    /// the database's size.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        on_store!(self, s => s.size_bytes())
    }

    /// The rules version that went live last, if any.
    ///
    /// # Errors
    /// On a storage failure or an undecodable record.
    pub fn last_rules_version(&self) -> Result<Option<RulesVersion>, StoreError> {
        on_store!(self, s => s.last_rules_version())
    }

    /// Runs `job` and returns its result once whatever it committed is
    /// durable. On sled it runs once, on the writer thread, after every job
    /// queued before it; on PostgreSQL it runs in a transaction, again from
    /// the start when the database reports a conflict (so it must have no
    /// effect but through the writer).
    ///
    /// # Errors
    /// [`StoreError::WriterStopped`] when the store is shutting down or the
    /// job panicked; [`StoreError::Durability`] or
    /// [`StoreError::Unavailable`] when the outcome is unknown (a retry
    /// with the same transaction id settles it); a database error that
    /// stayed after the last rerun.
    pub async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut Writer<'_>) -> T + Send + 'static,
    {
        match &self.engine {
            Engine::Sled(store) => store.write(move |w| job(&mut Writer::Sled(w))).await,
            Engine::Postgres(store) => store.write(job).await,
        }
    }

    /// Returns once every write answered so far is durable, whether or not
    /// anything was written since: the last step of a clean shutdown.
    ///
    /// # Errors
    /// As [`Store::write`].
    pub async fn sync(&self) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sled(store) => store.sync().await,
            // A write is answered only once committed durably.
            Engine::Postgres(_) => Ok(()),
        }
    }
}

impl From<SledStore> for Store {
    fn from(store: SledStore) -> Self {
        Self {
            engine: Engine::Sled(store),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_a_sled_directory_or_a_postgres_url() {
        assert_eq!(
            "sled:./data".parse::<Location>(),
            Ok(Location::Sled("./data".into()))
        );
        let url = "postgres://tierd:s3cret@db.internal:5432/loyalty";
        assert_eq!(url.parse::<Location>(), Ok(Location::Postgres(url.into())));
        for refused in [
            "./data",
            "sled:",
            "mysql://db/x",
            "postgres://db:notaport/x",
        ] {
            let err = refused.parse::<Location>().expect_err(refused);
            assert!(!err.is_empty(), "{refused}");
        }
        assert!(
            "./data"
                .parse::<Location>()
                .expect_err("a bare path")
                .contains("sled:DIR")
        );
    }

    #[test]
    fn a_logged_store_never_shows_its_password() {
        let location: Location = "postgres://tierd:s3cret@db/loyalty".parse().expect("valid");
        assert_eq!(location.to_string(), "postgres://tierd:***@db/loyalty");
        assert_eq!(format!("{location:?}"), "postgres://tierd:***@db/loyalty");
        let no_password: Location = "postgres://tierd@db/loyalty".parse().expect("valid");
        assert_eq!(no_password.to_string(), "postgres://tierd@db/loyalty");
    }
}
