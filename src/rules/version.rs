//! A rules version as it went live: kept for ever, so that every tier
//! change can be traced to the exact text that decided it.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{Diagnostic, RuleSet, Severity};

/// A version of the rules that went live (or is staged to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesVersion {
    /// The file's `version` label.
    pub version: String,
    /// SHA-256 of the text and its script files.
    pub content_hash: String,
    /// The program id.
    pub program: String,
    /// When it went live (for a staged version: when it will).
    pub activated_at: DateTime<Utc>,
    /// The file's text.
    pub text: String,
}

impl RulesVersion {
    /// The version of `rules`, live from `activated_at`.
    pub fn of(rules: &RuleSet, activated_at: DateTime<Utc>) -> Self {
        Self {
            version: rules.version.clone(),
            content_hash: rules.content_hash.clone(),
            program: rules.program.clone(),
            activated_at,
            text: rules.source.clone(),
        }
    }

    /// The problem of putting `rules` (read from `file`) live when this
    /// version went live before under the same label with other content:
    /// two different files under one label would make the history, and
    /// every answer naming the label, ambiguous. `None` for another label,
    /// or the same content again (a restart, a revert). Located at the
    /// `version:` line, with both content hashes.
    pub fn reused_by(&self, rules: &RuleSet, file: &Path) -> Option<Diagnostic> {
        if self.version != rules.version || self.content_hash == rules.content_hash {
            return None;
        }
        let line = rules
            .source
            .lines()
            .position(|l| l.starts_with("version:"))
            .map_or(0, |i| i + 1);
        Some(Diagnostic {
            file: file.to_owned(),
            line,
            column: 1,
            severity: Severity::Error,
            message: format!(
                "version {:?} was put live on {} with other content (content hash {}, this \
                 file's is {}): give the changed file a new version label",
                rules.version,
                self.activated_at.to_rfc3339(),
                self.content_hash,
                rules.content_hash
            ),
        })
    }
}
