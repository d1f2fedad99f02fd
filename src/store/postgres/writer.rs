//! A write job's transaction on PostgreSQL, and the loop that reruns it
//! after a conflict (see the parent module).
//!
//! The job is synchronous (the same job runs on sled's writer thread), so
//! each statement waits for its answer on the job's lane ([`super::lanes`]).
//! The first statement that fails ends the transaction: the writer keeps
//! that failure, refuses every later statement with it, and [`run`] rolls
//! back and either reruns the job or answers with it.

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::future::join_all;
use tokio_postgres::{Row, types::ToSql};

use super::{SEQ_BITS, decode_all, from_sql_seq, lanes::Lane, to_sql_seq};
use crate::{
    domain::{
        decide::HistoryEntry,
        due::Due,
        member::MemberState,
        merge::Alias,
        receipt::{OrderRedemptions, Receipt},
    },
    rules::RulesVersion,
    store::{
        Commit, EraseCommit, StoreError, codec, keys, member_from_bytes, receipt_from_bytes,
        receipt_to_bytes,
        records::{
            AliasRecord, ErasureRecord, HistoryRecord, MemberRecord, OrderRecord,
            RulesVersionRecord,
        },
    },
    telemetry,
};

/// Most runs of one job: the first and up to nine reruns.
pub const MAX_ATTEMPTS: u32 = 10;

/// The backoff before the first rerun; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(2);

/// The longest backoff before a rerun.
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// What starts every job's transaction. `synchronous_commit` is set here,
/// whatever the server's default, because an answered write must survive
/// a crash of the database too.
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit TO on";

/// A parameter of a write, owned until the write is sent.
#[derive(Clone)]
pub(super) enum Value {
    Text(String),
    Texts(Vec<String>),
    Bytes(Vec<u8>),
    Int(i64),
}

/// A due moment as the columns `due_rules` and `due_at` hold it (see
/// `migrations/0002_due.sql`).
fn due_values(due: &Due) -> Vec<Value> {
    vec![
        Value::Int(due.rules.cast_signed()),
        Value::Int(due.at.map_or(i64::MAX, |at| at.timestamp_micros())),
    ]
}

impl Value {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Value::Text(text) => text,
            Value::Texts(texts) => texts,
            Value::Bytes(bytes) => bytes,
            Value::Int(int) => int,
        }
    }
}

/// A write held back until the next statement that needs an answer.
pub(super) struct Write {
    pub(super) sql: &'static str,
    pub(super) params: Vec<Value>,
}

/// One read: its SQL and parameters.
type Read<'q> = (&'q str, &'q [&'q (dyn ToSql + Sync)]);

/// What ends a pipeline: reads whose rows the job waits for, or COMMIT.
enum Tail<'q> {
    Reads(&'q [Read<'q>]),
    Commit,
}

/// A transaction id's receipt.
const RECEIPT: &str = "SELECT record FROM tierd_receipts WHERE transaction_id = $1";

/// A transaction id's receipt (NULL: none) and the transaction's id, in one
/// row: a new member has no row to lock, and its enrolment's history entry
/// needs the id (without this, a round trip of its own).
const RECEIPT_AND_XID: &str = "SELECT (SELECT record FROM tierd_receipts WHERE transaction_id = $1), \
                               pg_current_xact_id()::text::int8";

/// A member's row, locked, with the transaction's id (locking a row gives
/// the transaction one).
const MEMBER: &str = "SELECT record, pg_current_xact_id()::text::int8 FROM tierd_members \
                      WHERE member_id = $1 FOR UPDATE";

