//! Realistic synthetic members, for benchmarks, demos and trying candidate
//! rules on a program-sized store before real data is at hand.
//!
//! Members enrol over the last three years and are active over up to the
//! last 24 months: up to 60 purchases, amounts drawn so that a few members
//! bring most of the revenue (a long-tailed, Pareto-like spread), a quarter
//! of them online; about one purchase in twelve returned in part or whole
//! within a month; half the balance redeemed now and then; activities
//! (store visits, reviews, email clicks, referrals) as the rules know
//! them; a region and an age band as attributes. Each member's events are
//! played in time order through [`crate::domain::apply`], exactly as the
//! service would have received them (windows, earning, promotions,
//! returns, expiry as the rules say), then swept as of `now`; members and
//! their tier history are written, and with [`seed_members`] each
//! purchase's receipt too (what returns and lapses read and rewrite in a
//! real store). Deterministic for a seed.

use chrono::{DateTime, TimeDelta, Utc};

use crate::{
    domain::{
        apply,
        books::{self, Books},
        decide::{Change, HistoryEntry},
        due::{self, Due},
        earn,
        member::MemberState,
        receipt::{OrderRedemptions, Receipt, Returned},
    },
    rules::{RuleSet, RulesVersion},
    store::{Commit, Store, StoreError},
};

/// Members written per commit: enough to keep seeding fast (100,000 members
/// in 10 s), few enough that a commit stays a few MB. At 5,000 the seeder
/// grew to 1.4 GB for 100,000 members and 14 GB for a million; at 500,
/// 0.7 GB for 100,000 (sled's memory still grows with what it has
/// written: docs/performance.md).
const BATCH: usize = 500;

/// One member ready to be written.
struct Seeded {
    member: MemberState,
    changes: Vec<Change>,
    receipts: Vec<(String, Receipt)>,
    due: Due,
}

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

/// Something a synthetic member does, in the order it happens.
enum Event {
    Purchase {
        amount_minor: i64,
        web: bool,
    },
    /// Takes back `percent` of purchase number `of` (in purchase order).
    Return {
        of: usize,
        percent: i64,
    },
    Redeem,
    Activity(&'static str),
}

const AGE_BANDS: [&str; 6] = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"];
const ACTIVITIES: [&str; 4] = ["store_visit", "review", "email_click", "referral"];
/// How far back purchases go: the 24 months the reports look at.
const HISTORY_DAYS: u64 = 730;

impl Rng {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[usize::try_from(self.below(from.len() as u64)).unwrap_or(0)]
    }
}

/// What one member does between enrolling and `now`, in time order.
fn events(
    rng: &mut Rng,
    enrolled: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Event)> {
    let since = (now - rng.days_below(HISTORY_DAYS)).max(enrolled);
    let active_days = u64::try_from((now - since).num_days()).unwrap_or(0) + 1;
    // Spend per member: most spend little, a few spend a lot; some shop
    // often, most now and then.
    let appetite = 1 + rng.below(100).pow(3) / 50_000;
    let visits = rng.below(61) * active_days / HISTORY_DAYS;
    let mut events: Vec<(DateTime<Utc>, Event)> = Vec::new();
    for _ in 0..visits {
        let at = now - rng.days_below(active_days);
        let amount_minor = i64::try_from(500 + rng.below(4_000) * appetite).unwrap_or(500);
        let web = rng.below(4) == 0;
        events.push((at, Event::Purchase { amount_minor, web }));
        if rng.below(6) == 0 {
            events.push((at + rng.days_below(60) + TimeDelta::hours(1), Event::Redeem));
        }
    }
    for _ in 0..rng.below(13) * active_days / HISTORY_DAYS {
        let kind = rng.pick(&ACTIVITIES);
        events.push((now - rng.days_below(active_days), Event::Activity(kind)));
    }
    events.sort_by_key(|(at, _)| *at);
    // About one purchase in twelve comes back, in part or whole, within a
    // month.
    let bought: Vec<DateTime<Utc>> = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Purchase { .. }))
        .map(|(at, _)| *at)
        .collect();
    for (of, at) in bought.into_iter().enumerate() {
        if rng.below(12) == 0 {
            let percent = 30 + i64::try_from(rng.below(71)).unwrap_or(0);
            events.push((
                at + rng.days_below(30) + TimeDelta::hours(2),
                Event::Return { of, percent },
            ));
        }
    }
    events.retain(|(at, _)| *at <= now);
    events.sort_by_key(|(at, _)| *at);
    events
}

