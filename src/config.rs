//! Service configuration: built-in defaults, overridden by a YAML config
//! file, overridden by environment variables, overridden by flags.
//!
//! Flags and environment variables are declared together on the clap
//! arguments (clap reads `TIERD_*` when a flag is absent); the file fills in
//! what neither gave; the defaults run a local service with no setup.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::{
    grpc::{
        ServeLimits,
        auth::{ApiKey, BadKey, Keyring},
    },
    store::Location,
    webhook::{Endpoint, EndpointConfig, WebhookError},
};

/// Where the service listens by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// The default data directory (sled).
pub const DEFAULT_DATA: &str = "data";
/// The default rules location: a directory holding one rules file.
pub const DEFAULT_RULES: &str = "rules";

/// The settings `tierd serve` runs with, all resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the data lives: a sled directory (created if missing) or a
    /// PostgreSQL database.
    pub store: Location,
    /// A rules file, or a directory with exactly one `*.yaml` rules file.
    pub rules: PathBuf,
    /// Who may call what; open (everyone is admin) when no keys are set.
    pub keyring: Keyring,
    /// TLS files; plaintext when `None`.
    pub tls: Option<TlsFiles>,
    /// Where tier changes are POSTed.
    pub webhooks: Vec<Endpoint>,
    /// Where `/metrics` is served (Prometheus text format); none when
    /// `None`.
    pub metrics_listen: Option<SocketAddr>,
    /// What one caller may take: sizes, connections, streams.
    pub limits: ServeLimits,
}

/// The optional config file; every key may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Overrides the default listen address.
    pub listen: Option<SocketAddr>,
    /// Overrides the default store: `sled:DIR` or `postgres://...`.
    pub store: Option<Location>,
    /// Overrides the default data directory (the same as `store: sled:DIR`).
    pub data: Option<PathBuf>,
    /// Overrides the default rules location.
    pub rules: Option<PathBuf>,
    /// API keys (name, role, sha256); only the config file sets them.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// TLS certificate and key files.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Endpoints tier changes are POSTed to (only the config file sets
    /// them).
    #[serde(default)]
    pub webhooks: Vec<EndpointConfig>,
    /// Where to serve `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Overrides any of the limits (`docs/reliability.md` lists them).
    #[serde(default)]
    pub limits: ServeLimits,
}

/// Where the TLS material lives (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The server certificate chain.
    pub cert: PathBuf,
    /// The server private key.
    pub key: PathBuf,
    /// A CA whose signed client certificates are required (mutual TLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// Why the configuration could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    /// The config file could not be read.
    Read {
        /// The file named by `--config`.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    /// The config file is not valid config YAML.
    Parse {
        /// The file named by `--config`.
        path: PathBuf,
        /// What is wrong, with its line and column.
        source: serde_yaml::Error,
    },
    #[error("rules directory {0} holds no *.yaml rules file")]
    /// A rules directory without a rules file.
    NoRulesFile(PathBuf),
    /// A rules directory with more than one rules file.
    #[error("rules directory {dir} holds several rules files ({files}); name one with --rules")]
    SeveralRulesFiles {
        /// The directory.
        dir: PathBuf,
        /// The candidates, comma-separated.
        files: String,
    },
    /// An API key entry that cannot be used.
    #[error("config file: {0}")]
    Key(#[from] BadKey),
    /// A webhook endpoint that cannot be used.
    #[error("config file: {0}")]
    Webhook(#[from] WebhookError),
    /// No keys, and an address other than loopback: refused.
    #[error(
        "refusing to listen on {0} without api keys: anyone who can reach it could change points; \
         add api_keys to the config file (see `tierd keys new`) or listen on 127.0.0.1"
    )]
    OpenOnNetwork(SocketAddr),
    #[error("cannot list rules directory {path}: {source}")]
    /// A rules directory that could not be listed.
    ListRules {
        /// The directory.
        path: PathBuf,
        /// Why listing failed.
        source: std::io::Error,
    },
}