/// A job's transaction: what [`Writer::Postgres`] reads and writes through.
///
/// Round trips are what a write costs on a database, so statements travel
/// together (tokio-postgres pipelines statements sent at once, in order):
/// `BEGIN` goes with the first read, the rows a commit writes wait and go
/// with the next read or with `COMMIT`, and the transaction's id comes
/// with the member's row. A purchase of a known member is three round
/// trips: `BEGIN` and its receipt; the member, locked; its writes and
/// `COMMIT`.
pub struct PgWriter<'c> {
    lane: &'c Lane,
    /// Whether `BEGIN` was sent.
    begun: Cell<bool>,
    /// Writes not sent yet, in order.
    pending: RefCell<Vec<Write>>,
    /// The first statement that failed; the transaction is over.
    failure: RefCell<Option<(String, String)>>,
    /// Members and receipts read as existing: a commit updates them, and
    /// inserts the others (so that two nodes creating the same one collide).
    existing_members: RefCell<HashSet<String>>,
    existing_receipts: RefCell<HashSet<String>>,
    /// The transaction's id, once known.
    xid: Cell<Option<u64>>,
    /// The place in the transaction of the next history entry.
    next_entry: Cell<u64>,
}

impl<'c> PgWriter<'c> {
    fn new(lane: &'c Lane) -> Self {
        Self {
            lane,
            begun: Cell::new(false),
            pending: RefCell::new(Vec::new()),
            failure: RefCell::new(None),
            existing_members: RefCell::new(HashSet::new()),
            existing_receipts: RefCell::new(HashSet::new()),
            xid: Cell::new(None),
            next_entry: Cell::new(0),
        }
    }

    /// The failure that ended the transaction, if one did.
    fn failure(&self) -> Option<StoreError> {
        self.failure
            .borrow()
            .as_ref()
            .map(|(code, message)| failure_error(code, message))
    }

    /// Keeps the first failure of the transaction and returns it.
    fn fail(&self, err: StoreError) -> StoreError {
        let kept = match &err {
            StoreError::Database { code, message } => (code.clone(), message.clone()),
            other => (String::new(), other.to_string()),
        };
        self.failure.borrow_mut().get_or_insert(kept);
        err
    }

    /// Sends, in one round trip and in this order: `BEGIN` if not sent yet,
    /// the held-back writes, and `tail`. Returns the rows of each read.
    fn pipeline(&self, tail: Tail<'_>) -> Result<Vec<Vec<Row>>, StoreError> {
        if let Some(failure) = self.failure() {
            return Err(failure);
        }
        let writes = std::mem::take(&mut *self.pending.borrow_mut());
        let begin = !self.begun.replace(true);
        let lane = self.lane;
        let client = lane.client();
        let sent = lane.wait(async {
            // Prepared first (from the connection's cache, after the first
            // time), so that nothing below waits before it is sent: the
            // statements go out in order.
            let mut prepared = Vec::with_capacity(writes.len());
            for write in &writes {
                prepared.push(lane.prepare(write.sql).await?);
            }
            let mut reads = Vec::new();
            if let Tail::Reads(wanted) = &tail {
                for (sql, _) in *wanted {
                    reads.push(lane.prepare(sql).await?);
                }
            }
            let begin = async {
                if begin {
                    client.batch_execute(BEGIN).await
                } else {
                    Ok(())
                }
            };
            let writes = join_all(writes.iter().zip(&prepared).map(|(write, statement)| {
                let params: Vec<&(dyn ToSql + Sync)> =
                    write.params.iter().map(Value::as_sql).collect();
                async move { client.execute(statement, &params).await }
            }));
            let tail = async {
                match &tail {
                    Tail::Reads(wanted) => join_all(
                        wanted
                            .iter()
                            .zip(&reads)
                            .map(|((_, params), statement)| client.query(statement, params)),
                    )
                    .await
                    .into_iter()
                    .collect(),
                    Tail::Commit => client.batch_execute("COMMIT").await.map(|()| Vec::new()),
                }
            };
            let (begun, written, rows) = futures::join!(begin, writes, tail);
            begun?;
            for write in written {
                write?;
            }
            rows
        });
        sent.map_err(|err| self.fail(err.into()))
    }

