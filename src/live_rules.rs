//! The rules in force, and how they change without a restart.
//!
//! The running [`RuleSet`] sits behind an `ArcSwap`: each request loads one
//! `Arc` at its start and evaluates entirely under that version, so a switch
//! is atomic for concurrent requests. A reload reads the rules file again;
//! only a file that validates replaces the running rules. A file that fails
//! leaves them in force, and the failure (with its `file:line:column`
//! diagnostics) is kept for `GetRules`. Every version that goes live is
//! recorded in the store with its text, content hash, label and time.
//!
//! A file with an `effective_from` in the future is *staged*: it is valid
//! and waiting, shown by `GetRules`, and goes live by itself at the first
//! request at or after that moment ([`LiveRules::activate_due`]).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::{
    rules::{self, RuleSet},
    store::{RulesVersion, Store, StoreError},
};

/// A reload that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadFailure {
    /// When it was tried.
    pub at: DateTime<Utc>,
    /// Every problem of the file, each at its line and column.
    pub rejected: rules::Rejected,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// No rules file is known (rules given in memory).
    #[error("the rules were not loaded from a file, so there is nothing to reload")]
    NoFile,
    /// The file did not validate; the running rules stay.
    #[error("{diagnostics}; the running rules stay version {running}")]
    Invalid {
        /// The diagnostics.
        diagnostics: String,
        /// The version still in force.
        running: String,
    },
    /// Recording the new version failed; the running rules stay.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The rules in force and their history.
pub struct LiveRules {
    current: ArcSwap<RuleSet>,
    activated_at: Mutex<DateTime<Utc>>,
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
            current: ArcSwap::new(rules),
            activated_at: Mutex::new(now),
            file,
            last_failure: Mutex::new(None),
            staged: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The rules in force; hold the `Arc` for the whole request.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// The version in force, as recorded.
    pub fn active(&self) -> RulesVersion {
        version_of(&self.current(), *lock(&self.activated_at))
    }

    /// The staged version and when it goes live, if one is waiting.
    pub fn scheduled(&self) -> Option<RulesVersion> {
        lock(&self.staged).as_ref().map(|rules| {
            version_of(
                rules,
                rules.effective_from.unwrap_or(DateTime::<Utc>::MIN_UTC),
            )
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
        record(store, version_of(&next, at)).await?;
        *lock(&self.staged) = None;
        tracing::info!(rules_version = %next.version, "staged rules went live");
        self.current.store(next);
        *lock(&self.activated_at) = at;
        Ok(())
    }

    /// The last reload that failed, until a later one succeeds.
    pub fn last_failure(&self) -> Option<ReloadFailure> {
        lock(&self.last_failure).clone()
    }

    /// Records the running version in the store, unless it is the last one
    /// recorded already (a restart on the same rules).
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn go_live(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<RulesVersion, StoreError> {
        let _one_at_a_time = self.reloading.lock().await;
        let last = store.rules_versions()?.pop();
        let file_rules = self.current();
        if file_rules.effective_from.is_some_and(|at| at > now) {
            // The file is staged: run the last version that was live.
            let previous = last.as_ref().and_then(|v| {
                let name = PathBuf::from(format!("stored rules version {}", v.version));
                rules::parse(&name, &v.text).ok()
            });
            match previous {
                Some(previous) => {
                    *lock(&self.staged) = Some(file_rules);
                    self.current.store(Arc::new(previous));
                    if let Some(at) = last.as_ref().map(|v| v.activated_at) {
                        *lock(&self.activated_at) = at;
                    }
                    return Ok(self.active());
                }
                None => tracing::warn!(
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
    /// [`ReloadError::Invalid`] when the file does not validate (the
    /// failure is kept for [`LiveRules::last_failure`]); a storage failure.
    pub async fn reload(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<(RulesVersion, bool), ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let file = self.file.as_ref().ok_or(ReloadError::NoFile)?;
        let candidate = match rules::load(file) {
            Ok(rules) => rules,
            Err(rejected) => {
                let diagnostics = rejected.to_string();
                tracing::warn!(%diagnostics, rules_version = %self.current().version, "rules reload refused");
                *lock(&self.last_failure) = Some(ReloadFailure { at: now, rejected });
                return Err(ReloadError::Invalid {
                    diagnostics,
                    running: self.current().version.clone(),
                });
            }
        };
        *lock(&self.last_failure) = None;
        if candidate.content_hash == self.current().content_hash {
            *lock(&self.staged) = None;
            return Ok((self.active(), false));
        }
        if candidate.effective_from.is_some_and(|at| at > now) {
            tracing::info!(rules_version = %candidate.version, effective_from = ?candidate.effective_from, "rules staged");
            *lock(&self.staged) = Some(Arc::new(candidate));
            return Ok((self.active(), false));
        }
        *lock(&self.staged) = None;
        let version = version_of(&candidate, now);
        record(store, version.clone()).await?;
        self.current.store(Arc::new(candidate));
        *lock(&self.activated_at) = now;
        tracing::info!(rules_version = %version.version, content_hash = %version.content_hash, "rules reloaded");
        Ok((version, true))
    }
}

fn version_of(rules: &RuleSet, activated_at: DateTime<Utc>) -> RulesVersion {
    RulesVersion {
        version: rules.version.clone(),
        content_hash: rules.content_hash.clone(),
        program: rules.program.clone(),
        activated_at,
        text: rules.source.clone(),
    }
}

async fn record(store: &Store, version: RulesVersion) -> Result<(), StoreError> {
    store
        .write(move |writer| writer.record_rules_version(&version))
        .await?
}
