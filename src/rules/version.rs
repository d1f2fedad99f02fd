//! A rules version as it went live: kept for ever, so that every tier
//! change can be traced to the exact text that decided it.

use chrono::{DateTime, Utc};

use super::RuleSet;

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
}
