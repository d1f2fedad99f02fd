//! What makes two requests the same request.
//!
//! A retry must carry exactly the request that was recorded: the
//! fingerprint is a SHA-256 over the request's kind and every field that
//! gives it meaning, each written with its name and length, in an order
//! fixed here. It does not depend on how any struct is laid out, so
//! reordering a field of a command changes nothing; a golden-bytes test
//! pins the encoding, since changing it would turn honest retries into
//! `ALREADY_EXISTS`. Who sent the request (the API key) is not part of it:
//! a retry through another key still matches.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::receipt::{LineSize, RequestKind};

/// The fingerprint of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

/// In hex, as a member's export shows it.
impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(&crate::digest::hex(&self.0))
    }
}

/// A request's identifying fields, whatever layer it comes from: the
/// service's validated commands and the migration of old receipts both
/// describe requests this way, so both fingerprint them identically.
#[derive(Debug, Clone, Copy)]
pub enum RequestFacts<'a> {
    /// RecordPurchase.
    Purchase {
        /// The member.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// Amount paid, minor units.
        amount_minor: i64,
        /// ISO 4217 code as sent.
        currency: &'a str,
        /// When it happened.
        occurred_at: DateTime<Utc>,
        /// Sales channel.
        channel: &'a str,
        /// Store.
        store_id: &'a str,
        /// Tags, in the order sent.
        tags: &'a [String],
        /// Basket lines, in the order sent (empty: a sum only).
        lines: &'a [super::earn::Line],
    },
    /// RecordReturn.
    Return {
        /// The member.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// The purchase returned.
        original_transaction_id: &'a str,
        /// Amount refunded, minor units.
        amount_minor: i64,
        /// ISO 4217 code as sent (may be empty).
        currency: &'a str,
        /// When it happened.
        occurred_at: DateTime<Utc>,
        /// Lines returned, in the order sent (empty: an amount only).
        lines: &'a [super::receipt::ReturnLine],
    },
    /// RecordActivity.
    Activity {
        /// The member.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// The activity kind.
        kind: &'a str,
        /// When it happened.
        occurred_at: DateTime<Utc>,
        /// Its details.
        details: &'a BTreeMap<String, String>,
    },
    /// AdjustPoints.
    Adjustment {
        /// The member.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// Signed points.
        points: i64,
        /// Why.
        reason: &'a str,
        /// When, if given.
        occurred_at: Option<DateTime<Utc>>,
    },
    /// RedeemPoints.
    Redemption {
        /// The member.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// Points spent.
        points: i64,
        /// The order the points pay for, if named.
        order_id: Option<&'a str>,
        /// The reward it buys, if named.
        reward_id: Option<&'a str>,
    },
    /// SetTierOverride.
    Override {
        /// The member.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// The tier placed (empty when clearing).
        tier_id: &'a str,
        /// `floor`, `lock` or `clear`.
        mode: &'a str,
        /// When it lapses, if it does.
        until: Option<DateTime<Utc>>,
        /// Why.
        reason: &'a str,
    },
    /// CloseMember.
    Close {
        /// The member.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// Why.
        reason: &'a str,
        /// Whether the points are forfeited.
        forfeit_points: bool,
    },
    /// ReopenMember.
    Reopen {
        /// The member.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// EraseMember.
    Erase {
        /// The member.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// MergeMembers: its member is the target, the one that remains.
    Merge {
        /// The member that remains.
        member_id: &'a str,
        /// The idempotency key.
        transaction_id: &'a str,
        /// The member merged away.
        source_member_id: &'a str,
        /// Why.
        reason: &'a str,
    },
}

impl RequestFacts<'_> {
    /// The request's kind.
    pub fn kind(&self) -> RequestKind {
        match self {
            RequestFacts::Purchase { .. } => RequestKind::Purchase,
            RequestFacts::Return { .. } => RequestKind::Return,
            RequestFacts::Activity { .. } => RequestKind::Activity,
            RequestFacts::Adjustment { .. } => RequestKind::Adjustment,
            RequestFacts::Redemption { .. } => RequestKind::Redemption,
            RequestFacts::Override { .. } => RequestKind::Override,
            RequestFacts::Close { .. } => RequestKind::Close,
            RequestFacts::Reopen { .. } => RequestKind::Reopen,
            RequestFacts::Merge { .. } => RequestKind::Merge,
            RequestFacts::Erase { .. } => RequestKind::Erase,
        }
    }

    /// The member the request is about.
    pub fn member_id(&self) -> &str {
        match self {
            RequestFacts::Purchase { member_id, .. }
            | RequestFacts::Return { member_id, .. }
            | RequestFacts::Activity { member_id, .. }
            | RequestFacts::Adjustment { member_id, .. }
            | RequestFacts::Redemption { member_id, .. }
            | RequestFacts::Override { member_id, .. }
            | RequestFacts::Close { member_id, .. }
            | RequestFacts::Reopen { member_id, .. }
            | RequestFacts::Merge { member_id, .. }
            | RequestFacts::Erase { member_id, .. } => member_id,
        }
    }

    /// The request's idempotency key.
    pub fn transaction_id(&self) -> &str {
        match self {
            RequestFacts::Purchase { transaction_id, .. }
            | RequestFacts::Return { transaction_id, .. }
            | RequestFacts::Activity { transaction_id, .. }
            | RequestFacts::Adjustment { transaction_id, .. }
            | RequestFacts::Redemption { transaction_id, .. }
            | RequestFacts::Override { transaction_id, .. }
            | RequestFacts::Close { transaction_id, .. }
            | RequestFacts::Reopen { transaction_id, .. }
            | RequestFacts::Merge { transaction_id, .. }
            | RequestFacts::Erase { transaction_id, .. } => transaction_id,
        }
    }

    /// The fingerprint: see the module comment for the encoding.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut out = Encoder::new(self.kind());
        out.text("member_id", self.member_id());
        out.text("transaction_id", self.transaction_id());
        match *self {
            RequestFacts::Purchase {
                amount_minor,
                currency,
                occurred_at,
                channel,
                store_id,
                tags,
                lines,
                ..
            } => {
                out.int("amount_minor", amount_minor);
                out.text("currency", currency);
                out.time("occurred_at", occurred_at);
                out.text("channel", channel);
                out.text("store_id", store_id);
                out.list("tags", tags);
                // Only when sent, so that a purchase without lines keeps
                // the fingerprint it always had.
                for line in lines {
                    out.text("line.sku", &line.sku);
                    out.text("line.category", &line.category);
                    out.int("line.quantity", line.quantity);
                    out.int("line.amount_minor", line.amount_minor);
                    out.list("line.labels", &line.labels);
                }
            }
            RequestFacts::Return {
                original_transaction_id,
                amount_minor,
                currency,
                occurred_at,
                lines,
                ..
            } => {
                out.text("original_transaction_id", original_transaction_id);
                out.int("amount_minor", amount_minor);
                out.text("currency", currency);
                out.time("occurred_at", occurred_at);
                // Only when sent, like a purchase's lines.
                for line in lines {
                    out.text("line.sku", &line.sku);
                    match line.size {
                        LineSize::Units(units) => out.int("line.quantity", units),
                        LineSize::Amount(money) => out.int("line.amount_minor", money),
                    }
                }
            }
            RequestFacts::Activity {
                kind,
                occurred_at,
                details,
                ..
            } => {
                out.text("kind", kind);
                out.time("occurred_at", occurred_at);
                out.map("details", details);
            }
            RequestFacts::Adjustment {
                points,
                reason,
                occurred_at,
                ..
            } => {
                out.int("points", points);
                out.text("reason", reason);
                // Only when given: an adjustment without it keeps the
                // fingerprint it always had.
                if let Some(at) = occurred_at {
                    out.time("occurred_at", at);
                }
            }
            RequestFacts::Redemption {
                points,
                order_id,
                reward_id,
                ..
            } => {
                out.int("points", points);
                // Only when given.
                if let Some(order_id) = order_id {
                    out.text("order_id", order_id);
                }
                if let Some(reward_id) = reward_id {
                    out.text("reward_id", reward_id);
                }
            }
            RequestFacts::Override {
                tier_id,
                mode,
                until,
                reason,
                ..
            } => {
                out.text("tier_id", tier_id);
                out.text("mode", mode);
                if let Some(until) = until {
                    out.time("until", until);
                }
                out.text("reason", reason);
            }
            RequestFacts::Close {
                reason,
                forfeit_points,
                ..
            } => {
                out.text("reason", reason);
                out.int("forfeit_points", i64::from(forfeit_points));
            }
            RequestFacts::Reopen { reason, .. } | RequestFacts::Erase { reason, .. } => {
                out.text("reason", reason);
            }
            RequestFacts::Merge {
                source_member_id,
                reason,
                ..
            } => {
                out.text("source_member_id", source_member_id);
                out.text("reason", reason);
            }
        }
        out.finish()
    }
}

