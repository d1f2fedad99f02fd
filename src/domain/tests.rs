//! Unit tests of the tier decision and earning on a small three-tier
//! ladder, and of what events do to members under the example rules.

use std::{collections::BTreeMap, path::Path};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{
    decide::*,
    earn::{self, PurchaseFacts, points_for_purchase},
};
use crate::rules::{self, PointsCeiling, RuleSet, Window};

const RULES: &str = "\
program: test
version: t1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
  channel_multipliers: { web: 1.5 }
  tag_multipliers: { double: 2, triple: 3 }
  bonus: 'if amount >= 10000 { 7 } else { 0 }'
tiers:
  - id: bronze
  - id: silver
    qualify: { qualifying_points: 100 }
    retain: { qualifying_points: 80 }
  - id: gold
    qualify: { any: [ { qualifying_points: 500 }, { purchase_volume: \"1000.00\" } ] }
    retain: { qualifying_points: 400 }
demotion:
  grace_days: 30
  max_drop: 1
";

/// 10:00 UTC on `day` March 2026, the day the account and merge tests
/// count from.
pub(super) fn march(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 10, 0, 0)
        .single()
        .expect("valid date")
}

fn ruleset() -> RuleSet {
    rules::load(&rules::Candidate::new("test.yaml", RULES)).expect("valid rules")
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("valid date")
        + TimeDelta::days(i64::from(d))
}

fn state(tier: &str) -> TierState {
    TierState {
        tier_id: tier.to_owned(),
        since: day(0),
        retain_failing_since: None,
        tier_override: None,
        warned: false,
    }
}

fn points(qp: i64) -> Metrics {
    Metrics {
        qualifying_points: qp,
        ..Metrics::default()
    }
}

fn eval(rules: &RuleSet, state: &TierState, metrics: &Metrics, at: DateTime<Utc>) -> Evaluation {
    let attributes = BTreeMap::new();
    evaluate(
        rules,
        state,
        Subject {
            metrics,
            attributes: &attributes,
            lifecycle: None,
        },
        at,
    )
}

#[test]
fn promotion_is_immediate_and_may_skip_tiers() {
    let rules = ruleset();
    let result = eval(&rules, &state("bronze"), &points(600), day(1));
    let change = result.change.expect("promoted");
    assert_eq!(
        (change.from_tier.as_str(), change.to_tier.as_str()),
        ("bronze", "gold")
    );
    assert_eq!(change.kind, ChangeKind::Promotion);
    assert!(
        change.reason.contains("qualifying_points 600 >= 500"),
        "{}",
        change.reason
    );
    assert_eq!(result.state.since, day(1));
}

#[test]
fn demotion_waits_for_the_grace_period_and_lands_softly() {
    let rules = ruleset();
    let low = points(10);
    let first = eval(&rules, &state("gold"), &low, day(1));
    let warning = first.change.expect("at risk");
    assert_eq!(warning.kind, ChangeKind::AtRisk);
    assert_eq!(
        (warning.from_tier.as_str(), warning.to_tier.as_str()),
        ("gold", "gold")
    );
    assert_eq!(warning.at_risk.map(|r| r.demotion_at), Some(day(31)));
    assert!(
        warning
            .reason
            .contains("demotion due on 2026-02-01 (30 days)"),
        "{}",
        warning.reason
    );
    assert_eq!(first.state.retain_failing_since, Some(day(1)));
    let within = eval(&rules, &first.state, &low, day(30));
    assert_eq!(within.change, None, "29 days is inside the grace period");
    let after = eval(&rules, &within.state, &low, day(31));
    let change = after.change.expect("demoted after 30 days");
    assert_eq!(change.to_tier, "silver", "max_drop 1 lands one tier down");
    assert_eq!(change.kind, ChangeKind::Demotion);
    assert!(change.reason.contains("soft landing"), "{}", change.reason);
    // Silver is not retained either: a new grace period starts at once.
    assert_eq!(after.state.retain_failing_since, Some(day(31)));
}

#[test]
fn recovering_resets_the_grace_clock() {
    let rules = ruleset();
    let failing = eval(&rules, &state("gold"), &points(10), day(1)).state;
    let recovered = eval(&rules, &failing, &points(450), day(10));
    let kept = recovered.change.expect("retained");
    assert_eq!(kept.kind, ChangeKind::Retained);
    assert!(kept.reason.starts_with("kept gold: "), "{}", kept.reason);
    assert_eq!(recovered.state.retain_failing_since, None);
    let again = eval(&rules, &recovered.state, &points(10), day(35));
    let at_risk = again.change.and_then(|c| c.at_risk);
    assert_eq!(
        at_risk.map(|r| r.demotion_at),
        Some(day(65)),
        "the clock restarted on day 35"
    );
}

#[test]
fn an_early_warning_comes_once_warn_days_before_the_demotion() {
    let text = RULES.replace(
        "  grace_days: 30\n",
        "  grace_days: 30\n  warn_days_before: 7\n",
    );
    let rules = rules::load(&rules::Candidate::new("test.yaml", text.as_str())).expect("valid");
    let low = points(10);
    let mut state = state("gold");
    let mut kinds = Vec::new();
    for d in [1, 20, 23, 24, 25, 30, 31] {
        let evaluation = eval(&rules, &state, &low, day(d));
        kinds.push((d, evaluation.change.map(|c| c.kind)));
        state = evaluation.state;
    }
    use ChangeKind::{AtRisk, Demotion};
    assert_eq!(
        kinds,
        [
            (1, Some(AtRisk)),
            (20, None),
            (23, None),
            (24, Some(AtRisk)),
            (25, None),
            (30, None),
            (31, Some(Demotion))
        ]
    );
    assert!(!state.warned, "a new tier starts unwarned");
}

#[test]
fn retain_is_lower_than_qualify() {
    let rules = ruleset();
    let result = eval(&rules, &state("silver"), &points(90), day(100));
    assert_eq!(result.change, None);
    assert_eq!(result.state.retain_failing_since, None);
}

#[test]
fn lock_and_floor_overrides() {
    let rules = ruleset();
    let mut locked = state("gold");
    locked.tier_override = Some(TierOverride {
        tier_id: "gold".into(),
        mode: OverrideMode::Lock,
        until: Some(day(50)),
        reason: "vip".into(),
    });
    let held = eval(&rules, &locked, &points(0), day(45));
    assert_eq!(held.change, None);
    assert_eq!(held.state.tier_id, "gold");
    // After the lock lapses the normal policy applies, grace period first.
    let lapsed = eval(&rules, &held.state, &points(0), day(51));
    assert_eq!(lapsed.state.tier_override, None);
    assert_eq!(lapsed.change.map(|c| c.kind), Some(ChangeKind::AtRisk));

    let mut floored = state("gold");
    floored.tier_override = Some(TierOverride {
        tier_id: "gold".into(),
        mode: OverrideMode::Floor,
        until: None,
        reason: "complaint".into(),
    });
    floored.retain_failing_since = Some(day(0));
    let kept = eval(&rules, &floored, &points(0), day(90));
    assert_eq!(kept.change, None, "a floor holds");
    let mut floored_silver = floored.clone();
    floored_silver.tier_id = "silver".into();
    floored_silver.tier_override = Some(TierOverride {
        tier_id: "silver".into(),
        ..floored.tier_override.clone().expect("set above")
    });
    let rose = eval(&rules, &floored_silver, &points(700), day(90));
    assert_eq!(
        rose.change.map(|c| c.to_tier),
        Some("gold".into()),
        "a floor does not cap"
    );
}

#[test]
fn earning_multiplies_exactly() {
    let rules = ruleset();
    let metrics = Metrics::default();
    let attributes = BTreeMap::new();
    let subject = Subject {
        metrics: &metrics,
        attributes: &attributes,
        lifecycle: None,
    };
    let points = |amount_minor, channel, tags: &[String]| {
        let purchase = earn::Purchase {
            transaction_id: "p",
            amount_minor,
            channel,
            store_id: "s1",
            tags,
            lines: &[],
            occurred_at: day(0),
        };
        let facts = PurchaseFacts {
            purchase: &purchase,
            tier_id: "bronze",
            rate_tier: Some("bronze"),
        };
        points_for_purchase(&rules, facts, subject)
    };
    assert_eq!(points(9_999, "pos", &[]), Ok(99));
    assert_eq!(points(12_345, "pos", &[]), Ok(130));
    assert_eq!(points(999, "web", &[]), Ok(14));
    // 50.00 x 1.5 (web) x 3 (largest tag) = 225.
    let tags = ["double".to_owned(), "triple".to_owned()];
    assert_eq!(points(5_000, "web", &tags), Ok(225));
    // 100.00 earns 100 plus the scripted bonus of 7.
    assert_eq!(points(10_000, "pos", &[]), Ok(107));
}

/// What the tier above `tier` needs of a member with `metrics`.
fn next_for(rules: &RuleSet, tier: &str, metrics: &Metrics) -> Option<NextTier> {
    let attributes = BTreeMap::new();
    let subject = Subject {
        metrics,
        attributes: &attributes,
        lifecycle: None,
    };
    next_tier(rules, tier, subject)
}

#[test]
fn next_tier_says_what_is_missing() {
    let rules = ruleset();
    let metrics = Metrics {
        qualifying_points: 200,
        purchase_volume_minor: 88_000,
        ..Metrics::default()
    };
    let next = next_for(&rules, "silver", &metrics).expect("gold is above");
    assert_eq!(next.tier_id, "gold");
    assert_eq!(next.summary, "earn 300 more points or spend 120.00 more");
    assert_eq!(
        next.shortfalls,
        vec![
            ("qualifying_points".into(), 300),
            ("purchase_volume".into(), 12_000)
        ]
    );
    assert_eq!(next_for(&rules, "gold", &metrics), None);
}

#[test]
fn windows() {
    let at = Utc
        .with_ymd_and_hms(2026, 3, 15, 10, 0, 0)
        .single()
        .expect("valid");
    let enrolled = Utc
        .with_ymd_and_hms(2020, 6, 1, 9, 0, 0)
        .single()
        .expect("valid");
    assert_eq!(
        window_start(Window::RollingMonths(12), at, enrolled),
        Utc.with_ymd_and_hms(2025, 3, 15, 10, 0, 0)
            .single()
            .expect("valid")
    );
    assert_eq!(
        window_start(Window::CalendarYear, at, enrolled),
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid")
    );
    assert_eq!(
        window_start(Window::AnniversaryYear, at, enrolled),
        Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0)
            .single()
            .expect("valid")
    );
}

mod properties {
    //! Properties over random members: the ladder is monotone and the
    //! engine deterministic.

    use proptest::prelude::*;

    use super::*;

    fn example() -> RuleSet {
        rules::load(Path::new("rules/example.yaml")).expect("example rules")
    }

    fn metrics() -> impl Strategy<Value = Metrics> {
        (0..5_000_i64, 0..2_000_000_i64, 0..40_i64, 0..3_000_000_i64).prop_map(
            |(qp, pv, pc, ltv)| Metrics {
                qualifying_points: qp,
                purchase_volume_minor: pv,
                purchase_count: pc,
                lifetime_value_minor: ltv,
                points_balance: qp,
                activity_count: pc,
            },
        )
    }

    fn attributes() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop_oneof![Just("flagship"), Just("north"), Just("")]
            .prop_map(|region| BTreeMap::from([("region".to_owned(), region.to_owned())]))
    }

    /// The tier a member qualifies for: where the entry tier promotes to.
    fn qualified(
        rules: &RuleSet,
        metrics: &Metrics,
        attributes: &BTreeMap<String, String>,
    ) -> usize {
        let result = evaluate(
            rules,
            &state("bronze"),
            Subject {
                metrics,
                attributes,
                lifecycle: None,
            },
            day(1),
        );
        rules
            .tier_index(&result.state.tier_id)
            .expect("a tier of the ladder")
    }

    proptest! {
        #[test]
        fn more_spend_or_points_never_lowers_the_qualified_tier(
            base in metrics(),
            extra in metrics(),
            attributes in attributes(),
        ) {
            let rules = example();
            let more = Metrics {
                qualifying_points: base.qualifying_points + extra.qualifying_points,
                purchase_volume_minor: base.purchase_volume_minor + extra.purchase_volume_minor,
                purchase_count: base.purchase_count + extra.purchase_count,
                lifetime_value_minor: base.lifetime_value_minor + extra.lifetime_value_minor,
                points_balance: base.points_balance + extra.points_balance,
                activity_count: base.activity_count + extra.activity_count,
            };
            prop_assert!(qualified(&rules, &more, &attributes) >= qualified(&rules, &base, &attributes));
        }

        #[test]
        fn evaluation_is_deterministic(
            metrics in metrics(),
            attributes in attributes(),
            tier in 0..4_usize,
            failing_days in proptest::option::of(0..90_u32),
            at_day in 0..400_u32,
        ) {
            let rules = example();
            let mut member = state(&rules.tiers[tier].id);
            member.retain_failing_since = failing_days.map(|d| day(0) + TimeDelta::days(i64::from(d)));
            let subject = Subject { metrics: &metrics, attributes: &attributes, lifecycle: None };
            let first = evaluate(&rules, &member, subject, day(at_day));
            let second = evaluate(&rules, &member, subject, day(at_day));
            prop_assert_eq!(first, second);
        }
    }
}

