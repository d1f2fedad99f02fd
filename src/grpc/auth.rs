//! Who may call what: API keys with roles.
//!
//! Clients send `authorization: Bearer <key>`. The config file holds only
//! each key's SHA-256 (keys are 256 random bits, so a fast hash is enough:
//! nothing can be guessed from it), with a name and a role. A missing or
//! unknown key gets `UNAUTHENTICATED`; a known key whose role does not allow
//! the call gets `PERMISSION_DENIED`. Health and reflection are open, so
//! probes and standard tools work.
//!
//! With no keys configured the keyring is *open*: every caller acts as
//! `admin`. `tierd serve` allows that only on a loopback address.

use std::{collections::HashMap, fmt};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::{Status, codegen::http};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Tills and web shops: record events, read members.
    Pos,
    /// Marketing staff: rules work and read-only queries.
    Marketing,
    /// Reporting tools: read-only queries.
    Reporting,
    /// Customer service: closes and reopens accounts, reads members.
    Service,
    /// Everything, including adjustments, overrides and sweeps.
    Admin,
}

/// What a call does, as far as permissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Purchases, returns, redemptions, member upserts.
    RecordEvents,
    /// GetMember, GetTierHistory, dry-run evaluations.
    Read,
    /// Point adjustments and manual tier overrides.
    Adjust,
    /// Evaluations that write (demotions, expiries).
    Sweep,
    /// Taking a backup of all data.
    Backup,
    /// Putting rules in force (reload).
    ChangeRules,
    /// Simulating candidate rules over all members.
    Simulate,
    /// Programme reports over all members.
    Report,
    /// Closing and reopening accounts.
    Accounts,
    /// Exporting a member's personal data.
    Privacy,
}

impl Role {
    /// Every role, from the least allowed.
    pub const ALL: [Role; 5] = [
        Role::Pos,
        Role::Marketing,
        Role::Reporting,
        Role::Service,
        Role::Admin,
    ];

    /// The role as the config file writes it (`pos`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Pos => "pos",
            Role::Marketing => "marketing",
            Role::Reporting => "reporting",
            Role::Service => "service",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may perform `action`.
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Pos => matches!(action, Action::RecordEvents | Action::Read),
            Role::Marketing => matches!(
                action,
                Action::Read | Action::ChangeRules | Action::Simulate
            ),
            Role::Reporting => matches!(action, Action::Read | Action::Report),
            Role::Service => matches!(action, Action::Read | Action::Accounts),
        }
    }
}

/// One configured key: its name (for the audit trail), role and hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Who holds it ("till-042", "crm-export").
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Lower-case hex SHA-256 of the key.
    pub sha256: String,
}

/// The caller a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's name (`anonymous` on an open keyring).
    pub name: String,
    /// The key's role.
    pub role: Role,
}

/// The configured keys, by hash.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: HashMap<[u8; 32], Caller>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// A configured key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("api key {name:?}: sha256 must be 64 hex digits")]
pub struct BadKey {
    /// The key's name.
    pub name: String,
}

/// The SHA-256 of a key, as it goes in the config file.
pub fn hash_key(key: &str) -> String {
    crate::digest::sha256_hex(key.as_bytes())
}

/// A new random key: 32 bytes from the OS, hex-encoded.
///
/// # Errors
/// When the OS has no randomness to give.
pub fn new_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0_u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

impl Keyring {
    /// A keyring of `keys`; empty means open.
    ///
    /// # Errors
    /// [`BadKey`] for a hash that is not 64 hex digits.
    pub fn new(keys: &[ApiKey]) -> Result<Self, BadKey> {
        let mut ring = HashMap::new();
        for key in keys {
            let hash = parse_hash(&key.sha256.to_ascii_lowercase()).ok_or_else(|| BadKey {
                name: key.name.clone(),
            })?;
            ring.insert(
                hash,
                Caller {
                    name: key.name.clone(),
                    role: key.role,
                },
            );
        }
        Ok(Self { keys: ring })
    }

    /// True when no keys are configured: everyone acts as admin.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The caller behind a request's `authorization` header. It reads the
    /// headers only, so [`super::gate`] calls it before any of the body is
    /// read: a caller without a key costs no decoding. The scheme is
    /// matched case-insensitively (`Bearer`, `bearer`: RFC 7235).
    ///
    /// # Errors
    /// `UNAUTHENTICATED` without a known key.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, Status> {
        if self.is_open() {
            return Ok(Caller {
                name: "anonymous".into(),
                role: Role::Admin,
            });
        }
        let key = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(|| {
                Status::unauthenticated(
                    "no api key: send the header `authorization: Bearer <api key>`",
                )
            })?;
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.keys
            .get(&hash)
            .cloned()
            .ok_or_else(|| Status::unauthenticated("unknown api key"))
    }
}

