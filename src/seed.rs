//! Realistic synthetic members, for benchmarks, demos and trying candidate
//! rules on a program-sized store before real data is at hand.
//!
//! Members enrol over the last three years; each makes 0 to 40 purchases
//! over the last 13 months, amounts drawn so that a few members bring most
//! of the revenue (a Pareto-like spread); some shop online; a region
//! attribute is set. Purchases earn points under the given rules and each
//! member is placed in the tier those rules give. Deterministic for a seed.

use chrono::{DateTime, TimeDelta, Utc};

use crate::{
    engine::{self, PurchaseFacts, Subject},
    ledger::MemberState,
    rules::RuleSet,
    store::{Commit, Store, StoreError},
};

/// Members written per commit: large batches keep seeding fast.
const BATCH: usize = 5_000;

const REGIONS: [&str; 5] = ["north", "south", "east", "west", "flagship"];

/// A small xorshift generator: reproducible from its seed, no dependency.
/// Good for test data and load; not for anything secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is made odd).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// One synthetic member as of `now`.
fn member(rules: &RuleSet, rng: &mut Rng, index: u64, now: DateTime<Utc>) -> MemberState {
    let enrolled = now - TimeDelta::days(i64::try_from(rng.below(3 * 365)).unwrap_or(0) + 1);
    let mut member = MemberState::new(
        &format!("member-{index:07}"),
        &rules.entry_tier().id,
        enrolled,
    );
    let region = REGIONS[usize::try_from(rng.below(REGIONS.len() as u64)).unwrap_or(0)];
    member.attributes.insert("region".into(), region.into());
    // Spend per member: most spend little, a few spend a lot.
    let appetite = 1 + rng.below(100).pow(3) / 50_000;
    let purchases = rng.below(41);
    for n in 0..purchases {
        let days_ago = i64::try_from(rng.below(395)).unwrap_or(0);
        let at = (now - TimeDelta::days(days_ago)).max(enrolled);
        let amount = i64::try_from(500 + rng.below(4_000) * appetite).unwrap_or(500);
        let channel = if rng.below(4) == 0 { "web" } else { "pos" };
        let metrics = member.metrics(at - TimeDelta::days(365), at);
        let subject = Subject {
            metrics: &metrics,
            attributes: &member.attributes,
        };
        let facts = PurchaseFacts {
            amount_minor: amount,
            channel,
            store_id: "store-1",
            tags: &[],
            occurred_at: at,
            tier_id: &member.tier.tier_id,
        };
        let points = engine::points_for_purchase(rules, facts, subject);
        member.record_purchase(
            &format!("seed-{index}-{n}"),
            amount,
            points,
            at,
            rules.points_expiry_months,
        );
    }
    member.expire(now);
    let start = engine::window_start(rules.window, now, member.enrolled_at);
    let metrics = member.metrics(start, now);
    let subject = Subject {
        metrics: &metrics,
        attributes: &member.attributes,
    };
    member.tier = engine::evaluate(rules, &member.tier, subject, now).state;
    member
}

/// Writes `count` synthetic members into `store`, placed by `rules` as of
/// `now`. Returns how many were written.
///
/// # Errors
/// On a storage failure.
pub async fn seed(
    store: &Store,
    rules: &RuleSet,
    count: u64,
    seed: u64,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut rng = Rng::new(seed);
    let mut written = 0;
    while written < count {
        let batch: Vec<MemberState> = (written..count.min(written + BATCH as u64))
            .map(|i| member(rules, &mut rng, i, now))
            .collect();
        let size = batch.len() as u64;
        store
            .write(move |writer| {
                writer.commit(&Commit {
                    members: batch,
                    ..Commit::default()
                })
            })
            .await??;
        written += size;
    }
    Ok(written)
}