/// A met branch of `any` means nothing is missing, wherever it stands in
/// the list (a met branch after an unmet one used to leave the unmet
/// branch's shortfall behind).
#[test]
fn a_met_any_branch_leaves_no_shortfall_whatever_its_place() {
    let rules = ruleset();
    let metrics = Metrics {
        qualifying_points: 200,
        purchase_volume_minor: 150_000,
        ..Metrics::default()
    };
    // gold: any [qualifying_points 500, purchase_volume 1000.00]: the
    // second branch is met.
    let next = next_for(&rules, "silver", &metrics).expect("gold is above");
    assert_eq!(next.summary, "qualifies at the next evaluation");
    assert_eq!(next.shortfalls, []);
}

mod events {
    //! What events do to a member, through `apply`, the one code path.

    use super::*;
    use crate::domain::{
        apply::{self, Effect},
        member::MemberState,
        receipt::{PurchaseTrack, Returned},
    };

    const EXPIRING: &str = "\
program: test
version: e1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
points_expiry:
  months: 1
tiers:
  - id: bronze
  - id: silver
    qualify: { purchase_volume: \"100.00\" }
demotion:
  grace_days: 0
";

    fn rules() -> RuleSet {
        rules::load(&rules::Candidate::new("expiring.yaml", EXPIRING)).expect("valid rules")
    }

    fn buy(
        rules: &RuleSet,
        member: &mut MemberState,
        id: &str,
        at: DateTime<Utc>,
    ) -> (PurchaseTrack, Effect) {
        let purchase = earn::Purchase {
            transaction_id: id,
            amount_minor: 10_000,
            channel: "pos",
            store_id: "",
            tags: &[],
            lines: &[],
            occurred_at: at,
        };
        apply::purchase(rules, member, &purchase, at).expect("within the ceiling")
    }

    /// The reproduction of the review: A's points lapsed 10 days ago; B's
    /// are live. Returning A takes nothing from B's points: A's already
    /// left once, as breakage.
    #[test]
    fn a_return_after_the_points_lapsed_takes_nothing_from_other_points() {
        let rules = rules();
        let now = day(100);
        let mut member = MemberState::new("m", "bronze", now - TimeDelta::days(40));
        let (mut a, _) = buy(&rules, &mut member, "A", now - TimeDelta::days(40));
        let (_, effect) = buy(&rules, &mut member, "B", now);
        assert_eq!(effect.lapsed.len(), 1, "A lapsed as B arrived");
        assert_eq!(effect.lapsed[0].source, "A");
        a.record_lapse(effect.lapsed[0].points);
        assert_eq!(member.points_balance(now), 100);
        for half in [5_000, 5_000] {
            let what = Returned::Amount(half);
            let effect = apply::return_purchase(&rules, &mut member, "A", &mut a, what, None, now)
                .expect("returnable");
            assert_eq!(effect.points, 0);
        }
        assert_eq!(member.points_balance(now), 100);
        assert_eq!(member.lifetime_value_minor, 10_000, "the spend went back");
    }

    /// When a purchase's own lot lapses in the very event that returns it,
    /// the return knows at once.
    #[test]
    fn a_return_that_finds_its_purchase_just_lapsed_knows_it() {
        let rules = rules();
        let now = day(100);
        let mut member = MemberState::new("m", "bronze", now - TimeDelta::days(40));
        let (mut a, _) = buy(&rules, &mut member, "A", now - TimeDelta::days(40));
        let effect = apply::return_purchase(
            &rules,
            &mut member,
            "A",
            &mut a,
            Returned::Amount(10_000),
            None,
            now,
        )
        .expect("returnable");
        assert_eq!((effect.points, a.points_lapsed), (0, 100));
        assert!(
            effect.lapsed.is_empty(),
            "its own lapse is booked, not reported"
        );
        assert_eq!(member.points_balance(now), 0);
        assert_eq!(member.points_debt, 0);
    }

    /// Redeeming changes no tier, even when a demotion has become due by
    /// time: the next event or sweep makes it.
    #[test]
    fn redeeming_never_changes_the_tier() {
        let rules = rules();
        let start = day(0);
        let mut member = MemberState::new("m", "bronze", start);
        let (_, bought) = buy(&rules, &mut member, "A", start);
        assert_eq!(member.tier.tier_id, "silver", "{:?}", bought.changes);
        // 13 months later the purchase left the window: retain fails, and
        // grace is 0 days.
        let later = start + TimeDelta::days(400);
        member.adjust("gift", 50, later, None);
        let redeemed = apply::redeem(&mut member, 50, None, later).expect("enough points");
        assert_eq!(redeemed.changes, []);
        assert_eq!(member.tier.tier_id, "silver");
        let swept = apply::sweep(&rules, &mut member, later);
        assert_eq!(swept.changes.len(), 1, "the sweep demotes");
        assert_eq!(member.tier.tier_id, "bronze");
    }

    /// The shared bookkeeping ([`crate::domain::books`]) over books kept in
    /// memory, as `tierd rules test` keeps them.
    mod books {
        use std::collections::BTreeMap;

        use super::*;
        use crate::domain::{
            books::{Books, ReturnError, return_purchase, settle},
            fingerprint::Fingerprint,
            receipt::{OrderRedemptions, Receipt, RequestKind},
        };

        #[derive(Default)]
        struct Memory {
            receipts: BTreeMap<String, Receipt>,
            orders: BTreeMap<(String, String), OrderRedemptions>,
        }

        impl Books for Memory {
            type Error = std::convert::Infallible;

            fn receipt(&self, id: &str) -> Result<Option<Receipt>, Self::Error> {
                Ok(self.receipts.get(id).cloned())
            }

            fn order(
                &self,
                member: &str,
                order: &str,
            ) -> Result<Option<OrderRedemptions>, Self::Error> {
                Ok(self.orders.get(&(member.into(), order.into())).cloned())
            }
        }

        /// A member who bought 100.00 (100 points) as `A` on day 0.
        fn bought(rules: &RuleSet) -> (MemberState, Memory) {
            let mut member = MemberState::new("m", "bronze", day(0));
            let (track, effect) = buy(rules, &mut member, "A", day(0));
            let mut books = Memory::default();
            let receipt = Receipt {
                kind: RequestKind::Purchase,
                member_id: "m".into(),
                fingerprint: Fingerprint([0; 32]),
                actor: "test".into(),
                points: effect.points,
                capped: false,
                tier_changes: Vec::new(),
                purchase: Some(track),
                refunded_minor: 0,
                points_recredited: 0,
            };
            books.receipts.insert("A".into(), receipt);
            (member, books)
        }

        #[test]
        fn a_lapse_is_booked_on_its_purchase_and_a_later_return_takes_none_back() {
            let rules = rules();
            let (mut member, mut books) = bought(&rules);
            let effect = apply::sweep(&rules, &mut member, day(40));
            let mut changed = Vec::new();
            let Ok(()) = settle(&books, &mut member, &effect.lapsed, day(40), &mut changed);
            assert_eq!(changed.len(), 1, "the purchase's receipt is told");
            books.receipts.extend(changed);
            let what = Returned::Amount(10_000);
            let (effect, entries) =
                return_purchase(&books, &rules, &mut member, "A", what, None, day(41))
                    .expect("returned");
            assert_eq!(effect.points, 0, "its points lapsed already");
            assert_eq!(entries.receipts.len(), 1);
        }

        #[test]
        fn a_return_re_credits_the_points_its_order_was_paid_with() {
            let rules = rules();
            let (mut member, mut books) = bought(&rules);
            apply::redeem(&mut member, 40, None, day(1)).expect("enough points");
            let paid = OrderRedemptions {
                redeemed: 40,
                recredited: 0,
            };
            books.orders.insert(("m".into(), "A".into()), paid);
            let what = Returned::Amount(5_000);
            let (effect, entries) =
                return_purchase(&books, &rules, &mut member, "A", what, None, day(2))
                    .expect("returned");
            assert_eq!(
                effect.points_recredited, 20,
                "half the order, half its points"
            );
            let recredited = OrderRedemptions {
                redeemed: 40,
                recredited: 20,
            };
            assert_eq!(entries.orders, [("m".into(), "A".into(), recredited)]);
        }

        #[test]
        fn a_return_before_its_purchase_or_of_another_member_s_is_refused() {
            let rules = rules();
            let (mut member, books) = bought(&rules);
            let what = Returned::Amount(100);
            let early = Some(day(0) - TimeDelta::days(1));
            let before = return_purchase(&books, &rules, &mut member, "A", what, early, day(1));
            assert!(matches!(before, Err(ReturnError::BeforePurchase { .. })));
            let mut other = MemberState::new("m2", "bronze", day(0));
            let theirs = return_purchase(&books, &rules, &mut other, "A", what, None, day(1));
            assert!(matches!(theirs, Err(ReturnError::NotFound)));
        }
    }
}

mod ceiling {
    //! No sum of points saturates: an event the rules would pay more than
    //! `earning.max_points_per_event` is refused whole, and every event
    //! within it keeps the ledger exact, at the extremes of what a till may
    //! send (amounts up to the input limit) and a rules file may set.

