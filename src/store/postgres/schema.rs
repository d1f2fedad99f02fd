//! The database schema, in versioned migration files run at start.
//!
//! `tierd_schema` lists the migrations applied. At start a node applies the
//! ones missing, each in its own transaction with its row in
//! `tierd_schema`, so a migration is applied whole or not at all. Several
//! nodes may start at once: no advisory lock (CockroachDB has none) but the
//! primary key of `tierd_schema` decides, and a node that lost the race
//! finds the migration applied when it looks again. A database whose schema
//! or record format is newer than this build's is refused.

use deadpool_postgres::Object;

use super::super::{FORMAT_VERSION, StoreError};

/// Every migration, in order: version, name, SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "tables", include_str!("migrations/0001_tables.sql")),
    (2, "due", include_str!("migrations/0002_due.sql")),
    (
        3,
        "receipt minimums",
        include_str!("migrations/0003_receipt_minimums.sql"),
    ),
    (
        4,
        "member rewards",
        include_str!("migrations/0004_member_rewards.sql"),
    ),
];

/// How often a start retries after losing a race to another node.
const ATTEMPTS: usize = 5;

/// Applies the migrations the database lacks, then checks that its records
/// are of a format this build reads.
///
/// # Errors
/// When the database fails, or is newer than this build.
pub(super) async fn bring_up_to_date(client: &Object) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        match apply_missing(client).await {
            Ok(()) => break,
            Err(StoreError::Database { code, .. }) if attempt + 1 < ATTEMPTS && is_race(&code) => {
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    }
    let format: i64 = client
        .query_one(
            "SELECT value FROM tierd_meta WHERE name = 'record_format'",
            &[],
        )
        .await?
        .try_get(0)?;
    let supported = i64::from(FORMAT_VERSION);
    if format > supported {
        return Err(StoreError::FormatVersion {
            found: u32::try_from(format).unwrap_or(u32::MAX),
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// A failure that another node starting at the same moment causes: a
/// duplicate row, table, column or type.
fn is_race(code: &str) -> bool {
    matches!(code, "23505" | "42P07" | "42701" | "42710" | "40001")
}

async fn apply_missing(client: &Object) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS tierd_schema (
                version INT8 PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let applied: Option<i64> = client
        .query_one("SELECT max(version) FROM tierd_schema", &[])
        .await?
        .try_get(0)?;
    let applied = applied.unwrap_or(0);
    let known = MIGRATIONS.last().map_or(0, |(version, ..)| *version);
    if applied > known {
        return Err(StoreError::Unsupported(format!(
            "the database has schema version {applied}, but this tierd knows up to {known}: run a newer tierd"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, ..)| *v > applied) {
        client.batch_execute("BEGIN").await?;
        let applied = async {
            client.batch_execute(sql).await?;
            client
                .execute(
                    "INSERT INTO tierd_schema (version, name) VALUES ($1, $2)",
                    &[version, name],
                )
                .await?;
            client.batch_execute("COMMIT").await
        }
        .await;
        if let Err(err) = applied {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(err.into());
        }
        tracing::info!(version, name, "database schema migrated");
    }
    Ok(())
}
