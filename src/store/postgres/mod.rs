//! The shared store: a PostgreSQL-protocol database under several tierd
//! nodes. Tables are in `migrations/` (applied at start by [`schema`]);
//! records are the sled engine's, encoded the same way.
//!
//! # One transaction per write
//! [`PgStore::write`] runs a job in a `READ COMMITTED` transaction with
//! `synchronous_commit` on. The job locks each member it reads (`SELECT
//! ... FOR UPDATE`), so two nodes writing the same member take turns and
//! the second reads what the first committed. What locking cannot order
//! the database refuses: two nodes recording the same new transaction id or
//! creating the same new member collide on a primary key (23505), two batch
//! writes that lock members in opposite orders deadlock (40P01), and a
//! `SERIALIZABLE` engine (CockroachDB, YugabyteDB) reports serialization
//! failures (40001) and ambiguous commits (40003). Each of these reruns
//! the whole job from `BEGIN`, after a capped, jittered backoff
//! ([`writer::run`]); the rerun finds the receipt the other node committed
//! and answers as a retry, so nothing counts twice.
//!
//! # History order, across nodes
//! A global counter, as sled keeps, would make every write of every node
//! queue on one row. Instead:
//! - **Per member**, `member_seq` counts 1, 2, 3... in the order the
//!   entries happened (taken under the member's row lock): a member's
//!   history pages by it.
//! - **Across members**, an entry's `seq` is its transaction's id
//!   (`pg_current_xact_id()`, 64 bits with the epoch) shifted left by
//!   [`SEQ_BITS`], plus its place in the transaction. Seqs are unique and
//!   known before the commit (a receipt keeps them), but a transaction with
//!   a lower id may commit after one with a higher. So the stream reads
//!   only below a watermark: the oldest transaction id still running
//!   anywhere (`pg_snapshot_xmin` of a current snapshot), shifted the same
//!   way. Every transaction below it has ended, and every new one gets a
//!   higher id, so no entry ever appears below the watermark once it has
//!   passed: a consumer that resumes after the last seq it saw misses
//!   nothing and sees nothing twice. The watermark is polled every
//!   [`WATERMARK_POLL`], and after a local write (at most every
//!   [`WATERMARK_GAP`]). A transaction
//!   held open (a stuck client of the same database) holds the stream back
//!   until it ends; it never reorders it.
//!
//! # Threads
//! A write job runs on a lane ([`lanes`]): a thread that owns one
//! connection and drives it itself while the job waits for a statement.
//! Reads use a pool whose connections run on a small runtime of the
//! store's own, so the store answers from any thread: async workers, the
//! scan threads of a report, tools outside any runtime. A read on an async
//! worker waits for its statement (one round trip) as a sled read waits
//! for the disk, but tells tokio so (`block_in_place`): the worker's other
//! tasks move on without it. While the database is known to be down a read
//! fails at once (UNAVAILABLE) instead of waiting for the pool.

mod lanes;
mod schema;
mod transfer;
mod writer;