    use proptest::prelude::*;

    use super::*;
    use crate::domain::{
        apply,
        member::MemberState,
        receipt::{PurchaseTrack, Returned},
    };

    /// The largest amount a till may send (`LIMITS.max_amount` in the app
    /// layer, which this pure layer does not see).
    const MAX_AMOUNT: i64 = 1_000_000_000_000;

    /// 100 points per 1.00 at the highest ceiling: the largest purchase a
    /// till may send (10^12 minor units) earns exactly the ceiling.
    const GREEDY: &str = "\
program: test
version: t1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 100
  max_points_per_event: 1000000000000
tiers:
  - id: bronze
  - id: silver
    qualify: { qualifying_points: 100 }
";

    fn load(text: &str) -> RuleSet {
        rules::load(&rules::Candidate::new("ceiling.yaml", text)).expect("valid rules")
    }

    fn purchase<'a>(id: &'a str, amount_minor: i64) -> earn::Purchase<'a> {
        earn::Purchase {
            transaction_id: id,
            amount_minor,
            channel: "pos",
            store_id: "",
            tags: &[],
            lines: &[],
            occurred_at: day(0),
        }
    }

    #[test]
    fn a_bonus_of_i64_max_is_refused_naming_the_script() {
        let rules = load(&RULES.replace(
            "bonus: 'if amount >= 10000 { 7 } else { 0 }'",
            "bonus: '9223372036854775807'",
        ));
        let mut member = MemberState::new("m", "bronze", day(0));
        let refused = apply::purchase(&rules, &mut member, &purchase("t1", 1_000), day(0))
            .expect_err("over the ceiling");
        assert!(refused.rule.contains("earning.bonus"), "{refused}");
        assert_eq!(refused.ceiling, 1_000_000_000);
        assert!(
            refused.to_string().contains("max_points_per_event"),
            "{refused}"
        );
    }

    #[test]
    fn a_ceiling_outside_its_range_is_refused_at_its_line() {
        let text = GREEDY.replace("1000000000000", "1000000000001");
        let rejected =
            rules::load(&rules::Candidate::new("ceiling.yaml", text)).expect_err("too high");
        let first = &rejected.diagnostics[0];
        assert_eq!(first.line, 7, "{rejected}");
        assert!(first.message.contains("max_points_per_event"), "{rejected}");
    }

    proptest! {
        #[test]
        fn every_ledger_identity_holds_at_the_extremes(
            amounts in proptest::collection::vec(
                prop_oneof![
                    Just(MAX_AMOUNT),
                    1..=MAX_AMOUNT,
                    1..=1_000_i64,
                ],
                1..12,
            ),
            ceiling in prop_oneof![Just(PointsCeiling::HIGHEST), 1..=PointsCeiling::HIGHEST],
        ) {
            let rules = load(&GREEDY.replace("1000000000000", &ceiling.to_string()));
            let mut member = MemberState::new("m", "bronze", day(0));
            let mut kept: Vec<(String, PurchaseTrack)> = Vec::new();
            let mut earned = 0_i128;
            for (i, amount) in amounts.iter().enumerate() {
                let id = format!("t{i}");
                let due = i128::from(*amount) * 100 / 100;
                match apply::purchase(&rules, &mut member, &purchase(&id, *amount), day(0)) {
                    Ok((track, effect)) => {
                        prop_assert!(due <= i128::from(ceiling));
                        prop_assert_eq!(i128::from(effect.points), due);
                        earned += due;
                        kept.push((id, track));
                    }
                    Err(refused) => {
                        prop_assert!(due > i128::from(ceiling));
                        prop_assert_eq!(refused.points, due);
                    }
                }
                prop_assert_eq!(i128::from(member.points_balance(day(0))), earned);
            }
            let spent: i128 = kept.iter().map(|(_, t)| i128::from(t.amount_minor)).sum();
            prop_assert_eq!(i128::from(member.lifetime_value_minor), spent);
            for (id, track) in &mut kept {
                let all = Returned::Amount(track.amount_minor);
                apply::return_purchase(&rules, &mut member, id, track, all, None, day(0))
                    .expect("a whole return fits");
            }
            let metrics = apply::metrics(&rules, &member, day(0));
            prop_assert_eq!(member.points_balance(day(0)), 0);
            prop_assert_eq!(metrics.qualifying_points, 0);
            prop_assert_eq!(metrics.purchase_volume_minor, 0);
            prop_assert_eq!(member.lifetime_value_minor, 0);
        }
    }
}