/// The id of the `index`th seeded member: what a load generator sends to
/// land purchases on seeded members rather than new ones.
pub fn member_id(index: u64) -> String {
    format!("member-{index:07}")
}

/// One synthetic member as of `now`: its state, the tier changes it went
/// through, and its purchases' receipts (with the points of theirs that
/// lapsed).
fn member(
    rules: &RuleSet,
    rng: &mut Rng,
    index: u64,
    now: DateTime<Utc>,
) -> (MemberState, Vec<Change>, Vec<(String, Receipt)>) {
    let enrolled = now - rng.days_below(3 * 365) - TimeDelta::days(1);
    let (mut member, mut changes) = apply::member_or_new(rules, None, &member_id(index), enrolled);
    member
        .attributes
        .insert("region".into(), rng.pick(&REGIONS).into());
    member
        .attributes
        .insert("age_band".into(), rng.pick(&AGE_BANDS).into());
    let mut receipts: Vec<(String, Receipt)> = Vec::new();
    let no_details = std::collections::BTreeMap::new();
    for (n, (at, event)) in events(rng, enrolled, now).into_iter().enumerate() {
        let transaction_id = format!("seed-{index}-{n}");
        let effect = match event {
            Event::Purchase { amount_minor, web } => {
                let purchase = earn::Purchase {
                    transaction_id: &transaction_id,
                    amount_minor,
                    channel: if web { "web" } else { "pos" },
                    store_id: "store-1",
                    tags: &[],
                    lines: &[],
                    occurred_at: at,
                };
                // Purchases the rules refuse (over their ceiling) are left out.
                let Ok((track, effect)) = apply::purchase(rules, &mut member, &purchase, at) else {
                    continue;
                };
                let receipt = Receipt::of_booked_purchase(&member.member_id, "seed", track);
                receipts.push((transaction_id, receipt));
                effect
            }
            Event::Return { of, percent } => {
                let Some((
                    original,
                    Receipt {
                        purchase: Some(track),
                        ..
                    },
                )) = receipts.get_mut(of)
                else {
                    continue;
                };
                let amount = track.amount_minor * percent / 100;
                let what = Returned::Amount(amount);
                apply::return_purchase(rules, &mut member, original, track, what, None, at)
                    .unwrap_or_default()
            }
            Event::Redeem => {
                let balance = member.points_balance(at);
                let points = (balance / 2 / 100) * 100;
                if points < 500 {
                    continue;
                }
                apply::redeem(&mut member, points, None, at).unwrap_or_default()
            }
            Event::Activity(kind) => {
                let Some(activity) = rules.activities.get(kind) else {
                    continue;
                };
                let facts = apply::ActivityFacts {
                    transaction_id: &transaction_id,
                    kind,
                    details: &no_details,
                    occurred_at: at,
                };
                let Ok(effect) = apply::activity(rules, &mut member, activity, &facts, at) else {
                    continue;
                };
                effect
            }
        };
        let Ok(()) = books::book_lapses(&NoBooks, &effect.lapsed, &mut receipts);
        changes.extend(effect.changes);
    }
    let swept = apply::sweep(rules, &mut member, now);
    let Ok(()) = books::book_lapses(&NoBooks, &swept.lapsed, &mut receipts);
    changes.extend(swept.changes);
    member.prune_days(now);
    (member, changes, receipts)
}

/// A story's books hold only its own purchases' receipts, which
/// [`books::book_lapses`] finds among those it is given: nothing to look
/// up beyond them.
struct NoBooks;

impl Books for NoBooks {
    type Error = std::convert::Infallible;

    fn receipt(&self, _: &str) -> Result<Option<Receipt>, Self::Error> {
        Ok(None)
    }

    fn order(&self, _: &str, _: &str) -> Result<Option<OrderRedemptions>, Self::Error> {
        Ok(None)
    }
}

