//! Tools built on the domain and the store, beside the service: they call
//! [`crate::domain::apply`] for every event, never a copy of it.
//!
//! - [`scan`]: every stored member, decoded and folded on all cores.
//! - [`simulate`]: what-if: candidate rules over the stored members.
//! - [`rules_test`]: the test cases marketers keep next to their rules.
//! - [`seed`]: realistic synthetic members for benchmarks and demos.
//! - [`export`]: everything stored about one member, as one document.

pub mod export;
pub mod rules_test;
pub mod scan;
pub mod seed;
pub mod simulate;
