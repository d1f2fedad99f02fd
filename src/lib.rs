//! # tierd: a rules-driven loyalty tier engine
//!
//! # Layout
//! - [`money`]: amounts in minor units and ISO 4217 currencies, no floats.
//! - [`rules`]: the YAML rules file, validated and compiled into a `RuleSet`.
//! - [`script`]: the rhai sandbox for scripts inside rules.
//! - [`engine`]: pure decisions: metrics + rules + time -> tier, points.
#![forbid(unsafe_code)]

pub mod engine;
pub mod money;
pub mod rules;
pub mod script;