mod due {
    //! The due moment is never late: a member decided at `at` and swept at
    //! any moment before [`next_due`](crate::domain::due::next_due) changes
    //! in nothing, on random stories of purchases (some reported late),
    //! returns across months, adjustments, manual floors that run out,
    //! sweeps and expiries, under every kind of window.

    use proptest::prelude::*;

    use super::*;
    use crate::domain::{
        apply::{self, Placement},
        due::{Due, next_due, rules_id},
        member::MemberState,
        receipt::{PurchaseTrack, Returned},
    };

    const LADDER: &str = "\
program: due
version: d1
currency: EUR
window: WINDOW
earning:
  points_per_unit: 1
points_expiry:
  months: EXPIRY
tiers:
  - id: bronze
  - id: silver
    qualify: { qualifying_points: 100 }
    retain: { purchase_count: 2 }
  - id: gold
    qualify: { purchase_volume: \"900.00\" }
    retain: { qualifying_points: 400 }
demotion:
  grace_days: GRACE
  max_drop: 1
  warn_days_before: 7
";

    fn ladder(window: &str, expiry: u32, grace: u32) -> RuleSet {
        let text = LADDER
            .replace("WINDOW", window)
            .replace("EXPIRY", &expiry.to_string())
            .replace("GRACE", &grace.to_string());
        let mut rules = rules::load(&rules::Candidate::new("due.yaml", text)).expect("valid rules");
        rules.content_hash = format!("{:064x}", u128::from(expiry) << 8 | u128::from(grace));
        rules
    }

    /// One step of a story: how long after the last one, and what.
    #[derive(Debug, Clone)]
    enum Step {
        /// A purchase of this many whole euros, reported this many days
        /// late.
        Purchase(i64, u32),
        /// A return of this percentage of an earlier purchase (by index).
        Return(usize, i64),
        /// Points added (or taken) by hand.
        Adjust(i64),
        /// A manual floor on silver for this many days.
        Floor(u32),
        /// The periodic sweep.
        Sweep,
        /// Other rules go live (another window and grace period), and the
        /// sweep decides the member under them.
        Reload,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (1..400_i64, prop_oneof![3 => Just(0_u32), 1 => 1..40_u32])
                .prop_map(|(euros, late)| Step::Purchase(euros, late)),
            2 => (0..8_usize, 10..=100_i64).prop_map(|(of, pct)| Step::Return(of, pct)),
            1 => (-50..200_i64).prop_map(Step::Adjust),
            1 => (1..90_u32).prop_map(Step::Floor),
            2 => Just(Step::Sweep),
            1 => Just(Step::Reload),
        ]
    }

