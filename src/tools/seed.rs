//! Realistic synthetic members, for benchmarks, demos and trying candidate
//! rules on a program-sized store before real data is at hand.
//!
//! Members enrol over the last three years; each makes 0 to 40 purchases
//! over the last 13 months, amounts drawn so that a few members bring most
//! of the revenue (a Pareto-like spread); some shop online; a region
//! attribute is set. Each member's purchases are played in date order
//! through [`crate::domain::apply`], exactly as the service would have
//! received them (windows, earning, promotions, expiry as the rules say),
//! then swept as of `now`; members and their tier history are written.
//! Deterministic for a seed.

use chrono::{DateTime, TimeDelta, Utc};

use crate::{
    domain::{
        apply,
        decide::{Change, HistoryEntry},
        member::MemberState,
    },
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

    /// A number of days in `0..n`.
    fn days_below(&mut self, n: u64) -> TimeDelta {
        TimeDelta::days(i64::try_from(self.below(n)).unwrap_or(0))
    }
}

/// One synthetic member as of `now`, with the tier changes it went through.
fn member(
    rules: &RuleSet,
    rng: &mut Rng,
    index: u64,
    now: DateTime<Utc>,
) -> (MemberState, Vec<Change>) {
    let enrolled = now - rng.days_below(3 * 365) - TimeDelta::days(1);
    let (mut member, mut changes) =
        apply::member_or_new(rules, None, &format!("member-{index:07}"), enrolled);
    let region = REGIONS[usize::try_from(rng.below(REGIONS.len() as u64)).unwrap_or(0)];
    member.attributes.insert("region".into(), region.into());
    // Spend per member: most spend little, a few spend a lot.
    let appetite = 1 + rng.below(100).pow(3) / 50_000;
    let mut purchases: Vec<(DateTime<Utc>, i64, &str)> = (0..rng.below(41))
        .map(|_| {
            let at = (now - rng.days_below(395)).max(enrolled);
            let amount = i64::try_from(500 + rng.below(4_000) * appetite).unwrap_or(500);
            let channel = if rng.below(4) == 0 { "web" } else { "pos" };
            (at, amount, channel)
        })
        .collect();
    purchases.sort_by_key(|(at, _, _)| *at);
    for (n, (at, amount_minor, channel)) in purchases.into_iter().enumerate() {
        let transaction_id = format!("seed-{index}-{n}");
        let purchase = apply::Purchase {
            transaction_id: &transaction_id,
            amount_minor,
            channel,
            store_id: "store-1",
            tags: &[],
            occurred_at: at,
        };
        changes.extend(apply::purchase(rules, &mut member, &purchase, at).1.changes);
    }
    changes.extend(apply::sweep(rules, &mut member, now).changes);
    member.prune_days(now);
    (member, changes)
}

/// Writes `count` synthetic members and their tier history into `store`,
/// grown under `rules` up to `now`. Returns how many were written.
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
        let batch: Vec<(MemberState, Vec<Change>)> = (written..count.min(written + BATCH as u64))
            .map(|i| member(rules, &mut rng, i, now))
            .collect();
        let size = batch.len() as u64;
        let version = rules.version.clone();
        store
            .write(move |writer| {
                let mut seq = writer.next_seq();
                let mut commit = Commit::default();
                for (member, changes) in batch {
                    for change in changes {
                        commit.history.push(HistoryEntry {
                            seq,
                            member_id: member.member_id.clone(),
                            change,
                            rules_version: version.clone(),
                        });
                        seq += 1;
                    }
                    commit.members.push(member);
                }
                writer.commit(&commit)
            })
            .await??;
        written += size;
    }
    Ok(written)
}