use std::{collections::VecDeque, future::Future, sync::Arc, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::{runtime::Handle, sync::Notify};
use tokio_postgres::{NoTls, types::ToSql};

pub use transfer::restore;
pub use writer::PgWriter;

use super::{
    RawMember, StoreError, Writer, from_bytes, keys, member_from_bytes, receipt_from_bytes,
    records::{AliasRecord, HistoryRecord, OrderRecord, RulesVersionRecord},
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

/// Bits of a seq that number the entries of one transaction.
pub const SEQ_BITS: u32 = 20;

/// How often the stream's watermark is read when no local write moved it.
pub const WATERMARK_POLL: Duration = Duration::from_millis(100);

/// The least time between two reads of the watermark: under load every
/// write wakes the poller, and reading after each would add a query per
/// write; this bounds it to 100 a second and the stream's delay to 10 ms.
pub const WATERMARK_GAP: Duration = Duration::from_millis(10);

/// Write connections per node ([`lanes`]): each write holds one for its
/// transaction. Reads share a pool of as many.
pub const POOL_SIZE: usize = 32;

/// How long a request waits for a connection (or for the database to
/// answer a new one) before it is answered UNAVAILABLE.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Members read per round trip by whole-store scans.
const PAGE: i64 = 2_000;

/// `url` with its password, if any, replaced by `***`: for logs.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// The store on a PostgreSQL-protocol database.
pub struct PgStore {
    /// Connections for reads and the watermark.
    pool: Pool,
    /// Connections for writes, each with its thread.
    lanes: lanes::Lanes,
    /// Runs the connections; shut down (without waiting) on drop.
    runtime: Option<tokio::runtime::Runtime>,
    handle: Handle,
    durable: tokio::sync::watch::Receiver<u64>,
    /// Whether the last look at the database reached it.
    reachable: tokio::sync::watch::Receiver<bool>,
    /// Wakes the watermark poller after a local write.
    wrote: Arc<Notify>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Waits for `future` on this thread. Only for futures that need no
/// runtime of their own: a statement on a connection the store's runtime
/// drives, or a task spawned there.
fn wait<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

impl PgStore {
    /// Connects to `url`, brings the schema up to date and starts the
    /// stream's watermark.
    ///
    /// # Errors
    /// When the database cannot be reached, or its schema is newer than
    /// this build's.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| StoreError::Unavailable(format!("{}: {err}", without_password(url))))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tierd-postgres")
            .enable_all()
            .build()?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let lanes = lanes::Lanes::start(&config, POOL_SIZE)?;
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        let handle = runtime.handle().clone();
        let (watermark, durable) = tokio::sync::watch::channel(0);
        let (reached, reachable) = tokio::sync::watch::channel(true);
        let store = Self {
            pool,
            lanes,
            runtime: Some(runtime),
            handle,
            durable,
            reachable,
            wrote: Arc::new(Notify::new()),
        };
        store.blocking(async |client| schema::bring_up_to_date(client).await)?;
        watermark.send_replace(store.blocking(async |client| read_watermark(client).await)?);
        store.handle.spawn(poll_watermark(
            store.pool.clone(),
            Looks { watermark, reached },
            Arc::clone(&store.wrote),
        ));
        Ok(store)
    }

    /// A connection from the pool (made on the store's runtime).
    async fn client(&self) -> Result<Object, StoreError> {
        let pool = self.pool.clone();
        self.handle
            .spawn(async move { pool.get().await })
            .await
            .map_err(|err| StoreError::Unavailable(err.to_string()))?
            .map_err(|err| StoreError::Unavailable(err.to_string()))
    }

    /// Runs `work` on a pooled connection, waiting on this thread. While
    /// the database is known to be unreachable it fails at once with
    /// [`StoreError::Unavailable`] instead of waiting for the pool's
    /// timeout. On a worker of a multi-threaded tokio runtime (a handler,
    /// the stream, the webhooks) the wait is announced to tokio
    /// (`block_in_place`), which moves the worker's other tasks (health
    /// checks among them) to another thread while this one waits.
    fn blocking<T>(
        &self,
        work: impl AsyncFnOnce(&Object) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !*self.reachable.borrow() {
            return Err(StoreError::Unavailable(
                "the database did not answer the last check".into(),
            ));
        }
        let read = || {
            wait(async {
                let client = self.client().await?;
                work(&client).await
            })
        };
        let on_a_worker = Handle::try_current().is_ok_and(|runtime| {
            runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        if on_a_worker {
            tokio::task::block_in_place(read)
        } else {
            read()
        }
    }

    /// The first row's first column of `sql`, decoded as record `R` into
    /// `T`; `key` names the record in an error.
    fn record<R, T>(
        &self,
        key: &[u8],
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, StoreError>
    where
        R: serde::de::DeserializeOwned,
        T: TryFrom<R, Error = super::records::BadTime>,
    {
        Ok(self.records::<R, T>(key, sql, params)?.into_iter().next())
    }

    /// All rows' first column of `sql`, each decoded as record `R` into `T`.
    fn records<R, T>(
        &self,
        key: &[u8],
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<T>, StoreError>
    where
        R: serde::de::DeserializeOwned,
        T: TryFrom<R, Error = super::records::BadTime>,
    {
        decode_all::<R, T>(key, &self.rows(sql, params)?)
    }

    /// The rows of `sql`.
    fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.blocking(async |client| {
            let statement = client.prepare_cached(sql).await?;
            Ok(client.query(&statement, params).await?)
        })
    }

    /// See [`super::Store::vacuum`].
    pub fn vacuum(&self) -> Result<(), StoreError> {
        self.blocking(async |client| {
            client
                .batch_execute(
                    "VACUUM FULL tierd_members, tierd_receipts, tierd_history, tierd_orders, \
                     tierd_aliases, tierd_erasures",
                )
                .await?;
            Ok(())
        })
    }

    /// See [`super::Store::member`].
    pub fn member(&self, member_id: &str) -> Result<Option<MemberState>, StoreError> {
        let key = keys::member(member_id);
        let rows = self.rows(
            "SELECT record FROM tierd_members WHERE member_id = $1",
            &[&member_id],
        )?;
        rows.first()
            .map(|row| member_from_bytes(&key, row.try_get(0)?))
            .transpose()
    }

    /// See [`super::Store::receipts_of`].
    pub fn receipts_of(&self, member_ids: &[String]) -> Result<Vec<(String, Receipt)>, StoreError> {
        let rows = self.rows(
            "SELECT transaction_id, record FROM tierd_receipts WHERE member_id = ANY($1) \
             ORDER BY transaction_id",
            &[&member_ids],
        )?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                let receipt = receipt_from_bytes(&keys::receipt(&id), row.try_get(1)?)?;
                Ok((id, receipt))
            })
            .collect()
    }

    /// See [`super::Store::orders_of`].
    pub fn orders_of(
        &self,
        member_id: &str,
    ) -> Result<Vec<(String, OrderRedemptions)>, StoreError> {
        let rows = self.rows(ORDERS_OF, &[&member_id])?;
        orders_from(member_id, &rows)
    }

    /// See [`super::Store::alias`].
    pub fn alias(&self, member_id: &str) -> Result<Option<Alias>, StoreError> {
        let rows = self.rows(ALIAS, &[&member_id])?;
        Ok(
            decode_all::<AliasRecord, _>(&keys::alias(member_id), &rows)?
                .into_iter()
                .next(),
        )
    }

    /// See [`super::Store::aliases_into`].
    pub fn aliases_into(&self, into: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.rows(
            "SELECT member_id FROM tierd_aliases WHERE into_id = $1 ORDER BY member_id",
            &[&into],
        )?;
        rows.iter()
            .map(|row| Ok(row.try_get::<_, String>(0)?))
            .collect()
    }

    /// See [`super::Store::receipt`].
    pub fn receipt(&self, transaction_id: &str) -> Result<Option<Receipt>, StoreError> {
        let key = keys::receipt(transaction_id);
        let rows = self.rows(
            "SELECT record FROM tierd_receipts WHERE transaction_id = $1",
            &[&transaction_id],
        )?;
        rows.first()
            .map(|row| receipt_from_bytes(&key, row.try_get(0)?))
            .transpose()
    }

    /// See [`super::Store::history`]: pages by `member_seq`, after the entry
    /// numbered `after`.
    pub fn history(
        &self,
        member_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<HistoryEntry>, bool), StoreError> {
        let mut entries = self.records::<HistoryRecord, _>(
            &keys::index_prefix(member_id),
            "SELECT record FROM tierd_history WHERE member_id = $1 AND member_seq > \
             coalesce((SELECT member_seq FROM tierd_history WHERE seq = $2 AND member_id = $1), 0) \
             ORDER BY member_seq LIMIT $3",
            &[&member_id, &to_sql_seq(after), &page_limit(limit)],
        )?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        Ok((entries, more))
    }

    /// See [`super::Store::durable_seqs`].
    pub fn durable_seqs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.durable.clone()
    }

    /// See [`super::Store::reachable`]: read every [`WATERMARK_POLL`].
    pub fn reachable(&self) -> tokio::sync::watch::Receiver<bool> {
        self.reachable.clone()
    }

    /// See [`super::Store::history_between`].
    pub fn history_between(
        &self,
        after: u64,
        below: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        self.records::<HistoryRecord, _>(
            b"tierd_history",
            "SELECT record FROM tierd_history WHERE seq > $1 AND seq < $2 ORDER BY seq LIMIT $3",
            &[
                &to_sql_seq(after),
                &to_sql_seq(below),
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
    }

    /// See [`super::Store::delivery_position`].
    pub fn delivery_position(&self, name: &str) -> Result<u64, StoreError> {
        self.blocking(async |client| {
            let statement = client
                .prepare_cached("SELECT seq FROM tierd_deliveries WHERE endpoint = $1")
                .await?;
            let seq: Option<i64> = client
                .query_opt(&statement, &[&name])
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
            Ok(seq.map_or(0, from_sql_seq))
        })
    }

    /// See [`super::Store::rules_versions_after`].
    pub fn rules_versions_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, RulesVersion)>, StoreError> {
        let (after, limit) = (to_sql_seq(after), i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = self.blocking(async |client| {
            let statement = client
                .prepare_cached(
                    "SELECT record, n + 1 FROM tierd_rules_versions WHERE n >= $1 ORDER BY n LIMIT $2",
                )
                .await?;
            Ok(client.query(&statement, &[&after, &limit]).await?)
        })?;
        let versions = decode_all::<RulesVersionRecord, RulesVersion>(keys::RULES, &rows)?;
        let positions = rows
            .iter()
            .map(|row| Ok(from_sql_seq(row.try_get(1)?)))
            .collect::<Result<Vec<u64>, StoreError>>()?;
        Ok(positions.into_iter().zip(versions).collect())
    }

    /// See [`super::Store::rules_version_at`].
    pub fn rules_version_at(&self, position: u64) -> Result<Option<RulesVersion>, StoreError> {
        self.record::<RulesVersionRecord, _>(
            keys::RULES,
            "SELECT record FROM tierd_rules_versions WHERE n + 1 = $1",
            &[&to_sql_seq(position)],
        )
    }

    /// See [`super::Store::size_bytes`].
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        self.blocking(async |client| {
            let row = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await?;
            Ok(from_sql_seq(row.try_get(0)?))
        })
    }

    /// See [`super::Store::last_rules_version`].
    pub fn last_rules_version(&self) -> Result<Option<RulesVersion>, StoreError> {
        self.record::<RulesVersionRecord, _>(
            keys::RULES,
            "SELECT record FROM tierd_rules_versions ORDER BY n DESC LIMIT 1",
            &[],
        )
    }

    /// See [`super::Store::raw_members`].
    pub fn raw_members(&self) -> impl Iterator<Item = Result<RawMember, StoreError>> + '_ {
        self.pages(
            "SELECT member_id, record FROM tierd_members WHERE member_id > $1 \
             ORDER BY member_id LIMIT $2",
            |id, row| {
                let value: Vec<u8> = row.try_get(1)?;
                Ok(RawMember {
                    key: keys::member(id).into(),
                    value: value.into(),
                })
            },
        )
    }

    /// See [`super::Store::due_member_ids`].
    pub fn due_member_ids(
        &self,
        rules: u64,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let rules = rules.cast_signed();
        let as_of = as_of.timestamp_micros();
        let rows = self.blocking(async |client| {
            let statement = client
                .prepare_cached(
                    "SELECT member_id FROM tierd_members \
                     WHERE due_rules IS DISTINCT FROM $1 OR due_at <= $2 ORDER BY member_id",
                )
                .await?;
            Ok(client.query(&statement, &[&rules, &as_of]).await?)
        })?;
        rows.iter()
            .map(|row| row.try_get::<_, String>(0).map_err(StoreError::from))
            .collect()
    }

    /// See [`super::Store::member_ids`].
    pub fn member_ids(&self) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
        self.pages(
            "SELECT member_id FROM tierd_members WHERE member_id > $1 \
             ORDER BY member_id LIMIT $2",
            |id, _| Ok(id.to_owned()),
        )
    }

    /// Every member, a page of [`PAGE`] at a time, each row made into an
    /// item by `item` (given the member id).
    fn pages<'s, T: 's>(
        &'s self,
        sql: &'static str,
        item: impl Fn(&str, &tokio_postgres::Row) -> Result<T, StoreError> + 's,
    ) -> impl Iterator<Item = Result<T, StoreError>> + 's {
        let mut after = Some(String::new());
        let mut page: VecDeque<Result<T, StoreError>> = VecDeque::new();
        std::iter::from_fn(move || {
            if page.is_empty() {
                let from = after.take()?;
                let rows = self.blocking(async |client| {
                    let statement = client.prepare_cached(sql).await?;
                    Ok(client.query(&statement, &[&from, &PAGE]).await?)
                });
                match rows {
                    Err(err) => page.push_back(Err(err)),
                    Ok(rows) => {
                        let full = rows.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
                        for row in &rows {
                            let entry = row
                                .try_get::<_, &str>(0)
                                .map_err(StoreError::from)
                                .and_then(|id| {
                                    if full {
                                        after = Some(id.to_owned());
                                    }
                                    item(id, row)
                                });
                            page.push_back(entry);
                        }
                    }
                }
            }
            page.pop_front()
        })
    }

    /// See [`super::Store::write`]: `job` runs in a transaction on the
    /// store's blocking pool, again from the start after a conflict.
    pub async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut Writer<'_>) -> T + Send + 'static,
    {
        self.transaction(move |tx| job(&mut Writer::Postgres(tx)))
            .await
    }

    /// Runs `job` in a transaction, again after a conflict; answered once
    /// committed.
    async fn transaction<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&PgWriter<'_>) -> T + Send + 'static,
    {
        let outcome = self.lanes.run(move |lane| writer::run(lane, &job)).await;
        self.wrote.notify_one();
        outcome
    }

    /// [`PgStore::transaction`], waiting on this thread (for tools that
    /// run outside the async runtime).
    fn transaction_blocking<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&PgWriter<'_>) -> T + Send + 'static,
    {
        wait(self.transaction(job))
    }

    /// Whether any member, receipt or history entry is stored.
    fn holds_data(&self) -> Result<bool, StoreError> {
        self.blocking(async |client| {
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM tierd_members) \
                     OR EXISTS (SELECT 1 FROM tierd_receipts) \
                     OR EXISTS (SELECT 1 FROM tierd_history)",
                    &[],
                )
                .await?;
            Ok(row.try_get(0)?)
        })
    }
}

