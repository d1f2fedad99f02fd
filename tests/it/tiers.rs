//! Promotion, demotion with grace and soft landing, expiry, scripted tiers.

use std::collections::HashMap;

use chrono::TimeDelta;

use crate::harness::{TestServer, moves};
use tierd::grpc::pb::{self, TierChangeKind::*};

fn mv(from: &str, to: &str, kind: pb::TierChangeKind) -> (String, String, pb::TierChangeKind) {
    (from.into(), to.into(), kind)
}

#[tokio::test]
async fn crossing_a_threshold_promotes_at_once_and_the_history_shows_it() {
    let mut server = TestServer::start().await;
    let first = server.buy("ann", "p1", 30_000).await;
    assert_eq!(first.tier_change, None, "325 points is still bronze");
    let second = server.buy("ann", "p2", 20_000).await;
    let change = second.tier_change.expect("promoted");
    assert_eq!(
        (change.from_tier.as_str(), change.to_tier.as_str()),
        ("bronze", "silver")
    );
    assert_eq!(change.kind(), Promotion);
    assert_eq!(change.rules_version, "2026.1");
    assert!(
        change.reason.contains("qualified for silver"),
        "{}",
        change.reason
    );
    let history = server.history("ann").await;
    assert_eq!(
        moves(&history),
        [mv("", "bronze", Initial), mv("bronze", "silver", Promotion)]
    );
    assert_eq!(history[1], change);
    assert!(history[0].seq < history[1].seq);
}

#[tokio::test]
async fn a_big_purchase_jumps_several_tiers_in_one_change() {
    let mut server = TestServer::start().await;
    let response = server.buy("ben", "p1", 1_000_000).await;
    let change = response.tier_change.expect("promoted");
    assert_eq!(
        (change.from_tier.as_str(), change.to_tier.as_str()),
        ("bronze", "platinum")
    );
    assert!(
        change
            .reason
            .contains("lifetime_value 10000.00 >= 10000.00"),
        "{}",
        change.reason
    );
    assert_eq!(moves(&server.history("ben").await).len(), 2);
}

#[tokio::test]
async fn a_return_below_retain_demotes_only_after_the_grace_period() {
    let mut server = TestServer::start().await;
    server.buy("cat", "p1", 60_000).await; // 625 points: silver
    let returned = server
        .client
        .record_return(server.refund("cat", "r1", "p1", 30_000))
        .await
        .expect("return")
        .into_inner();
    let member = returned.member.expect("member");
    assert_eq!(member.qualifying_points, 313, "625 - 312 taken back");
    assert_eq!(member.tier_id, "silver", "a return never demotes by itself");
    assert_eq!(returned.tier_change, None, "being at risk is not a move");
    let at_risk = server.history("cat").await.pop().expect("an entry");
    assert_eq!(at_risk.kind(), AtRisk);
    let due = server.clock.now() + TimeDelta::days(30);
    assert_eq!(
        at_risk.demotion_at,
        Some(tierd::grpc::convert::timestamp(due))
    );
    assert_eq!(
        at_risk.to_stay,
        [pb::Shortfall {
            metric: "qualifying_points".into(),
            missing: 87
        }]
    );
    assert!(
        at_risk.reason.contains("to stay: earn 87 more points by"),
        "{}",
        at_risk.reason
    );

    // The early warning (warn_days_before: 7) comes at the first sweep in
    // the last week; before it nothing is due, and the sweep decides no one.
    let early = server.evaluate_in_days(22).await;
    assert_eq!(
        (early.evaluated, early.demoted, early.changes.len()),
        (0, 0, 0)
    );
    let early = server.evaluate_in_days(29).await;
    assert_eq!((early.evaluated, early.demoted), (1, 0));
    assert_eq!(
        early.changes.iter().map(|c| c.kind()).collect::<Vec<_>>(),
        [AtRisk]
    );
    assert_eq!(server.member("cat").await.tier_id, "silver");

    let late = server.evaluate_in_days(30).await;
    assert_eq!(late.demoted, 1);
    let change = &late.changes[0];
    assert_eq!(
        (change.from_tier.as_str(), change.to_tier.as_str()),
        ("silver", "bronze")
    );
    assert!(
        change.reason.contains("qualifying_points 313 < 400"),
        "{}",
        change.reason
    );
    assert_eq!(server.member("cat").await.tier_id, "bronze");
    assert_eq!(
        moves(&server.history("cat").await),
        [
            mv("", "bronze", Initial),
            mv("bronze", "silver", Promotion),
            mv("silver", "silver", AtRisk),
            mv("silver", "silver", AtRisk),
            mv("silver", "bronze", Demotion)
        ]
    );
}