    /// Applies `step` at `now`, as the service would; `None` when it was
    /// refused, else whether its decision changed the tier state (a
    /// change in the history).
    fn apply_step(
        rules: &RuleSet,
        member: &mut MemberState,
        tracks: &mut Vec<(String, PurchaseTrack)>,
        step: &Step,
        now: DateTime<Utc>,
    ) -> Option<bool> {
        let changes = match step {
            Step::Purchase(euros, late) => {
                let id = format!("p{}", tracks.len());
                let purchase = earn::Purchase {
                    transaction_id: &id,
                    amount_minor: euros * 100,
                    channel: "pos",
                    store_id: "",
                    tags: &[],
                    lines: &[],
                    occurred_at: now - TimeDelta::days(i64::from(*late)),
                };
                let (track, effect) =
                    apply::purchase(rules, member, &purchase, now).expect("within the ceiling");
                tracks.push((id, track));
                effect.changes
            }
            Step::Return(of, pct) => {
                let (id, track) = tracks.get_mut(*of)?;
                let amount = track.amount_minor * pct / 100;
                let (mut changed, mut kept) = (member.clone(), track.clone());
                let what = Returned::Amount(amount);
                // Refused, as the service refuses it: nothing changed.
                let effect =
                    apply::return_purchase(rules, &mut changed, id, &mut kept, what, None, now)
                        .ok()?;
                (*member, *track) = (changed, kept);
                effect.changes
            }
            Step::Adjust(points) => apply::adjust(rules, member, "adj", *points, now, now).changes,
            Step::Floor(days) => {
                let placement = Placement {
                    tier_override: Some(TierOverride {
                        tier_id: "silver".into(),
                        mode: OverrideMode::Floor,
                        until: Some(now + TimeDelta::days(i64::from(*days))),
                        reason: "test".into(),
                    }),
                    reason: "test".into(),
                };
                apply::place_by_hand(rules, member, placement, now)
            }
            Step::Sweep | Step::Reload => apply::sweep(rules, member, now).changes,
        };
        member.prune_days(now);
        Some(!changes.is_empty())
    }