    /// Runs one read of the transaction (with whatever waits to be sent).
    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let mut rows = self.pipeline(Tail::Reads(&[(sql, params)]))?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// Holds a write back until the next read or the commit.
    pub(super) fn hold(&self, sql: &'static str, params: Vec<Value>) {
        self.pending.borrow_mut().push(Write { sql, params });
    }

    /// Sends what waits and commits; nothing when the job ran no statement.
    fn finish(&self) -> Result<(), StoreError> {
        if !self.begun.get() && self.pending.borrow().is_empty() {
            return Ok(());
        }
        self.pipeline(Tail::Commit).map(drop)
    }

    /// The record in the first column of the first row of `sql`, decoded.
    fn record<R, T>(
        &self,
        key: &[u8],
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, StoreError>
    where
        R: serde::de::DeserializeOwned,
        T: TryFrom<R, Error = crate::store::records::BadTime>,
    {
        Ok(decode_all::<R, T>(key, &self.query(sql, params)?)?
            .into_iter()
            .next())
    }

    /// A member's state, its row locked until the transaction ends. The
    /// transaction's id comes with it (locking a row gives the transaction
    /// one).
    pub fn member(&self, member_id: &str) -> Result<Option<MemberState>, StoreError> {
        let rows = self.query(MEMBER, &[&member_id])?;
        self.member_from(member_id, &rows)
    }

    /// A transaction id's receipt.
    pub fn receipt(&self, transaction_id: &str) -> Result<Option<Receipt>, StoreError> {
        let rows = self.query(RECEIPT, &[&transaction_id])?;
        let record = rows.first().map(|row| row.try_get(0)).transpose()?;
        self.receipt_from(transaction_id, record)
    }

    /// A transaction id's receipt and a member's state (its row locked), in
    /// one round trip: what every write reads first.
    pub fn receipt_and_member(
        &self,
        transaction_id: &str,
        member_id: &str,
    ) -> Result<(Option<Receipt>, Option<MemberState>), StoreError> {
        let rows = self.pipeline(Tail::Reads(&[
            (RECEIPT_AND_XID, &[&transaction_id]),
            (MEMBER, &[&member_id]),
        ]))?;
        let [receipt, member] = rows.as_slice() else {
            return Err(StoreError::Unsupported(
                "two reads gave other than two answers".into(),
            ));
        };
        let Some(receipt) = receipt.first() else {
            return Err(StoreError::Unsupported(
                "the receipt's read gave no row".into(),
            ));
        };
        self.xid.set(Some(from_sql_seq(receipt.try_get(1)?)));
        let receipt = self.receipt_from(transaction_id, receipt.try_get(0)?)?;
        Ok((receipt, self.member_from(member_id, member)?))
    }

    /// The member in `rows` (of [`MEMBER`]), noting the transaction's id
    /// and that the member exists.
    fn member_from(
        &self,
        member_id: &str,
        rows: &[Row],
    ) -> Result<Option<MemberState>, StoreError> {
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        self.xid.set(Some(from_sql_seq(row.try_get(1)?)));
        let key = keys::member(member_id);
        let member = member_from_bytes(&key, row.try_get(0)?)?;
        self.existing_members
            .borrow_mut()
            .insert(member_id.to_owned());
        Ok(Some(member))
    }

    /// The receipt stored as `record`, if any, noting that it exists.
    fn receipt_from(
        &self,
        transaction_id: &str,
        record: Option<&[u8]>,
    ) -> Result<Option<Receipt>, StoreError> {
        let Some(record) = record else {
            return Ok(None);
        };
        let receipt = receipt_from_bytes(&keys::receipt(transaction_id), record)?;
        self.existing_receipts
            .borrow_mut()
            .insert(transaction_id.to_owned());
        Ok(Some(receipt))
    }

    /// The redemptions of `member_id` against the order `order_id`, if any.
    pub fn order(
        &self,
        member_id: &str,
        order_id: &str,
    ) -> Result<Option<OrderRedemptions>, StoreError> {
        self.record::<OrderRecord, _>(
            &keys::order(member_id, order_id),
            "SELECT record FROM tierd_orders WHERE member_id = $1 AND order_id = $2",
            &[&member_id, &order_id],
        )
    }

    /// Every order `member_id` redeemed against, by order id.
    pub fn orders_of(
        &self,
        member_id: &str,
    ) -> Result<Vec<(String, OrderRedemptions)>, StoreError> {
        let rows = self.query(super::ORDERS_OF, &[&member_id])?;
        super::orders_from(member_id, &rows)
    }

    /// The alias of `member_id`, if it was merged into another member.
    pub fn alias(&self, member_id: &str) -> Result<Option<Alias>, StoreError> {
        self.record::<AliasRecord, _>(&keys::alias(member_id), super::ALIAS, &[&member_id])
    }

    /// The aliases that lead to `into`, by id.
    pub fn aliases_into(&self, into: &str) -> Result<Vec<Alias>, StoreError> {
        let rows = self.query(
            "SELECT record FROM tierd_aliases WHERE into_id = $1 ORDER BY member_id",
            &[&into],
        )?;
        decode_all::<AliasRecord, _>(&keys::aliases_into_prefix(into), &rows)
    }

    /// The history entry numbered `seq`.
    pub fn history_entry(&self, seq: u64) -> Result<Option<HistoryEntry>, StoreError> {
        self.record::<HistoryRecord, _>(
            &keys::history(seq),
            "SELECT record FROM tierd_history WHERE seq = $1",
            &[&to_sql_seq(seq)],
        )
    }

    /// The next `count` seqs of this transaction (see the parent module).
    pub fn seqs(&self, count: usize) -> Result<Vec<u64>, StoreError> {
        let xid = match self.xid.get() {
            Some(xid) => xid,
            None => {
                let rows = self.query("SELECT pg_current_xact_id()::text::int8", &[])?;
                let xid = rows
                    .first()
                    .map(|row| row.try_get::<_, i64>(0))
                    .transpose()?
                    .map_or(0, from_sql_seq);
                self.xid.set(Some(xid));
                xid
            }
        };
        let first = self.next_entry.get();
        let end = first.saturating_add(count as u64);
        if end > 1 << SEQ_BITS {
            return Err(StoreError::Unsupported(format!(
                "one transaction may number at most {} history entries",
                1_u64 << SEQ_BITS
            )));
        }
        self.next_entry.set(end);
        Ok((first..end).map(|n| xid << SEQ_BITS | n).collect())
    }

    /// Writes a commit's rows in this transaction (sent with the next read
    /// or the commit).
    pub fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        if let Some(failure) = self.failure() {
            return Err(failure);
        }
        let dues: HashMap<&str, &Due> = commit
            .dues
            .iter()
            .map(|(id, due)| (id.as_str(), due))
            .collect();
        for member in &commit.members {
            let record = codec::encode_member_record(&MemberRecord::from(member));
            let existing = self.existing_members.borrow().contains(&member.member_id);
            let id = Value::Text(member.member_id.clone());
            match (existing, dues.get(member.member_id.as_str())) {
                (true, Some(due)) => self.hold(
                    "UPDATE tierd_members SET record = $2, due_rules = $3, due_at = $4 \
                     WHERE member_id = $1",
                    [vec![id, Value::Bytes(record)], due_values(due)].concat(),
                ),
                (false, Some(due)) => self.hold(
                    "INSERT INTO tierd_members (member_id, record, due_rules, due_at) \
                     VALUES ($1, $2, $3, $4)",
                    [vec![id, Value::Bytes(record)], due_values(due)].concat(),
                ),
                (true, None) => self.hold(
                    "UPDATE tierd_members SET record = $2 WHERE member_id = $1",
                    vec![id, Value::Bytes(record)],
                ),
                (false, None) => self.hold(
                    "INSERT INTO tierd_members (member_id, record) VALUES ($1, $2)",
                    vec![id, Value::Bytes(record)],
                ),
            }
            self.existing_members
                .borrow_mut()
                .insert(member.member_id.clone());
        }
        // The dues of members the commit does not store otherwise, in the
        // commit's order (rows are locked in a stable order).
        let stored: HashSet<&str> = commit
            .members
            .iter()
            .map(|m| m.member_id.as_str())
            .collect();
        for (member_id, due) in &commit.dues {
            if !stored.contains(member_id.as_str()) {
                self.hold(
                    "UPDATE tierd_members SET due_rules = $2, due_at = $3 WHERE member_id = $1",
                    [vec![Value::Text(member_id.clone())], due_values(due)].concat(),
                );
            }
        }
        for member_id in &commit.removed_members {
            self.hold(
                "DELETE FROM tierd_members WHERE member_id = $1",
                vec![Value::Text(member_id.clone())],
            );
        }
        for alias in &commit.aliases {
            self.hold(
                "INSERT INTO tierd_aliases (member_id, into_id, record) VALUES ($1, $2, $3) \
                 ON CONFLICT (member_id) DO UPDATE SET into_id = excluded.into_id, record = excluded.record",
                vec![
                    Value::Text(alias.member_id.clone()),
                    Value::Text(alias.into.clone()),
                    Value::Bytes(codec::encode(&AliasRecord::from(alias))),
                ],
            );
        }
        for (member_id, order_id) in &commit.removed_orders {
            self.hold(
                "DELETE FROM tierd_orders WHERE member_id = $1 AND order_id = $2",
                vec![
                    Value::Text(member_id.clone()),
                    Value::Text(order_id.clone()),
                ],
            );
        }
        for (id, receipt) in &commit.receipts {
            let record = receipt_to_bytes(receipt);
            let sql = if self.existing_receipts.borrow().contains(id) {
                "UPDATE tierd_receipts SET record = $3 WHERE transaction_id = $1 AND member_id = $2"
            } else {
                "INSERT INTO tierd_receipts (transaction_id, member_id, record) VALUES ($1, $2, $3)"
            };
            let params = vec![
                Value::Text(id.clone()),
                Value::Text(receipt.member_id.clone()),
                Value::Bytes(record),
            ];
            self.hold(sql, params);
            self.existing_receipts.borrow_mut().insert(id.clone());
        }
        for (member_id, order_id, order) in &commit.orders {
            let record = codec::encode(&OrderRecord::from(order));
            self.hold(
                "INSERT INTO tierd_orders (member_id, order_id, record) VALUES ($1, $2, $3) \
                 ON CONFLICT (member_id, order_id) DO UPDATE SET record = excluded.record",
                vec![
                    Value::Text(member_id.clone()),
                    Value::Text(order_id.clone()),
                    Value::Bytes(record),
                ],
            );
        }
        for entry in &commit.history {
            let record = codec::encode(&HistoryRecord::from(entry));
            self.hold(
                "INSERT INTO tierd_history (seq, member_id, member_seq, record) VALUES ($1, $2, \
                 (SELECT coalesce(max(member_seq), 0) + 1 FROM tierd_history WHERE member_id = $2), $3)",
                vec![
                    Value::Int(to_sql_seq(entry.seq)),
                    Value::Text(entry.member_id.clone()),
                    Value::Bytes(record),
                ],
            );
        }
        Ok(())
    }