#[tokio::test]
async fn a_member_at_risk_who_requalifies_is_retained() {
    let mut server = TestServer::start().await;
    server.buy("eli", "p1", 60_000).await;
    server
        .client
        .record_return(server.refund("eli", "r1", "p1", 30_000))
        .await
        .expect("return");
    server.clock.advance(TimeDelta::days(10));
    let back = server.buy("eli", "p2", 10_000).await;
    assert_eq!(back.tier_change, None, "kept, not moved");
    let history = server.history("eli").await;
    let last = history.last().expect("an entry");
    assert_eq!(last.kind(), Retained);
    assert!(last.reason.starts_with("kept silver: "), "{}", last.reason);
    // No demotion when the old grace period would have ended.
    let swept = server.evaluate_in_days(25).await;
    assert_eq!((swept.demoted, swept.changes.len()), (0, 0));
}

#[tokio::test]
async fn soft_landing_drops_one_tier_per_grace_period() {
    let mut server = TestServer::start().await;
    server.buy("dan", "p1", 1_000_000).await; // platinum
    server
        .client
        .record_return(server.refund("dan", "r1", "p1", 1_000_000))
        .await
        .expect("return");
    server.evaluate_in_days(1).await; // starts the grace clock
    let first = server.evaluate_in_days(31).await;
    assert_eq!(first.changes.len(), 1);
    assert_eq!(first.changes[0].to_tier, "gold", "max_drop 1");
    assert!(
        first.changes[0].reason.contains("soft landing"),
        "{}",
        first.changes[0].reason
    );
    let too_soon = server.evaluate_in_days(40).await;
    assert_eq!(too_soon.demoted, 0, "a new grace period runs in gold");
    let second = server.evaluate_in_days(61).await;
    assert_eq!(second.changes[0].to_tier, "silver");
    let third = server.evaluate_in_days(91).await;
    assert_eq!(third.changes[0].to_tier, "bronze");
    assert_eq!(server.member("dan").await.tier_id, "bronze");
}

#[tokio::test]
async fn points_expiring_out_of_the_window_demote_at_a_future_as_of() {
    let mut server = TestServer::start().await;
    server.buy("eve", "p1", 60_000).await; // 625 points, silver, expire in 12 months
    let year = server.evaluate_in_days(366).await;
    assert_eq!(year.points_expired, 625);
    assert_eq!(year.demoted, 0, "the grace period starts now");
    let later = server.evaluate_in_days(366 + 30).await;
    assert_eq!(later.demoted, 1);
    assert_eq!(later.changes[0].to_tier, "bronze");
    assert!(
        later.changes[0]
            .reason
            .contains("qualifying_points 0 < 400"),
        "{}",
        later.changes[0].reason
    );
    assert_eq!(server.member("eve").await.points_balance, 0);
}

#[tokio::test]
async fn a_dry_run_reports_without_writing() {
    let mut server = TestServer::start().await;
    server.buy("fox", "p1", 60_000).await;
    server
        .client
        .record_return(server.refund("fox", "r1", "p1", 60_000))
        .await
        .expect("return");
    let as_of = tierd::grpc::convert::timestamp(server.clock.now() + TimeDelta::days(45));
    let dry = server
        .client
        .evaluate_tiers(pb::EvaluateTiersRequest {
            as_of: Some(as_of),
            member_ids: vec!["fox".into()],
            dry_run: true,
        })
        .await
        .expect("dry run")
        .into_inner();
    assert_eq!(dry.demoted, 1);
    assert_eq!(dry.changes[0].seq, 0);
    assert_eq!(server.member("fox").await.tier_id, "silver");
    let kinds: Vec<_> = moves(&server.history("fox").await)
        .into_iter()
        .map(|m| m.2)
        .collect();
    assert_eq!(
        kinds,
        [Initial, Promotion, AtRisk],
        "the dry run wrote nothing"
    );
}

#[tokio::test]
async fn a_scripted_condition_can_promote() {
    let mut server = TestServer::start().await;
    let upserted = server
        .client
        .upsert_member(pb::UpsertMemberRequest {
            member_id: "gus".into(),
            attributes: HashMap::from([("region".into(), "flagship".into())]),
            enrolled_at: None,
        })
        .await
        .expect("upsert")
        .into_inner();
    assert_eq!(upserted.tier_id, "bronze");
    let response = server.buy("gus", "p1", 500_000).await;
    let change = response.tier_change.expect("promoted");
    assert_eq!(change.to_tier, "platinum", "5000.00 in the flagship region");
    assert!(change.reason.contains("script"), "{}", change.reason);
    // The same spend outside the region: silver (gold also needs 5 purchases).
    let other = server.buy("hue", "p2", 500_000).await;
    assert_eq!(other.tier_change.expect("promoted").to_tier, "silver");
}

#[tokio::test]
async fn history_pages_in_order() {
    let mut server = TestServer::start().await;
    server.buy("ida", "p1", 60_000).await;
    server.buy("ida", "p2", 100_000).await; // gold needs 5 purchases: still silver
    for i in 3..=5 {
        server.buy("ida", &format!("p{i}"), 100).await;
    }
    server.buy("ida", "p6", 1_000_000).await; // platinum
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = server
            .client
            .get_tier_history(pb::GetTierHistoryRequest {
                member_id: "ida".into(),
                page_size: 1,
                page_token: token.clone(),
            })
            .await
            .expect("page")
            .into_inner();
        assert!(page.entries.len() <= 1);
        seen.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        moves(&seen),
        [
            mv("", "bronze", Initial),
            mv("bronze", "silver", Promotion),
            mv("silver", "gold", Promotion),
            mv("gold", "platinum", Promotion)
        ]
    );
}

