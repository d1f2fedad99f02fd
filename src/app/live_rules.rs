//! The rules in force, and how they change without a restart.
//!
//! The running rules and the moment they went live sit together, as one
//! value, behind an `ArcSwap`: a reader always sees a version with its own
//! activation time, and each request loads one `Arc` at its start and runs
//! entirely under that version, so a switch is atomic for concurrent
//! requests. A reload reads the rules file again (on a blocking thread:
//! reading and compiling a file is not work for the async workers); only a
//! file that validates replaces the running rules. A file that fails leaves
//! them in force, and the failure (with its `file:line:column` diagnostics)
//! is kept for `GetRules`. Every version that goes live is recorded in the
//! store with its text, content hash, label and time.
//!
//! Several nodes on one database follow each other: each looks at the last
//! version recorded every [`super::RULES_POLL`] and puts it in force when it
//! differs ([`LiveRules::follow`]), so the last version put live on any node
//! is in force on every node within that bound.
//!
//! A file with an `effective_from` in the future is *staged*: it is valid
//! and waiting, shown by `GetRules`, and goes live by itself at the first
//! request (or sweep) at or after that moment ([`LiveRules::activate_due`]).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use super::ProgramError;
use crate::{
    rules::{self, Diagnostic, Rejected, RuleSet, RulesVersion},
    store::{Store, StoreError},
    telemetry,
};

/// A reload that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadFailure {
    /// When it was tried.
    pub at: DateTime<Utc>,
    /// Every problem of the file, each at its line and column.
    pub rejected: Rejected,
}

/// The version in force: the rules and when they went live, swapped as one.
struct Live {
    rules: Arc<RuleSet>,
    activated_at: DateTime<Utc>,
}

