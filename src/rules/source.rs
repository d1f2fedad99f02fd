//! Where a rules text comes from: a file on disk (what `tierd serve`
//! watches), a version stored when it went live (what a restart falls back
//! to while a newer file is staged), or a candidate text (what
//! `SimulateRules` and tests evaluate). All three go through the one
//! [`super::load`].

use std::path::{Path, PathBuf};

use super::{Diagnostic, Rejected, RulesVersion, Severity};

/// The largest rules file, and the largest script file it names: 1 MiB,
/// a hundred times the example programme. A larger text is refused
/// before it is parsed, wherever it comes from (a file, `SimulateRules`,
/// `rules check`), so that no rules version stored or sent is larger.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Why a text over [`MAX_FILE_BYTES`] is refused.
pub(crate) fn too_large(bytes: usize) -> String {
    format!(
        "{bytes} bytes, over the limit of {MAX_FILE_BYTES} bytes (1 MiB) for a rules or script file"
    )
}

/// The text of the file at `path`, read no further than
/// [`MAX_FILE_BYTES`]: a file that is larger is refused without being
/// read whole.
pub(crate) fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|err| err.to_string())?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|err| err.to_string())?;
    if text.len() > MAX_FILE_BYTES {
        let size = std::fs::metadata(path).map_or(text.len(), |m| {
            usize::try_from(m.len()).unwrap_or(usize::MAX)
        });
        return Err(too_large(size));
    }
    Ok(text)
}

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
        read_capped(self).map_err(|message| {
            let message = format!("cannot read the rules file: {message}");
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