#[tokio::test]
async fn a_late_synced_purchase_counts_in_its_own_period() {
    let mut server = TestServer::start().await;
    let mut late = server.purchase("liz", "old", 60_000);
    server.clock.advance(TimeDelta::days(400));
    // Synced 400 days late: outside the 12-month window, inside lifetime value.
    late.occurred_at = Some(tierd::grpc::convert::timestamp(
        server.clock.now() - TimeDelta::days(400),
    ));
    let response = server
        .client
        .record_purchase(late)
        .await
        .expect("accepted")
        .into_inner();
    let member = response.member.expect("member");
    assert_eq!(member.lifetime_value_minor, 60_000);
    assert_eq!(member.purchase_volume_minor, 0);
    assert_eq!(member.qualifying_points, 0);
    assert_eq!(member.tier_id, "bronze");
    // Its points were earned 400 days ago and expired after 12 months.
    assert_eq!(member.points_balance, 0);
}

const CALENDAR_YEAR: &str = "\
program: calendar
version: cy-1
currency: EUR
window: calendar year
earning:
  points_per_unit: 1
tiers:
  - id: member
  - id: plus
    qualify: { qualifying_points: 100 }
";

#[tokio::test]
async fn a_calendar_year_window_starts_again_on_the_first_of_january() {
    let mut server = TestServer::with_rules(CALENDAR_YEAR).await;
    let bought = server.buy("max", "p1", 15_000).await;
    assert_eq!(bought.tier_change.expect("promoted").to_tier, "plus");
    let new_year = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2027, 1, 1, 0, 0, 0)
        .single()
        .expect("valid");
    let days_to_new_year = (new_year - server.clock.now()).num_days();
    let december = server.evaluate_in_days(days_to_new_year).await;
    assert_eq!(december.demoted, 0, "still 2026");
    let january = server.evaluate_in_days(days_to_new_year + 1).await;
    assert_eq!(january.demoted, 1, "no grace period in these rules");
    assert!(
        january.changes[0]
            .reason
            .contains("qualifying_points 0 < 100"),
        "{}",
        january.changes[0].reason
    );
}

#[tokio::test]
async fn get_member_projects_the_member_s_pace_to_the_end_of_its_window() {
    let mut server = TestServer::start().await;
    let enrolled = server.clock.now() - TimeDelta::days(60);
    server
        .client
        .upsert_member(pb::UpsertMemberRequest {
            member_id: "pat".into(),
            enrolled_at: Some(tierd::grpc::convert::timestamp(enrolled)),
            ..Default::default()
        })
        .await
        .expect("enrolled 60 days ago");
    // 200.00 at the till: 225 points in 60 days of a 12-month window.
    server.buy("pat", "p1", 20_000).await;
    let projection = server.member("pat").await.projection.expect("a projection");
    assert_eq!(projection.qualifying_points, 225 * 365 / 60);
    assert_eq!(projection.purchase_count, 365 / 60);
    assert!(projection.keeps_tier);
    assert_eq!(projection.reaches_tier, "silver");
    assert!(
        projection
            .summary
            .ends_with("; at this pace you reach silver"),
        "{}",
        projection.summary
    );
}

/// The sweep reads the due index: it decides the members time has
/// changed (a warning before a demotion, lapsing points, days leaving the
/// window) and, after new rules go live, everyone once; the index survives
/// a restart.
#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_decides_only_the_members_something_is_due_for() {
    let mut server = TestServer::on_example_copy().await;
    server.buy("ann", "a1", 60_000).await; // silver
    let refund = server.refund("ann", "r1", "a1", 30_000);
    server.client.record_return(refund).await.expect("return"); // at risk
    server.buy("bob", "b1", 1_000).await; // bronze: nothing due for a year
    assert_eq!(server.evaluate_in_days(0).await.evaluated, 0);
    let warned = server.evaluate_in_days(24).await;
    assert_eq!(
        (warned.evaluated, warned.changes.len()),
        (1, 1),
        "ann's warning, a week before her demotion"
    );
    assert_eq!(server.evaluate_in_days(24).await.evaluated, 0);

    let mut server = server.restart().await;
    assert_eq!(server.evaluate_in_days(25).await.evaluated, 0);
    let balances =
        server.member("ann").await.points_balance + server.member("bob").await.points_balance;
    let year = server.evaluate_in_days(400).await;
    assert_eq!(
        (year.evaluated, year.demoted, year.points_expired),
        (2, 1, balances),
        "ann demoted, and both members' points lapsed"
    );
    assert_eq!(server.evaluate_in_days(400).await.evaluated, 0);

    assert!(server.relabel_rules(2).await.changed);
    assert_eq!(server.evaluate_in_days(400).await.evaluated, 2, "new rules");
    assert_eq!(server.evaluate_in_days(400).await.evaluated, 0);
}