/// Writes `count` synthetic members and their tier history into `store`,
/// grown under `rules` up to `now`, and records `rules` as the version in
/// force (unless it is the last one recorded), as `tierd serve` does: the
/// reports and a later `serve` then read the members under the rules they
/// were made with. Returns how many were written. No receipts: what
/// reports, simulation and the sweep's member counts need, fast.
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
    seed_members(store, rules, count, seed, now, false).await
}

/// [`seed`], and with `with_receipts` every purchase's receipt written as
/// the service would have (about 30 a member): a store whose sweeps and
/// returns cost what a real programme's do.
///
/// # Errors
/// On a storage failure.
pub async fn seed_members(
    store: &Store,
    rules: &RuleSet,
    count: u64,
    seed: u64,
    now: DateTime<Utc>,
    with_receipts: bool,
) -> Result<u64, StoreError> {
    let mut rng = Rng::new(seed);
    let mut written = 0;
    while written < count {
        let batch: Vec<Seeded> = (written..count.min(written + BATCH as u64))
            .map(|i| {
                let (member, changes, mut receipts) = member(rules, &mut rng, i, now);
                if !with_receipts {
                    receipts.clear();
                }
                // The last decision's changes are among the story's: check.
                let due = due::next_due(rules, &member, now, true);
                Seeded {
                    member,
                    changes,
                    receipts,
                    due,
                }
            })
            .collect();
        let size = batch.len() as u64;
        let version = rules.version.clone();
        store
            .write(move |writer| {
                let count = batch.iter().map(|seeded| seeded.changes.len()).sum();
                let mut seqs = writer.seqs(count)?.into_iter();
                let mut commit = Commit::default();
                for seeded in &batch {
                    let member_id = &seeded.member.member_id;
                    for (change, seq) in seeded.changes.iter().zip(seqs.by_ref()) {
                        commit.history.push(HistoryEntry {
                            seq,
                            member_id: member_id.clone(),
                            change: change.clone(),
                            rules_version: version.clone(),
                        });
                    }
                    commit.dues.push((member_id.clone(), seeded.due));
                    commit.receipts.extend(seeded.receipts.iter().cloned());
                    commit.members.push(seeded.member.clone());
                }
                writer.commit(&commit)
            })
            .await??;
        written += size;
    }
    let live = RulesVersion::of(rules, now);
    let recorded = store.last_rules_version()?;
    if recorded.is_none_or(|last| last.content_hash != live.content_hash) {
        store
            .write(move |writer| writer.record_rules_version(&live))
            .await??;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each purchase's transaction id in a seeded member's story, as far as
    /// the story could go.
    fn transaction_ids(index: u64) -> impl Iterator<Item = String> {
        (0..200).map(move |n| format!("seed-{index}-{n}"))
    }

    /// With receipts, every seeded purchase can be found by its transaction
    /// id, belongs to its member, and carries the points of it that lapsed
    /// on the way (some did: the story spans two years, the points live
    /// one); without, none is written.
    #[tokio::test]
    async fn receipts_are_written_with_their_lapses_only_when_asked() {
        let rules = crate::rules::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/rules/example.yaml"
        )))
        .expect("example rules");
        let now = Utc::now();
        let plain_dir = tempfile::tempdir().expect("temp dir");
        let plain = Store::open(plain_dir.path()).expect("store");
        seed(&plain, &rules, 20, 3, now).await.expect("seeded");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        seed_members(&store, &rules, 20, 3, now, true)
            .await
            .expect("seeded");
        let (mut found, mut lapsed) = (0, 0);
        for index in 0..20 {
            for id in transaction_ids(index) {
                assert!(plain.receipt(&id).expect("readable").is_none(), "{id}");
                let Some(receipt) = store.receipt(&id).expect("readable") else {
                    continue;
                };
                assert_eq!(receipt.member_id, member_id(index));
                let track = receipt.purchase.expect("a purchase's receipt");
                assert!(track.points_lapsed <= track.points, "{id}");
                found += 1;
                lapsed += track.points_lapsed;
            }
        }
        assert!(found > 100, "{found} purchases found");
        assert!(lapsed > 0, "no lapse was booked");
    }
}