/// Writes named, length-prefixed fields into a SHA-256.
struct Encoder(Sha256);

impl Encoder {
    fn new(kind: RequestKind) -> Self {
        let mut encoder = Self(Sha256::new());
        encoder.0.update(b"tierd request 1\0");
        encoder.text("kind", kind.name());
        encoder
    }

    fn field(&mut self, name: &str, value: &[u8]) {
        for part in [name.as_bytes(), value] {
            self.0.update((part.len() as u64).to_be_bytes());
            self.0.update(part);
        }
    }

    fn text(&mut self, name: &str, value: &str) {
        self.field(name, value.as_bytes());
    }

    fn int(&mut self, name: &str, value: i64) {
        self.field(name, &value.to_be_bytes());
    }

    fn time(&mut self, name: &str, at: DateTime<Utc>) {
        let mut value = at.timestamp().to_be_bytes().to_vec();
        value.extend(at.timestamp_subsec_nanos().to_be_bytes());
        self.field(name, &value);
    }

    fn list(&mut self, name: &str, items: &[String]) {
        self.int(name, items.len() as i64);
        items.iter().for_each(|item| self.text(name, item));
    }

    fn map(&mut self, name: &str, entries: &BTreeMap<String, String>) {
        self.int(name, entries.len() as i64);
        for (key, value) in entries {
            self.text(name, key);
            self.text(name, value);
        }
    }

