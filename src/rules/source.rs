//! Where a rules text comes from: a file on disk (what `tierd serve`
//! watches), a version stored when it went live (what a restart falls back
//! to while a newer file is staged), or a candidate text (what
//! `SimulateRules` and tests evaluate). All three go through the one
//! [`super::load`].

use std::path::{Path, PathBuf};

use super::{Diagnostic, Rejected, RulesVersion, Severity};

/// A rules text and how to refer to it.
pub trait RulesSource {
    /// How diagnostics name the text: a path, `candidate`, `stored rules
    /// version 2026.1`.
    fn name(&self) -> PathBuf;

    /// The text.
    ///
    /// # Errors
    /// [`Rejected`] when it cannot be read.
    fn read(&self) -> Result<String, Rejected>;

    /// Where `script_file` and `bonus_file` names are looked up; `None`
    /// when the text may only have inline scripts.
    fn script_dir(&self) -> Option<PathBuf>;
}

/// A rules file on disk; its scripts sit next to it.
impl RulesSource for Path {
    fn name(&self) -> PathBuf {
        self.to_path_buf()
    }

    fn read(&self) -> Result<String, Rejected> {
        std::fs::read_to_string(self).map_err(|err| {
            let message = format!("cannot read the rules file: {err}");
            Rejected::one(Diagnostic::about_file(self, Severity::Error, message))
        })
    }

    fn script_dir(&self) -> Option<PathBuf> {
        Some(
            self.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        )
    }
}

impl RulesSource for PathBuf {
    fn name(&self) -> PathBuf {
        self.clone()
    }

    fn read(&self) -> Result<String, Rejected> {
        self.as_path().read()
    }

    fn script_dir(&self) -> Option<PathBuf> {
        self.as_path().script_dir()
    }
}

/// Rules text held in memory (a candidate to try, a test's rules).
#[derive(Debug, Clone)]
pub struct Candidate {
    name: PathBuf,
    text: String,
    script_dir: Option<PathBuf>,
}

impl Candidate {
    /// `text`, named `name` in diagnostics; inline scripts only.
    pub fn new(name: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            script_dir: None,
        }
    }

    /// The same text, reading script files from `dir` (a draft of a rules
    /// file uses the scripts beside that file).
    pub fn with_script_dir(self, dir: Option<PathBuf>) -> Self {
        Self {
            script_dir: dir,
            ..self
        }
    }
}

impl RulesSource for Candidate {
    fn name(&self) -> PathBuf {
        self.name.clone()
    }

    fn read(&self) -> Result<String, Rejected> {
        Ok(self.text.clone())
    }

    fn script_dir(&self) -> Option<PathBuf> {
        self.script_dir.clone()
    }
}

/// A version as it went live. Only its YAML was kept, so it may use inline
/// scripts only.
impl RulesSource for RulesVersion {
    fn name(&self) -> PathBuf {
        PathBuf::from(format!("stored rules version {}", self.version))
    }

    fn read(&self) -> Result<String, Rejected> {
        Ok(self.text.clone())
    }

    fn script_dir(&self) -> Option<PathBuf> {
        None
    }
}