/// The records in the first column of `rows`, each decoded as record `R`
/// into `T`; `key` names them in an error.
fn decode_all<R, T>(key: &[u8], rows: &[tokio_postgres::Row]) -> Result<Vec<T>, StoreError>
where
    R: serde::de::DeserializeOwned,
    T: TryFrom<R, Error = super::records::BadTime>,
{
    rows.iter()
        .map(|row| from_bytes::<R, T>(key, row.try_get(0)?))
        .collect()
}

/// A member's redemptions against orders, by order id.
const ORDERS_OF: &str =
    "SELECT order_id, record FROM tierd_orders WHERE member_id = $1 ORDER BY order_id";

/// A member id's alias.
const ALIAS: &str = "SELECT record FROM tierd_aliases WHERE member_id = $1";

/// The rows of [`ORDERS_OF`] for `member_id`, decoded.
fn orders_from(
    member_id: &str,
    rows: &[tokio_postgres::Row],
) -> Result<Vec<(String, OrderRedemptions)>, StoreError> {
    rows.iter()
        .map(|row| {
            let id: String = row.try_get(0)?;
            let key = keys::order(member_id, &id);
            let order = from_bytes::<OrderRecord, OrderRedemptions>(&key, row.try_get(1)?)?;
            Ok((id, order))
        })
        .collect()
}