    fn finish(self) -> Fingerprint {
        Fingerprint(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn hex(fingerprint: Fingerprint) -> String {
        fingerprint.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The bytes are part of the data format: a change here breaks every
    /// stored receipt. Never update these values; a new encoding needs a
    /// data format migration.
    #[test]
    fn the_encoding_is_pinned() {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .expect("valid")
            + chrono::TimeDelta::nanoseconds(5);
        let tags = ["promo".to_owned(), "fresh".to_owned()];
        let details = BTreeMap::from([("photo".to_owned(), "yes".to_owned())]);
        let requests = [
            RequestFacts::Purchase {
                member_id: "m1",
                transaction_id: "t1",
                amount_minor: 12_345,
                currency: "EUR",
                occurred_at: at,
                channel: "pos",
                store_id: "s1",
                tags: &tags,
                lines: &[],
            },
            RequestFacts::Return {
                member_id: "m1",
                transaction_id: "r1",
                original_transaction_id: "t1",
                amount_minor: 2_000,
                currency: "",
                occurred_at: at,
                lines: &[],
            },
            RequestFacts::Activity {
                member_id: "m1",
                transaction_id: "v1",
                kind: "review",
                occurred_at: at,
                details: &details,
            },
            RequestFacts::Adjustment {
                member_id: "m1",
                transaction_id: "a1",
                points: -40,
                reason: "goodwill",
                occurred_at: None,
            },
            RequestFacts::Redemption {
                member_id: "m1",
                transaction_id: "x1",
                points: 100,
                order_id: None,
                reward_id: None,
            },
        ];
        let found: Vec<String> = requests.iter().map(|r| hex(r.fingerprint())).collect();
        assert_eq!(found, PINNED);
    }

    const PINNED: [&str; 5] = [
        "0cca17ec1788a0e14f883d5352cb53fa0b4600d759e365107613e7cbaa5090d4",
        "05562414f2ed28ad5ec9d287dcb1f3307c97d601dbdb2b3de3588e4995289482",
        "064f78dcddd190ece622448109df4a7a83e422f3544cd6f5a01fce8e08751b0a",
        "780376953b5c090d3573747593c9ba2a610387f1273539f262ba89531ccb7310",
        "30b6d005df59c27065a472745d82166d2e9ac81fbd3a201a06f3b859452971c6",
    ];

    #[test]
    fn every_field_counts() {
        let base = |amount_minor, channel| RequestFacts::Purchase {
            member_id: "m1",
            transaction_id: "t1",
            amount_minor,
            currency: "EUR",
            occurred_at: DateTime::UNIX_EPOCH,
            channel,
            store_id: "",
            tags: &[],
            lines: &[],
        };
        let one = base(1, "pos").fingerprint();
        assert_eq!(one, base(1, "pos").fingerprint());
        assert_ne!(one, base(2, "pos").fingerprint());
        assert_ne!(one, base(1, "web").fingerprint());
        // Field boundaries are unambiguous: ("ab", "") is not ("a", "b").
        let split = |channel, store_id| RequestFacts::Purchase {
            member_id: "m1",
            transaction_id: "t1",
            amount_minor: 1,
            currency: "EUR",
            occurred_at: DateTime::UNIX_EPOCH,
            channel,
            store_id,
            tags: &[],
            lines: &[],
        };
        assert_ne!(split("ab", "").fingerprint(), split("a", "b").fingerprint());
    }
}
