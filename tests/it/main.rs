//! Integration tests: the real server on an ephemeral port, a temporary sled
//! directory, a real tonic client over TCP. One binary, so the suite links
//! once; each test gets its own server and data directory.

// `postgres.rs` loads some of these files a second time on purpose: the
// same tests, run on the other store.
#![allow(clippy::duplicate_mod)]

mod harness;
mod pg;
mod process;

mod access;
mod accounts;
mod backup;
mod bad_input;
mod basket;
mod batch;
mod browser;
mod cli;
mod crash;
mod docs;
mod erase;
mod export;
mod hostile;
mod ingestion;
mod layers;
mod limits;
mod merge;
mod metrics;
mod migrate_store;
mod migration;
mod nodes;
mod overrides;
mod postgres;
mod predict;
mod reports;
mod restart;
mod rewards;
mod rules_reload;
mod service;
mod simulate;
mod tiers;
mod tls;
mod watch;
mod webhooks;
