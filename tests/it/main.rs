//! Integration tests: the real server on an ephemeral port, a temporary sled
//! directory, a real tonic client over TCP. One binary, so the suite links
//! once; each test gets its own server and data directory.

mod harness;
mod process;

mod access;
mod backup;
mod bad_input;
mod basket;
mod batch;
mod cli;
mod crash;
mod ingestion;
mod layers;
mod limits;
mod migration;
mod overrides;
mod reports;
mod restart;
mod rules_reload;
mod service;
mod simulate;
mod tiers;
mod tls;
mod watch;
mod webhooks;
