//! `tierd compact`: rewrites a store so that it holds its live records and
//! nothing else, such as the old bytes of a member erased since
//! (`EraseMember`).
//!
//! sled writes a log: a record replaced or removed stays in the data files
//! until sled reuses their space. Compacting a data directory (of a
//! stopped service) copies its records into a new directory next to it,
//! as `tierd migrate-store` does, then puts the copy in its place: the
//! old directory is renamed aside, the copy renamed in, and the old one
//! removed. On PostgreSQL it runs `VACUUM FULL` on tierd's tables, which
//! the running nodes may go on using meanwhile (they wait on its locks).

use std::{path::Path, process::ExitCode};

use anyhow::Context as _;

use super::{StoreArgs, migrate_store, open_stopped};
use crate::store::Location;

/// Runs `tierd compact`.
///
/// # Errors
/// A store that cannot be opened or written, or a compaction interrupted
/// before (its copy is left for the operator to look at).
pub fn run(store: StoreArgs) -> anyhow::Result<ExitCode> {
    match store.location() {
        Some(Location::Postgres(url)) => vacuum(Location::Postgres(url)),
        Some(Location::Sled(dir)) => compact_dir(&dir),
        None => compact_dir(Path::new(crate::config::DEFAULT_DATA)),
    }
}

fn vacuum(location: Location) -> anyhow::Result<ExitCode> {
    let store = open_stopped(Some(location.clone()))?;
    if let Some(vacuumed) = store.vacuum() {
        vacuumed.with_context(|| format!("vacuuming {location}"))?;
    }
    out!("vacuumed tierd's tables in {location}")?;
    Ok(ExitCode::SUCCESS)
}

fn compact_dir(dir: &Path) -> anyhow::Result<ExitCode> {
    let beside = |suffix: &str| {
        let mut name = dir.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let (copy, aside) = (beside(".compacting"), beside(".before-compaction"));
    for left in [&copy, &aside] {
        anyhow::ensure!(
            !left.exists(),
            "{} is left from a compaction that was interrupted: look at it, remove it, and compact again",
            left.display()
        );
    }
    migrate_store(
        &Location::Sled(dir.to_owned()),
        &Location::Sled(copy.clone()),
    )?;
    std::fs::rename(dir, &aside).with_context(|| format!("moving {} aside", dir.display()))?;
    std::fs::rename(&copy, dir).with_context(|| format!("moving the copy to {}", dir.display()))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|directory| directory.sync_all())
            .with_context(|| format!("syncing {}", parent.display()))?;
    }
    std::fs::remove_dir_all(&aside).with_context(|| format!("removing {}", aside.display()))?;
    out!("compacted {}", dir.display())?;
    Ok(ExitCode::SUCCESS)
}
