//! # tierd: a rules-driven loyalty tier engine
//!
//! Point-of-sale and e-commerce backends send purchases, returns, point
//! adjustments and redemptions over gRPC; tier rules written by marketing
//! staff (YAML with rhai scripts) decide each member's tier; every state
//! change is stored atomically and durably: in sled on one node, or in a
//! PostgreSQL-protocol database under several.
//!
//! # Layout
//! The modules form layers. **A module may use only the layers below it**
//! (never above, never sideways into a higher one); a test
//! (`tests/it/layers.rs`) reads the sources and fails on any `crate::`
//! path that points upward. From the bottom:
//!
//! 1. Foundations, which know nothing of tierd's other modules:
//!    [`money`] (amounts in minor units, ISO 4217), [`digest`] (SHA-256),
//!    [`script`] (the rhai sandbox), [`telemetry`] (metric names and the
//!    Prometheus endpoint).
//! 2. [`rules`]: the rules model, reading it from YAML with diagnostics,
//!    lint, the sources it comes from.
//! 3. [`domain`]: pure loyalty logic: member state, the tier decision,
//!    earning, one function per event kind. No tokio, sled, tonic or
//!    postcard.
//! 4. [`store`]: one interface over two engines, sled (layout, the writer
//!    thread, rounds, fsync, format migrations) and PostgreSQL (schema
//!    migrations, a transaction per write, reruns after a conflict); the
//!    stored record types and their codec; backups in one file format.
//! 5. [`tools`]: simulate, the rules test runner, seeding, the parallel
//!    member scan; they apply events through [`domain::apply`] only.
//!    [`report`] sits beside them: programme reports, one scan of the
//!    stored members each.
//! 6. [`app`]: the service: validated commands, the idempotent write
//!    protocol, sweeps, the rules in force. Orchestration only.
//! 7. [`grpc`]: thin handlers, proto conversions, status mapping, auth.
//!    [`webhook`] sits beside it: the other way out, tier changes POSTed
//!    to CRM and marketing systems.
//! 8. [`config`] and [`cli`]: configuration and the `tierd` subcommands.
//!
//! `money` sits below `rules` rather than inside `domain` because the
//! rules file reads amounts: with money in the domain, rules and domain
//! would depend on each other.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod money;

pub mod digest;

pub mod script;

pub mod telemetry;

pub mod rules;

pub mod domain;

pub mod store;

pub mod tools;

pub mod report;

pub mod app;

pub mod grpc;

pub mod webhook;

pub mod config;

pub mod cli;
