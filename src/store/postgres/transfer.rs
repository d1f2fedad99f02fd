//! Backups of a database store, and restores into one, in the backup file
//! both engines share (sled's key/value layout, [`crate::store::backup`]):
//! a programme moves between sled and PostgreSQL through it.
//!
//! - **Snapshot**: one `REPEATABLE READ` read-only transaction, so the file
//!   is one consistent moment while the nodes go on writing; each table is
//!   streamed row by row, in bounded memory, and written as the sled
//!   records it stands for (a history row also as its index entry; the
//!   history counter as one past the highest seq).
//! - **Restore**: into empty tables only, in transactions of
//!   [`RESTORE_BATCH`] records. Each member's `member_seq` counts its
//!   entries in seq order, as the file lists them. Seqs keep their values:
//!   entries written later get higher ones on either engine, so a stream
//!   consumer's position stays valid.

use std::io::Write;

use futures::{StreamExt as _, pin_mut};
use tokio_postgres::types::ToSql;

use super::{
    PgStore, from_sql_seq,
    lanes::Lane,
    writer::{Value, Write as Statement},
};
use crate::domain::merge::Alias;
use crate::store::{
    FORMAT_VERSION, StoreError,
    backup::{BackupError, BackupFile, Records},
    codec, from_bytes, keys, receipt_from_bytes,
    records::{AliasRecord, HistoryRecord},
};

/// Records restored per transaction.
pub const RESTORE_BATCH: usize = 2_000;