/// `limit + 1` rows, to tell whether more follow.
fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)
}

/// A seq as an INT8 column holds it (seqs stay below 2^63).
fn to_sql_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A seq read from an INT8 column.
fn from_sql_seq(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

/// The stream's watermark: the oldest transaction id still running, as a
/// seq (see the module comment).
async fn read_watermark(client: &Object) -> Result<u64, StoreError> {
    let xmin: i64 = client
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8",
            &[],
        )
        .await?
        .try_get(0)?;
    Ok(from_sql_seq(xmin) << SEQ_BITS)
}

/// What each look at the database tells: the stream's watermark, and
/// whether the database answered.
struct Looks {
    watermark: tokio::sync::watch::Sender<u64>,
    reached: tokio::sync::watch::Sender<bool>,
}

/// Looks at the database every [`WATERMARK_POLL`], or after a local write
/// (at most once per [`WATERMARK_GAP`]): moves the watermark forward as transactions end, and tells
/// whether the database answers. Ends when the store is dropped.
async fn poll_watermark(pool: Pool, looks: Looks, wrote: Arc<Notify>) {
    while !looks.watermark.is_closed() {
        tokio::select! {
            () = tokio::time::sleep(WATERMARK_POLL) => {}
            () = wrote.notified() => {}
        }
        let read = match pool.get().await {
            Ok(client) => read_watermark(&client).await,
            Err(err) => Err(StoreError::Unavailable(err.to_string())),
        };
        looks.reached.send_if_modified(|reached| {
            let changed = *reached != read.is_ok();
            *reached = read.is_ok();
            changed
        });
        match read {
            Ok(seq) => {
                looks.watermark.send_if_modified(|current| {
                    let moved = seq > *current;
                    *current = (*current).max(seq);
                    moved
                });
            }
            Err(err) => tracing::warn!(error = %err, "the database does not answer"),
        }
        tokio::time::sleep(WATERMARK_GAP).await;
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => StoreError::Database {
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
            },
            None => match err.code() {
                Some(code) => StoreError::Database {
                    code: code.code().to_owned(),
                    message: err.to_string(),
                },
                None => StoreError::Unavailable(err.to_string()),
            },
        }
    }
}
