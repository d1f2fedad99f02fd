//! The loyalty domain, pure: a member's state, the tier decision, earning,
//! and what each event does. No I/O, no clock, no async, no storage or
//! transport (nothing from tokio, sled, tonic or postcard): every function
//! takes the time it decides at, so the same inputs always give the same
//! result, and the service, simulations, rules tests and seeding all run
//! exactly the same code.
//!
//! - [`member`]: the state kept per member (day totals, points lots) and
//!   its arithmetic.
//! - [`decide`]: metrics + rules + time -> tier (promotion, grace period,
//!   soft landing, overrides), and what the next tier still needs.
//! - [`due`]: when time alone next changes a member (what the sweep reads).
//! - [`earn`]: points for a purchase or an activity.
//! - [`apply`]: one function per event kind, used by everyone.
//! - [`account`]: closing an account and reopening it.
//! - [`merge`]: two members becoming one, the other an alias.
//! - [`privacy`]: what erasing a member replaces, removes and keeps.
//! - [`receipt`]: what a recorded request did (for retries and returns).
//! - [`share`]: exact shares and splits of integer totals.
//! - [`fingerprint`]: what makes two requests the same request.
//! - [`view`]: a member as a client sees it at one moment.
//! - [`projection`]: where a member is heading at its pace.
//!
//! This layer uses only the rules model ([`crate::rules`]), the script
//! sandbox and money; nothing above it (`store`, `app`, `grpc`).

pub mod account;
pub mod apply;
pub mod books;
pub mod decide;
pub mod due;
pub mod earn;
pub mod fingerprint;
pub mod member;
pub mod merge;
pub mod privacy;
pub mod projection;
pub mod receipt;
pub mod share;
pub mod view;

#[cfg(test)]
mod tests;