/// The rules in force and their history.
pub struct LiveRules {
    live: ArcSwap<Live>,
    file: Option<PathBuf>,
    last_failure: Mutex<Option<ReloadFailure>>,
    /// A valid version waiting for its `effective_from`.
    staged: Mutex<Option<Arc<RuleSet>>>,
    /// One reload at a time, so two reloads never race to go live.
    reloading: tokio::sync::Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data behind these locks stays valid even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LiveRules {
    /// Rules in force from now, optionally reloadable from `file`.
    pub fn new(rules: Arc<RuleSet>, file: Option<PathBuf>, now: DateTime<Utc>) -> Self {
        Self {
            live: ArcSwap::from_pointee(Live {
                rules,
                activated_at: now,
            }),
            file,
            last_failure: Mutex::new(None),
            staged: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The rules in force; hold the `Arc` for the whole request.
    pub fn current(&self) -> Arc<RuleSet> {
        Arc::clone(&self.live.load().rules)
    }

    /// The rules file reloads read, if any.
    pub fn file(&self) -> Option<&PathBuf> {
        self.file.as_ref()
    }

    /// How diagnostics name the rules: their file, else `rules`.
    fn file_name(&self) -> &std::path::Path {
        self.file
            .as_deref()
            .unwrap_or_else(|| std::path::Path::new("rules"))
    }

    /// The version in force, as recorded.
    pub fn active(&self) -> RulesVersion {
        let live = self.live.load();
        RulesVersion::of(&live.rules, live.activated_at)
    }

    fn go(&self, rules: Arc<RuleSet>, activated_at: DateTime<Utc>) {
        let before = self.current();
        metrics::gauge!(telemetry::RULES_ACTIVE, "version" => before.version.clone()).set(0.0);
        metrics::gauge!(telemetry::RULES_ACTIVE, "version" => rules.version.clone()).set(1.0);
        self.live.store(Arc::new(Live {
            rules,
            activated_at,
        }));
    }

    /// The staged version and when it goes live, if one is waiting.
    pub fn scheduled(&self) -> Option<RulesVersion> {
        lock(&self.staged).as_ref().map(|rules| {
            let at = rules.effective_from.unwrap_or(DateTime::<Utc>::MIN_UTC);
            RulesVersion::of(rules, at)
        })
    }

    /// Puts the staged version in force if its time has come by `now`, and
    /// records it. Cheap when nothing is due (one uncontended lock).
    ///
    /// # Errors
    /// On a storage failure; the staged version then stays staged.
    pub async fn activate_due(&self, store: &Store, now: DateTime<Utc>) -> Result<(), StoreError> {
        let is_due = |staged: &Option<Arc<RuleSet>>| {
            staged
                .as_ref()
                .is_some_and(|r| r.effective_from.is_none_or(|at| at <= now))
        };
        if !is_due(&lock(&self.staged)) {
            return Ok(());
        }
        let _one_at_a_time = self.reloading.lock().await;
        let next = {
            let staged = lock(&self.staged);
            if is_due(&staged) {
                staged.clone()
            } else {
                None
            }
        };
        let Some(next) = next else {
            return Ok(());
        };
        let at = next.effective_from.unwrap_or(now);
        record(store, RulesVersion::of(&next, at)).await?;
        *lock(&self.staged) = None;
        tracing::info!(rules_version = %next.version, "staged rules went live");
        self.go(next, at);
        Ok(())
    }

    /// The last reload that failed, until a later one succeeds.
    pub fn last_failure(&self) -> Option<ReloadFailure> {
        lock(&self.last_failure).clone()
    }

    /// Records the running version in the store, unless it is the last one
    /// recorded already (a restart on the same rules). A file staged for
    /// later is held back and the last version that was live runs meanwhile.
    ///
    /// # Errors
    /// `RulesRejected` when the file's version label was put live before
    /// with other content; a storage failure.
    pub async fn go_live(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<RulesVersion, ProgramError> {
        let _one_at_a_time = self.reloading.lock().await;
        let last = store.last_rules_version()?;
        let file_rules = self.current();
        let running = last
            .as_ref()
            .map_or_else(String::new, |v| v.version.clone());
        refuse_a_reused_label(store, &file_rules, self.file_name(), running)?;
        if file_rules.effective_from.is_some_and(|at| at > now) {
            let previous = last.as_ref().and_then(|v| rules::load(v).ok());
            match (previous, &last) {
                (Some(previous), Some(version)) => {
                    *lock(&self.staged) = Some(file_rules);
                    self.go(Arc::new(previous), version.activated_at);
                    return Ok(self.active());
                }
                _ => tracing::warn!(
                    rules_version = %file_rules.version,
                    "the rules file is staged for later but no earlier version is known: it goes live now"
                ),
            }
        }
        let active = self.active();
        if last.is_some_and(|v| v.content_hash == active.content_hash) {
            return Ok(active);
        }
        record(store, active.clone()).await?;
        Ok(active)
    }

    /// Reads the rules file again and puts it in force if it validates and
    /// differs from the running rules. Returns the version in force and
    /// whether it changed.
    ///
    /// # Errors
    /// [`ProgramError::RulesRejected`] when the file does not validate (the
    /// failure is kept for [`LiveRules::last_failure`]);
    /// `FailedPrecondition` when the rules came from no file; a storage
    /// failure.
    pub async fn reload(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<(RulesVersion, bool), ProgramError> {
        let _one_at_a_time = self.reloading.lock().await;
        let file = self.file.clone().ok_or_else(|| {
            ProgramError::precondition(
                "",
                "the rules were not loaded from a file, so there is nothing to reload",
            )
        })?;
        let loaded = tokio::task::spawn_blocking(move || rules::load(&file))
            .await
            .map_err(|_| ProgramError::precondition("", "reading the rules failed"))?;
        let candidate = match loaded {
            Ok(rules) => rules,
            Err(rejected) => {
                let running = self.current().version.clone();
                tracing::warn!(diagnostics = %rejected, rules_version = %running, "rules reload refused");
                metrics::counter!(telemetry::RULES_RELOAD_FAILURES).increment(1);
                *lock(&self.last_failure) = Some(ReloadFailure {
                    at: now,
                    rejected: rejected.clone(),
                });
                return Err(ProgramError::RulesRejected { rejected, running });
            }
        };
        let running = self.current().version.clone();
        if let Err(refused) = refuse_a_reused_label(store, &candidate, self.file_name(), running) {
            metrics::counter!(telemetry::RULES_RELOAD_FAILURES).increment(1);
            if let ProgramError::RulesRejected { rejected, .. } = &refused {
                *lock(&self.last_failure) = Some(ReloadFailure {
                    at: now,
                    rejected: rejected.clone(),
                });
            }
            return Err(refused);
        }
        *lock(&self.last_failure) = None;
        if candidate.content_hash == self.current().content_hash {
            *lock(&self.staged) = None;
            return Ok((self.active(), false));
        }
        if let Some(at) = candidate.effective_from.filter(|at| *at > now) {
            let mut staged = lock(&self.staged);
            // The watcher may see one edit as several changes: say it once.
            if staged
                .as_ref()
                .is_none_or(|s| s.content_hash != candidate.content_hash)
            {
                tracing::info!(rules_version = %candidate.version, effective_from = %at.to_rfc3339(), "rules staged");
            }
            *staged = Some(Arc::new(candidate));
            drop(staged);
            return Ok((self.active(), false));
        }
        *lock(&self.staged) = None;
        let version = RulesVersion::of(&candidate, now);
        record(store, version.clone()).await?;
        self.go(Arc::new(candidate), now);
        tracing::info!(rules_version = %version.version, content_hash = %version.content_hash, "rules reloaded");
        Ok((version, true))
    }
}

impl LiveRules {
    /// Puts in force here the version another node put live: when the last
    /// version recorded in the store is not the one in force, it is loaded
    /// from its recorded text and goes live, keeping its activation time.
    /// Returns whether it did. A recorded version this build cannot load
    /// is logged and left; the running rules stay.
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn follow(&self, store: &Store) -> Result<bool, StoreError> {
        let Some(last) = store.last_rules_version()? else {
            return Ok(false);
        };
        if last.content_hash == self.current().content_hash {
            return Ok(false);
        }
        let _one_at_a_time = self.reloading.lock().await;
        if last.content_hash == self.current().content_hash {
            return Ok(false);
        }
        let activated_at = last.activated_at;
        let label = last.version.clone();
        match tokio::task::spawn_blocking(move || rules::load(&last)).await {
            Ok(Ok(rules)) => {
                tracing::info!(rules_version = %rules.version, "rules put live by another node");
                self.go(Arc::new(rules), activated_at);
                Ok(true)
            }
            Ok(Err(rejected)) => {
                tracing::error!(rules_version = %label, diagnostics = %rejected, "another node put rules live that this node cannot load");
                Ok(false)
            }
            Err(_) => Ok(false),
        }
    }
}

/// Versions read at a time while looking for a label.
const LABELS_PAGE: usize = 64;

/// Refuses `rules` when its version label was put live before with other
/// content (see [`RulesVersion::reused_by`]).
///
/// # Errors
/// `RulesRejected` at the `version:` line, with both content hashes
/// (`running` is the version that stays); a storage failure.
fn refuse_a_reused_label(
    store: &Store,
    rules: &RuleSet,
    file: &std::path::Path,
    running: String,
) -> Result<(), ProgramError> {
    match label_reused(store, rules, file)? {
        None => Ok(()),
        Some(diagnostic) => Err(ProgramError::RulesRejected {
            rejected: Rejected::one(diagnostic),
            running,
        }),
    }
}

/// The problem of putting `rules` live under a label recorded in `store`
/// with other content, if there is one: what `serve`, a reload and
/// `tierd rules check --data` all ask.
///
/// # Errors
/// A storage failure.
pub fn label_reused(
    store: &Store,
    rules: &RuleSet,
    file: &std::path::Path,
) -> Result<Option<Diagnostic>, StoreError> {
    let mut after = 0;
    loop {
        let page = store.rules_versions_after(after, LABELS_PAGE)?;
        let Some(&(last, _)) = page.last() else {
            return Ok(None);
        };
        after = last;
        if let Some(problem) = page.iter().find_map(|(_, v)| v.reused_by(rules, file)) {
            return Ok(Some(problem));
        }
    }
}

async fn record(store: &Store, version: RulesVersion) -> Result<(), StoreError> {
    store
        .write(move |writer| writer.record_rules_version(&version))
        .await?
        .map(drop)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::TimeDelta;

    use super::*;

    /// A reader never sees one version with another's activation time:
    /// both are read from one value. (When they were two fields set one
    /// after the other, a reader between the two stores saw them torn.)
    #[test]
    fn a_version_and_its_activation_time_are_seen_together() {
        let example = rules::load(Path::new("rules/example.yaml")).expect("example rules");
        let versions: Vec<Arc<RuleSet>> = (0..2)
            .map(|i| {
                let mut rules = example.clone();
                rules.version = format!("v{i}");
                Arc::new(rules)
            })
            .collect();
        let start = DateTime::UNIX_EPOCH;
        // Version vN goes live at N days.
        let at = |n: usize| start + TimeDelta::days(n as i64);
        let live = LiveRules::new(Arc::clone(&versions[0]), None, at(0));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for round in 0..20_000 {
                    let n = round % 2;
                    live.go(Arc::clone(&versions[n]), at(n));
                }
            });
            for _ in 0..20_000 {
                let seen = live.active();
                let n: usize = seen.version[1..].parse().expect("vN");
                assert_eq!(seen.activated_at, at(n), "{} torn", seen.version);
            }
        });
    }
}
