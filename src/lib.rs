//! # tierd: a rules-driven loyalty tier engine
//!
//! Point-of-sale and e-commerce backends send purchases, returns, point
//! adjustments and redemptions over gRPC; tier rules written by marketing
//! staff (YAML with rhai scripts) decide each member's tier; every state
//! change is stored atomically and durably in sled.
//!
//! # Layout
//! - [`money`]: amounts in minor units and ISO 4217 currencies, no floats.
//! - [`rules`]: the YAML rules file, validated and compiled into a `RuleSet`.
//! - [`script`]: the rhai sandbox for scripts inside rules.
//! - [`engine`]: pure decisions: metrics + rules + time -> tier, points.
//! - [`ledger`]: a member's state (day totals, points lots) and its records.
//! - [`events`]: what each event does to a member (pure; shared by the
//!   service and `rules test`).
//! - [`live_rules`]: the rules in force, reloads, versions.
//! - [`store`]: sled layout, atomic commits, group fsync.
//! - [`program`]: commands in, validated, applied, committed durably.
//! - [`simulate`]: what-if: candidate rules over the stored members.
//! - [`seed`]: realistic synthetic members for benchmarks and demos.
//! - [`grpc`]: thin tonic handlers, conversions, status mapping, `serve`.
//! - [`config`]: defaults, config file, environment, flags.
//! - [`digest`]: the SHA-256 helper for content hashes.
//! - [`cli`]: the `tierd` subcommands.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod digest;
pub mod engine;
pub mod events;
pub mod grpc;
pub mod ledger;
pub mod live_rules;
pub mod money;
pub mod program;
pub mod rules;
pub mod script;
pub mod seed;
pub mod simulate;
pub mod store;
