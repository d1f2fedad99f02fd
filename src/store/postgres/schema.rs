//! The database schema, in versioned migration files run at start.
//!
//! `tierd_schema` lists the migrations applied. At start a node applies the
//! ones missing, each in its own transaction with its row in
//! `tierd_schema`, so a migration is applied whole or not at all. Several
//! nodes may start at once: no advisory lock (CockroachDB has none) but each
//! migration first claims its row in `tierd_schema`, whose primary key makes
//! the others wait and then find it applied. A database whose schema
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
    (
        5,
        "aliases and erasures",
        include_str!("migrations/0005_aliases.sql"),
    ),
];

/// How often a start retries creating `tierd_schema` itself, which two
/// nodes creating it at the same moment may collide on.
const ATTEMPTS: usize = 5;

/// Applies the migrations the database lacks, then checks that its records
/// are of a format this build reads.
///
/// # Errors
/// When the database fails, or is newer than this build.
pub(super) async fn bring_up_to_date(client: &Object) -> Result<(), StoreError> {
    create_schema_table(client).await?;
    refuse_a_newer_schema(client).await?;
    for (version, name, sql) in MIGRATIONS {
        apply_unless_applied(client, *version, name, sql).await?;
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

/// Creates the table of applied migrations if it is missing. Two nodes
/// doing so at the same moment may collide on the catalogue's duplicate
/// row or type: the loser looks again and finds the table there.
async fn create_schema_table(client: &Object) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        let created = client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS tierd_schema (
                    version INT8 PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )",
            )
            .await
            .map_err(StoreError::from);
        match created {
            Err(StoreError::Database { code, .. }) if attempt + 1 < ATTEMPTS && is_race(&code) => {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A failure that another node creating the same table at the same moment
/// causes: a duplicate row, table or type.
fn is_race(code: &str) -> bool {
    matches!(code, "23505" | "42P07" | "42710" | "40001")
}

async fn refuse_a_newer_schema(client: &Object) -> Result<(), StoreError> {
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
    Ok(())
}

/// Applies one migration in its own transaction unless it is applied.
///
/// The transaction first claims the migration's row in `tierd_schema`. A
/// node starting at the same moment waits on that claim: once the claimer
/// commits, the waiter's claim inserts nothing and it moves on to the next
/// migration; if the claimer rolls back, the waiter applies it. So however
/// many nodes start together, each migration runs once, in order, and no
/// node fails for having lost the race.
async fn apply_unless_applied(
    client: &Object,
    version: i64,
    name: &str,
    sql: &str,
) -> Result<(), StoreError> {
    client.batch_execute("BEGIN").await?;
    let applied = async {
        let claimed = client
            .execute(
                "INSERT INTO tierd_schema (version, name) VALUES ($1, $2)
                 ON CONFLICT (version) DO NOTHING",
                &[&version, &name],
            )
            .await?;
        if claimed == 0 {
            client.batch_execute("ROLLBACK").await?;
            return Ok(false);
        }
        client.batch_execute(sql).await?;
        client.batch_execute("COMMIT").await?;
        Ok::<_, tokio_postgres::Error>(true)
    }
    .await;
    match applied {
        Ok(true) => {
            tracing::info!(version, name, "database schema migrated");
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(err) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(err.into())
        }
    }
}