/// Writes every record of the database to `out` as a backup file; returns
/// the bytes written.
///
/// # Errors
/// On a database or write failure.
pub(super) fn snapshot(lane: &Lane, out: impl Write) -> Result<u64, StoreError> {
    let client = lane.client();
    lane.wait(client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"))?;
    let written = write_all(lane, out);
    let _ = lane.wait(client.batch_execute("COMMIT"));
    written
}

fn write_all(lane: &Lane, out: impl Write) -> Result<u64, StoreError> {
    let mut file = BackupFile::start(out)?;
    file.record(keys::FORMAT, &FORMAT_VERSION.to_be_bytes())?;
    let mut next_seq = 1_u64;
    each_row(
        lane,
        "SELECT seq, member_id, record FROM tierd_history ORDER BY seq",
        |row| {
            let seq = from_sql_seq(row.try_get(0)?);
            let member_id: &str = row.try_get(1)?;
            file.record(&keys::history(seq), row.try_get(2)?)?;
            file.record(&keys::index(member_id, seq), &[])?;
            next_seq = seq.saturating_add(1);
            Ok(())
        },
    )?;
    file.record(keys::NEXT_SEQ, &next_seq.to_be_bytes())?;
    let tables: [(&str, KeyOf); 8] = [
        ("SELECT member_id, record FROM tierd_members", |row| {
            Ok(keys::member(row.try_get(0)?))
        }),
        ("SELECT transaction_id, record FROM tierd_receipts", |row| {
            Ok(keys::receipt(row.try_get(0)?))
        }),
        ("SELECT n, record FROM tierd_rules_versions", |row| {
            Ok(keys::rules_version(from_sql_seq(row.try_get(0)?)))
        }),
        (
            "SELECT member_id, record, order_id FROM tierd_orders",
            |row| Ok(keys::order(row.try_get(0)?, row.try_get(2)?)),
        ),
        (
            "SELECT endpoint, int8send(seq) FROM tierd_deliveries",
            |row| Ok(keys::delivery(row.try_get(0)?)),
        ),
        ("SELECT member_id, record FROM tierd_aliases", |row| {
            Ok(keys::alias(row.try_get(0)?))
        }),
        ("SELECT pseudonym, record FROM tierd_erasures", |row| {
            Ok(keys::erasure(row.try_get(0)?))
        }),
        // The aliases' index, which sled keeps and a database derives.
        (
            "SELECT into_id, ''::bytea, member_id FROM tierd_aliases",
            |row| Ok(keys::alias_into(row.try_get(0)?, row.try_get(2)?)),
        ),
    ];
    for (sql, key) in tables {
        each_row(lane, sql, |row| {
            let value: &[u8] = row.try_get(1)?;
            Ok(file.record(&key(row)?, value)?)
        })?;
    }
    Ok(file.finish()?)
}

/// The sled key a row stands for.
type KeyOf = fn(&tokio_postgres::Row) -> Result<Vec<u8>, StoreError>;

/// Calls `each` with every row `sql` returns, streamed.
fn each_row(
    lane: &Lane,
    sql: &str,
    mut each: impl FnMut(&tokio_postgres::Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let none: [&(dyn ToSql + Sync); 0] = [];
    let rows = lane.wait(lane.client().query_raw(sql, none))?;
    pin_mut!(rows);
    while let Some(row) = lane.wait(rows.next()) {
        each(&row?)?;
    }
    Ok(())
}

/// Restores the backup `records` into the database at `url`, whose tierd
/// tables must be empty.
///
/// # Errors
/// A backup of an older format, a database that holds data, a damaged
/// record, or a database failure.
pub fn restore(mut records: Records, url: &str) -> Result<(), BackupError> {
    if records.format != FORMAT_VERSION {
        return Err(BackupError::OlderFormat {
            found: records.format,
            supported: FORMAT_VERSION,
        });
    }
    let store = PgStore::connect(url)?;
    if store.holds_data()? {
        return Err(BackupError::NotEmpty(super::without_password(url)));
    }
    let mut member_seqs = std::collections::HashMap::<String, i64>::new();
    loop {
        let mut batch = Vec::with_capacity(RESTORE_BATCH);
        while batch.len() < RESTORE_BATCH {
            let Some((key, value)) = records.next_record()? else {
                break;
            };
            if let Some(statement) = statement_for(&key, value, &mut member_seqs)? {
                batch.push(statement);
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        store.transaction_blocking(move |writer| {
            for statement in &batch {
                writer.hold(statement.sql, statement.params.clone());
            }
        })?;
    }
}

/// The row a backup record becomes; `None` for what a database derives
/// (the history and alias indexes, the counter, the format).
fn statement_for(
    key: &[u8],
    value: Vec<u8>,
    member_seqs: &mut std::collections::HashMap<String, i64>,
) -> Result<Option<Statement>, StoreError> {
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| StoreError::corrupt(key, "a key that is not UTF-8"))
    };
    let statement = |sql, params| Ok(Some(Statement { sql, params }));
    if let Some(id) = key.strip_prefix(keys::MEMBERS) {
        // A sled backup's member starts with its due moment, which a
        // database keeps in columns: left empty, the member is due at once.
        return statement(
            "INSERT INTO tierd_members (member_id, record) VALUES ($1, $2)",
            vec![
                Value::Text(text(id)?),
                Value::Bytes(codec::without_due(key, &value)?),
            ],
        );
    }
    if let Some(id) = key.strip_prefix(keys::RECEIPTS) {
        let receipt = receipt_from_bytes(key, &value)?;
        return statement(
            "INSERT INTO tierd_receipts (transaction_id, member_id, record) VALUES ($1, $2, $3)",
            vec![
                Value::Text(text(id)?),
                Value::Text(receipt.member_id),
                Value::Bytes(value),
            ],
        );
    }
    if let Some(seq) = keys::number_after(keys::HISTORY, key) {
        let entry: crate::domain::decide::HistoryEntry =
            from_bytes::<HistoryRecord, _>(key, &value)?;
        let member_seq = member_seqs.entry(entry.member_id.clone()).or_default();
        *member_seq += 1;
        return statement(
            "INSERT INTO tierd_history (seq, member_id, member_seq, record) VALUES ($1, $2, $3, $4)",
            vec![
                Value::Int(super::to_sql_seq(seq)),
                Value::Text(entry.member_id),
                Value::Int(*member_seq),
                Value::Bytes(value),
            ],
        );
    }
    if let Some(n) = keys::number_after(keys::RULES, key) {
        return statement(
            "INSERT INTO tierd_rules_versions (n, record) VALUES ($1, $2)",
            vec![Value::Int(super::to_sql_seq(n)), Value::Bytes(value)],
        );
    }
    if let Some(rest) = key.strip_prefix(keys::ORDERS) {
        let split = rest
            .iter()
            .position(|byte| *byte == 0xFF)
            .ok_or_else(|| StoreError::corrupt(key, "an order key without its separator"))?;
        return statement(
            "INSERT INTO tierd_orders (member_id, order_id, record) VALUES ($1, $2, $3)",
            vec![
                Value::Text(text(&rest[..split])?),
                Value::Text(text(&rest[split + 1..])?),
                Value::Bytes(value),
            ],
        );
    }
    if let Some(id) = key.strip_prefix(keys::ALIASES) {
        let alias: Alias = from_bytes::<AliasRecord, _>(key, &value)?;
        return statement(
            "INSERT INTO tierd_aliases (member_id, into_id, record) VALUES ($1, $2, $3)",
            vec![
                Value::Text(text(id)?),
                Value::Text(alias.into),
                Value::Bytes(value),
            ],
        );
    }
    if let Some(pseudonym) = key.strip_prefix(keys::ERASURES) {
        return statement(
            "INSERT INTO tierd_erasures (pseudonym, record) VALUES ($1, $2)",
            vec![Value::Text(text(pseudonym)?), Value::Bytes(value)],
        );
    }
    if let Some(name) = key.strip_prefix(keys::DELIVERIES) {
        let seq = keys::number_after(b"", &value)
            .ok_or_else(|| StoreError::corrupt(key, "not 8 bytes"))?;
        return statement(
            "INSERT INTO tierd_deliveries (endpoint, seq) VALUES ($1, $2)",
            vec![Value::Text(text(name)?), Value::Int(super::to_sql_seq(seq))],
        );
    }
    Ok(None)
}