    fn window() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("rolling 12 months"),
            Just("rolling 1 months"),
            Just("rolling 24 months"),
            Just("calendar year"),
            Just("anniversary year"),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn a_member_swept_before_its_due_moment_changes_in_nothing(
            (window, other) in (window(), window()),
            expiry in 1..24_u32,
            grace in 8..60_u32,
            story in proptest::collection::vec((0..70_u32, step()), 1..40),
            probes in proptest::collection::vec(0.0..1.0_f64, 4),
        ) {
            let programme = [ladder(window, expiry, grace), ladder(other, expiry + 1, grace + 3)];
            let mut live = 0;
            let start = day(0) + TimeDelta::hours(3);
            let mut member = MemberState::new("m", "bronze", start);
            let mut tracks = Vec::new();
            let mut now = start;
            for (gap, step) in &story {
                now += TimeDelta::days(i64::from(*gap)) + TimeDelta::minutes(17);
                if matches!(step, Step::Reload) {
                    live = 1 - live;
                }
                let rules = &programme[live];
                let Some(moved) = apply_step(rules, &mut member, &mut tracks, step, now) else {
                    continue;
                };
                let due = next_due(rules, &member, now, moved);
                prop_assert_eq!(due.rules, rules_id(rules));
                let horizon = due.at.unwrap_or(now + TimeDelta::days(800));
                prop_assert!(horizon >= now, "due {horizon} before {now}");
                if horizon == now {
                    // Unsettled (just promoted): due at once, nothing to skip.
                    continue;
                }
                let span = (horizon - now).num_seconds();
                for probe in probes.iter().chain(&[1.0]) {
                    // Any moment strictly between the decision and the due
                    // moment, the last second before it included.
                    let offset = ((span - 1) as f64 * probe) as i64 + 1;
                    let at = (now + TimeDelta::seconds(offset)).min(horizon - TimeDelta::seconds(1));
                    let mut swept = member.clone();
                    let effect = apply::sweep(rules, &mut swept, at);
                    prop_assert!(
                        effect.changes.is_empty() && effect.lapsed.is_empty() && swept == member,
                        "{:?} at {} (decided {}, due {:?}) under {}: {:?} {:?}\n{:?}\n{:?}",
                        step, at, now, due.at, window, effect.changes, effect.lapsed,
                        member.tier, swept.tier
                    );
                }
            }
        }
    }

    #[test]
    fn a_lot_a_window_day_and_a_grace_period_each_set_the_moment() {
        let short_lots = ladder("rolling 12 months", 6, 30);
        let long_lots = ladder("rolling 12 months", 23, 30);
        let mut tracks = Vec::new();
        let mut bronze_under = |rules: &RuleSet| {
            let mut member = MemberState::new("m", "bronze", day(0));
            apply_step(
                rules,
                &mut member,
                &mut tracks,
                &Step::Purchase(50, 0),
                day(0),
            );
            next_due(rules, &member, day(0), false).at
        };
        // The lot lapses after 6 months, before the day leaves the window.
        assert_eq!(
            bronze_under(&short_lots),
            Some(day(0) + chrono::Months::new(6))
        );
        // Lots that outlive the window: the day leaving it decides, at the
        // first midnight it is out.
        let midnight = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single();
        assert_eq!(bronze_under(&long_lots), midnight(2027, 1, 2));
        let calendar = ladder("calendar year", 23, 30);
        assert_eq!(bronze_under(&calendar), midnight(2027, 1, 1));

        // Promoted to silver at once, a member is due at once: silver's
        // retain (two purchases) is first checked at the next decision,
        // which starts its grace period of 30 days.
        let mut silver = MemberState::new("s", "bronze", day(0));
        apply_step(
            &long_lots,
            &mut silver,
            &mut tracks,
            &Step::Purchase(150, 0),
            day(0),
        );
        assert_eq!(silver.tier.tier_id, "silver");
        assert_eq!(next_due(&long_lots, &silver, day(0), true).at, Some(day(0)));
        apply_step(&long_lots, &mut silver, &mut tracks, &Step::Sweep, day(1));
        assert_eq!(silver.tier.retain_failing_since, Some(day(1)));
        let due = |m: &MemberState| next_due(&long_lots, m, day(1), true).at;
        assert_eq!(
            due(&silver),
            Some(day(31) - TimeDelta::days(7)),
            "the warning"
        );
        silver.tier.warned = true;
        assert_eq!(due(&silver), Some(day(31)), "the demotion");

        // A member with nothing that time can change is never due.
        let new = MemberState::new("n", "bronze", day(0));
        assert_eq!(
            next_due(&long_lots, &new, day(1), false),
            Due {
                rules: rules_id(&long_lots),
                at: None
            }
        );
    }
}