    /// Writes an erasure's rows in this transaction (see
    /// [`crate::store::Writer::erase`]). History entries are renumbered
    /// 1, 2, 3... under the pseudonym in seq order.
    pub fn erase(&self, erasure: &EraseCommit) -> Result<(), StoreError> {
        if let Some(failure) = self.failure() {
            return Err(failure);
        }
        let pseudonym = Value::Text(erasure.member.member_id.clone());
        let ids = Value::Texts(erasure.ids.clone());
        self.hold(
            "DELETE FROM tierd_members WHERE member_id = ANY($1)",
            vec![ids.clone()],
        );
        let record = codec::encode_member_record(&MemberRecord::from(&erasure.member));
        self.hold(
            "INSERT INTO tierd_members (member_id, record, due_rules, due_at) VALUES ($1, $2, $3, $4)",
            [
                vec![pseudonym.clone(), Value::Bytes(record)],
                due_values(&erasure.due),
            ]
            .concat(),
        );
        self.hold(
            "UPDATE tierd_orders SET member_id = $2 WHERE member_id = ANY($1)",
            vec![ids.clone(), pseudonym.clone()],
        );
        self.hold(
            "DELETE FROM tierd_aliases WHERE member_id = ANY($1)",
            vec![ids],
        );
        for (id, receipt) in &erasure.receipts {
            self.hold(
                "INSERT INTO tierd_receipts (transaction_id, member_id, record) VALUES ($1, $2, $3) \
                 ON CONFLICT (transaction_id) DO UPDATE SET member_id = excluded.member_id, \
                 record = excluded.record",
                vec![
                    Value::Text(id.clone()),
                    pseudonym.clone(),
                    Value::Bytes(receipt_to_bytes(receipt)),
                ],
            );
        }
        for (member_seq, entry) in (1_i64..).zip(&erasure.history) {
            self.hold(
                "UPDATE tierd_history SET member_id = $2, member_seq = $3, record = $4 WHERE seq = $1",
                vec![
                    Value::Int(to_sql_seq(entry.seq)),
                    pseudonym.clone(),
                    Value::Int(member_seq),
                    Value::Bytes(codec::encode(&HistoryRecord::from(entry))),
                ],
            );
        }
        self.hold(
            "INSERT INTO tierd_erasures (pseudonym, record) VALUES ($1, $2)",
            vec![
                pseudonym,
                Value::Bytes(codec::encode(&ErasureRecord::from(&erasure.erasure))),
            ],
        );
        Ok(())
    }