impl ConfigFile {
    /// Reads a config file.
    ///
    /// # Errors
    /// When the file cannot be read or is not valid config YAML.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

impl Config {
    /// Resolves flags-or-environment over the file over the defaults.
    ///
    /// # Errors
    /// A malformed key hash, or no keys on an address other than loopback
    /// (safe default: an open service only where nobody else can reach it).
    pub fn resolve(
        listen: Option<SocketAddr>,
        store: Option<Location>,
        rules: Option<PathBuf>,
        tls: Option<TlsFiles>,
        metrics_listen: Option<SocketAddr>,
        file: ConfigFile,
    ) -> Result<Self, ConfigError> {
        let default_listen = DEFAULT_LISTEN
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051)));
        let listen = listen.or(file.listen).unwrap_or(default_listen);
        let keyring = Keyring::new(&file.api_keys)?;
        if keyring.is_open() && !listen.ip().is_loopback() {
            return Err(ConfigError::OpenOnNetwork(listen));
        }
        Ok(Self {
            listen,
            store: store.or(file.store).unwrap_or_else(|| {
                Location::Sled(file.data.unwrap_or_else(|| DEFAULT_DATA.into()))
            }),
            rules: rules.or(file.rules).unwrap_or_else(|| DEFAULT_RULES.into()),
            keyring,
            tls: tls.or(file.tls),
            webhooks: file
                .webhooks
                .into_iter()
                .map(EndpointConfig::resolve)
                .collect::<Result<_, _>>()?,
            metrics_listen: metrics_listen.or(file.metrics_listen),
            limits: file.limits,
        })
    }
}

/// The rules file a path names: the file itself, or the one `*.yaml` file
/// (other than `*.test.yaml`) in a directory.
///
/// # Errors
/// When a directory holds none or several rules files.
pub fn rules_file(path: &Path) -> Result<PathBuf, ConfigError> {
    if !path.is_dir() {
        return Ok(path.to_owned());
    }
    let list_error = |source| ConfigError::ListRules {
        path: path.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(list_error)? {
        let file = entry.map_err(list_error)?.path();
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".yaml") && !name.ends_with(".test.yaml") {
            files.push(file);
        }
    }
    files.sort();
    match files.len() {
        0 => Err(ConfigError::NoRulesFile(path.to_owned())),
        1 => Ok(files.remove(0)),
        _ => Err(ConfigError::SeveralRulesFiles {
            dir: path.to_owned(),
            files: files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let file = ConfigFile {
            listen: Some("127.0.0.1:9000".parse().expect("valid")),
            data: Some("/var/lib/tierd".into()),
            ..ConfigFile::default()
        };
        let flag = Location::Sled("/tmp/d".into());
        let config =
            Config::resolve(None, Some(flag.clone()), None, None, None, file).expect("valid");
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.store, flag);
        assert_eq!(config.rules, PathBuf::from(DEFAULT_RULES));
    }

    #[test]
    fn the_file_names_a_store_or_a_data_directory() {
        let file: ConfigFile =
            serde_yaml::from_str("store: postgres://tierd@db/loyalty\ndata: /ignored\n")
                .expect("valid config");
        let config = Config::resolve(None, None, None, None, None, file).expect("valid");
        assert_eq!(
            config.store,
            Location::Postgres("postgres://tierd@db/loyalty".into())
        );
        let file: ConfigFile = serde_yaml::from_str("data: /var/lib/tierd\n").expect("valid");
        let config = Config::resolve(None, None, None, None, None, file).expect("valid");
        assert_eq!(config.store, Location::Sled("/var/lib/tierd".into()));
        let config =
            Config::resolve(None, None, None, None, None, ConfigFile::default()).expect("valid");
        assert_eq!(config.store, Location::Sled(DEFAULT_DATA.into()));
        let bad = serde_yaml::from_str::<ConfigFile>("store: mysql://x\n").expect_err("refused");
        assert!(bad.to_string().contains("sled:DIR"), "{bad}");
    }

    #[test]
    fn without_keys_only_loopback_is_allowed() {
        let public = Some("0.0.0.0:50051".parse().expect("valid"));
        let refused = Config::resolve(public, None, None, None, None, ConfigFile::default());
        assert!(matches!(refused, Err(ConfigError::OpenOnNetwork(_))));
        let file: ConfigFile = serde_yaml::from_str(&format!(
            "api_keys:\n  - {{ name: till, role: pos, sha256: {} }}\n",
            "ab".repeat(32)
        ))
        .expect("valid config");
        let config =
            Config::resolve(public, None, None, None, None, file).expect("keys make it safe");
        assert!(!config.keyring.is_open());
    }

    #[test]
    fn the_rules_directory_names_its_one_file() {
        assert_eq!(
            rules_file(Path::new("rules")).expect("one rules file"),
            PathBuf::from("rules/example.yaml")
        );
    }
}