impl Caller {
    /// Whether this caller's role allows `action`, the action of the RPC
    /// `rpc` (`WatchTierChanges`).
    ///
    /// # Errors
    /// `PERMISSION_DENIED`, naming the key, its role as the config file
    /// writes it, the RPC, and the roles that may call it.
    pub fn may(&self, action: Action, rpc: &str) -> Result<(), Status> {
        if self.role.allows(action) {
            return Ok(());
        }
        let allowed: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|role| role.allows(action))
            .map(Role::name)
            .collect();
        Err(Status::permission_denied(format!(
            "api key {:?} (role {}) may not call {rpc}; the roles that may: {}",
            self.name,
            self.role.name(),
            allowed.join(", ")
        )))
    }
}

/// The token of an `authorization` value whose scheme is `Bearer`, in any
/// case, with the spaces around it dropped.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataMap;

    #[test]
    fn roles_allow_what_the_docs_say() {
        use Action::*;
        assert!(Role::Pos.allows(RecordEvents) && Role::Pos.allows(Read));
        assert!(!Role::Pos.allows(Adjust) && !Role::Pos.allows(Sweep));
        assert!(Role::Reporting.allows(Read) && !Role::Reporting.allows(RecordEvents));
        assert!(Role::Marketing.allows(Read) && !Role::Marketing.allows(Sweep));
        assert!(Role::Marketing.allows(ChangeRules) && !Role::Pos.allows(ChangeRules));
        assert!(!Role::Reporting.allows(ChangeRules));
        assert!(Role::Service.allows(Accounts) && Role::Service.allows(Read));
        assert!(!Role::Service.allows(RecordEvents) && !Role::Service.allows(Adjust));
        assert!(!Role::Pos.allows(Accounts) && Role::Admin.allows(Accounts));
        assert!(Role::Reporting.allows(Report) && Role::Admin.allows(Report));
        assert!(!Role::Pos.allows(Report) && !Role::Marketing.allows(Report));
        assert!(
            [RecordEvents, Read, Adjust, Sweep]
                .into_iter()
                .all(|a| Role::Admin.allows(a))
        );
    }

    #[test]
    fn keys_are_checked_by_hash() {
        let key = new_key().expect("randomness");
        let ring = Keyring::new(&[ApiKey {
            name: "till-1".into(),
            role: Role::Pos,
            sha256: hash_key(&key),
        }])
        .expect("valid hash");
        let mut metadata = MetadataMap::new();
        let header = format!("Bearer {key}").parse().expect("ascii");
        metadata.insert("authorization", header);
        let caller = ring.authenticate(metadata.as_ref()).expect("known");
        assert_eq!(caller.name, "till-1");
        caller
            .may(Action::RecordEvents, "RecordPurchase")
            .expect("allowed");
        let denied = caller
            .may(Action::Report, "WatchTierChanges")
            .expect_err("pos may not watch");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            denied.message(),
            "api key \"till-1\" (role pos) may not call WatchTierChanges; \
             the roles that may: reporting, admin"
        );
        let missing = ring
            .authenticate(MetadataMap::new().as_ref())
            .expect_err("no key");
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        for scheme in ["bearer", "BEARER", "Bearer "] {
            let mut metadata = MetadataMap::new();
            let header = format!("{scheme} {key}").parse().expect("ascii");
            metadata.insert("authorization", header);
            let caller = ring
                .authenticate(metadata.as_ref())
                .expect("any case of the scheme");
            assert_eq!(caller.name, "till-1");
        }
        for wrong in ["Basic {key}", "Bearer", "Bearer  ", "{key}"] {
            let mut metadata = MetadataMap::new();
            let header = wrong.replace("{key}", &key).parse().expect("ascii");
            metadata.insert("authorization", header);
            let refused = ring.authenticate(metadata.as_ref()).expect_err(wrong);
            assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        }
        assert!(
            Keyring::new(&[ApiKey {
                name: "bad".into(),
                role: Role::Pos,
                sha256: "abc".into(),
            }])
            .is_err()
        );
    }
}