    /// The rules version recorded last, if any. Locks the rules history
    /// until the transaction ends (through the one `tierd_meta` row every
    /// database has), so that nodes recording a version at the same moment
    /// take turns and each sees what the one before it recorded.
    pub fn last_rules_version(&self) -> Result<Option<RulesVersion>, StoreError> {
        self.hold(
            "SELECT value FROM tierd_meta WHERE name = 'record_format' FOR UPDATE",
            Vec::new(),
        );
        self.record::<RulesVersionRecord, _>(
            keys::RULES,
            "SELECT record FROM tierd_rules_versions ORDER BY n DESC LIMIT 1",
            &[],
        )
    }

    /// Records that a rules version went live, as the next in order.
    pub fn record_rules_version(&self, version: &RulesVersion) -> Result<(), StoreError> {
        let record = codec::encode(&RulesVersionRecord::from(version));
        self.hold(
            "INSERT INTO tierd_rules_versions (n, record) \
             SELECT coalesce(max(n) + 1, 0), $1 FROM tierd_rules_versions",
            vec![Value::Bytes(record)],
        );
        Ok(())
    }

    /// Keeps `seq` as the last entry the webhook endpoint `name` delivered.
    pub fn set_delivery_position(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        self.hold(
            "INSERT INTO tierd_deliveries (endpoint, seq) VALUES ($1, $2) \
             ON CONFLICT (endpoint) DO UPDATE SET seq = excluded.seq",
            vec![Value::Text(name.to_owned()), Value::Int(to_sql_seq(seq))],
        );
        Ok(())
    }

    /// Writes a consistent snapshot of every record to `out` as a backup
    /// file (see [`super::transfer`]); it must be the job's first statement.
    pub fn snapshot(&self, out: impl std::io::Write) -> Result<u64, StoreError> {
        if self.begun.get() {
            return Err(StoreError::Unsupported(
                "a snapshot must be the first thing a write job does".into(),
            ));
        }
        super::transfer::snapshot(self.lane, out)
    }
}

/// The error a kept failure stands for.
fn failure_error(code: &str, message: &str) -> StoreError {
    if code.is_empty() {
        StoreError::Unavailable(message.to_owned())
    } else {
        StoreError::Database {
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// True for the failures a rerun of the job can get past (see the parent
/// module): serialization failure, ambiguous commit, deadlock, and a
/// primary key another node took first.
fn is_conflict(err: &StoreError) -> bool {
    matches!(err, StoreError::Database { code, .. }
        if matches!(code.as_str(), "40001" | "40003" | "40P01" | "23505"))
}

/// The wait before rerun `attempt` (1 for the first): a random part of a
/// ceiling that doubles from [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`] ("full
/// jitter"), so that the nodes that collided do not collide again.
fn backoff(attempt: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF);
    let random = getrandom::u64().unwrap_or(u64::MAX / 2);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(random % nanos.max(1))
}

/// Runs `job` in a transaction on `lane`, and commits; reruns it from the
/// start after a conflict, up to [`MAX_ATTEMPTS`] runs. A job that panics
/// is rolled back and answered [`StoreError::WriterStopped`], so the
/// connection goes back to the pool clean.
pub(super) fn run<T>(
    lane: &Lane,
    job: &(dyn Fn(&PgWriter<'_>) -> T + Send),
) -> Result<T, StoreError> {
    let mut attempt = 1;
    loop {
        match attempt_once(lane, job) {
            Err(err) if is_conflict(&err) && attempt < MAX_ATTEMPTS => {
                tracing::debug!(error = %err, attempt, "write conflicted; running it again");
                if let StoreError::Database { code, .. } = &err {
                    metrics::counter!(telemetry::STORE_RERUNS, "code" => code.clone()).increment(1);
                }
                std::thread::sleep(backoff(attempt));
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

fn attempt_once<T>(
    lane: &Lane,
    job: &(dyn Fn(&PgWriter<'_>) -> T + Send),
) -> Result<T, StoreError> {
    let transaction = PgWriter::new(lane);
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&transaction)));
    let outcome = match ran {
        Err(_) => Err(StoreError::WriterStopped),
        Ok(value) => transaction.finish().map(|()| value),
    };
    if outcome.is_err() && transaction.begun.get() {
        // Ends the transaction if COMMIT did not; on a broken connection it
        // fails too, and the pool drops the connection.
        let _ = lane.wait(lane.client().batch_execute("ROLLBACK"));
    }
    if matches!(outcome, Err(StoreError::WriterStopped)) {
        tracing::error!("a write job panicked; its transaction was rolled back");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_rerun_can_get_past_is_rerun() {
        let database = |code: &str| StoreError::Database {
            code: code.into(),
            message: String::new(),
        };
        for code in ["40001", "40003", "40P01", "23505"] {
            assert!(is_conflict(&database(code)), "{code}");
        }
        for code in ["23502", "42P01", "57014"] {
            assert!(!is_conflict(&database(code)), "{code}");
        }
        assert!(!is_conflict(&StoreError::Unavailable("gone".into())));
    }

    #[test]
    fn backoff_is_jittered_under_a_ceiling_that_doubles_up_to_the_cap() {
        for attempt in 1..=MAX_ATTEMPTS {
            let ceiling = FIRST_BACKOFF.saturating_mul(1 << attempt).min(MAX_BACKOFF);
            let waits: Vec<Duration> = (0..50).map(|_| backoff(attempt)).collect();
            assert!(
                waits.iter().all(|wait| *wait < ceiling),
                "{attempt}: {waits:?}"
            );
            let distinct: std::collections::HashSet<&Duration> = waits.iter().collect();
            assert!(distinct.len() > 1, "{attempt}: jittered, not fixed");
        }
        assert!(backoff(MAX_ATTEMPTS * 4) < MAX_BACKOFF, "capped");
    }
}
