//! Where a member is heading: at its pace over the window so far, does it
//! keep its tier at the end of the window, and does it reach the next one?
//! Pure arithmetic on the metrics; the words a till or an app shows
//! ("at this pace you keep gold; make 2 more purchases to reach
//! platinum").
//!
//! The pace is each window metric divided by the time the member has been
//! active in the window (since the window's start, or its enrolment if
//! later); the projection extends it to the window's end:
//!
//! - `calendar year`, `anniversary year`: the end of the current year, so
//!   60 points in the first quarter project 240;
//! - `rolling N months`: a rolling window never ends, so the projection is
//!   the member's first full window (a member enrolled a month ago with 50
//!   points projects 600 over 12 months); a member active for the whole
//!   window is already at its pace.
//!
//! A member active for less than [`SHORTEST_PACE`] is judged over that
//! long (one purchase on its first day is not a pace of one a day).
//! Lifetime value grows by the projected extra spend; the balance is not
//! projected (no tier reads it).

use chrono::{DateTime, Months, TimeDelta, Utc};

use super::decide::{self, Metrics, Subject};
use crate::rules::{RuleSet, Window};

/// The shortest time a pace is measured over.
pub const SHORTEST_PACE: TimeDelta = TimeDelta::days(30);

/// A member's projected standing at the end of its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    /// When the projection is for: the end of the window (see the module
    /// comment for rolling windows).
    pub horizon: DateTime<Utc>,
    /// The window metrics at the member's pace by then.
    pub projected: Metrics,
    /// Whether, at that pace, the member still meets its tier's `retain`.
    pub keeps_tier: bool,
    /// What it misses to keep it, per threshold (empty when it keeps it).
    pub to_keep: Vec<(String, i64)>,
    /// The highest tier above its own that the pace reaches, if any.
    pub reaches: Option<String>,
    /// The next tier up, when the pace does not reach it, and what it
    /// misses beyond the pace, per threshold.
    pub next_tier: Option<(String, Vec<(String, i64)>)>,
    /// All of it in words.
    pub summary: String,
}

/// The member in `tier_id` with `metrics` at `at` (enrolled at
/// `enrolled_at`), projected under `rules`. `None` for a member enrolled
/// after `at`.
pub fn project(
    rules: &RuleSet,
    tier_id: &str,
    subject: Subject<'_>,
    enrolled_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Option<Projection> {
    let window_start = decide::window_start(rules.window, at, enrolled_at);
    let active_from = window_start.max(enrolled_at);
    if active_from > at {
        return None;
    }
    let horizon = match rules.window {
        Window::RollingMonths(_) => active_from + (at - window_start),
        Window::CalendarYear | Window::AnniversaryYear => window_start
            .checked_add_months(Months::new(12))
            .unwrap_or(at),
    };
    let total = (horizon - active_from).num_seconds().max(1);
    let elapsed = (at - active_from)
        .max(SHORTEST_PACE)
        .num_seconds()
        .clamp(1, total);
    let scale = |value: i64| {
        i64::try_from(i128::from(value) * i128::from(total) / i128::from(elapsed))
            .unwrap_or(i64::MAX)
    };
    let now = subject.metrics;
    let projected = Metrics {
        qualifying_points: scale(now.qualifying_points),
        purchase_volume_minor: scale(now.purchase_volume_minor),
        purchase_count: scale(now.purchase_count),
        activity_count: scale(now.activity_count),
        lifetime_value_minor: now.lifetime_value_minor.saturating_add(
            scale(now.purchase_volume_minor).saturating_sub(now.purchase_volume_minor),
        ),
        points_balance: now.points_balance,
    };
    let then = Subject {
        metrics: &projected,
        ..subject
    };
    let (keep_words, to_keep) = decide::to_keep(rules, tier_id, then);
    let current = rules.tier_index(tier_id).unwrap_or(0);
    let reaches = rules.tiers[current + 1..]
        .iter()
        .rev()
        .find(|tier| {
            tier.qualify
                .as_ref()
                .is_some_and(|q| decide::holds(q, then))
        })
        .map(|tier| tier.id.clone());
    let next = match reaches {
        Some(_) => None,
        None => decide::next_tier(rules, tier_id, then),
    };
    let by = horizon.date_naive();
    let mut summary = match &keep_words {
        None => format!("at this pace you keep {tier_id} (by {by})"),
        Some(words) => format!("at this pace you drop below {tier_id} by {by}: {words} to keep it"),
    };
    match (&reaches, &next) {
        (Some(tier), _) => summary.push_str(&format!("; at this pace you reach {tier}")),
        (None, Some(n)) => summary.push_str(&format!("; {} to reach {}", n.summary, n.tier_id)),
        (None, None) => {}
    }
    Some(Projection {
        horizon,
        projected,
        keeps_tier: keep_words.is_none(),
        to_keep,
        reaches,
        next_tier: next.map(|n| (n.tier_id, n.shortfalls)),
        summary,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;
    use crate::{
        domain::{apply, member::MemberState},
        rules::{self, Candidate},
    };

    /// bronze; silver at 500 points, kept at 400; gold at 1500 points and
    /// 5 purchases, kept at 1200.
    fn ladder(window: &str) -> RuleSet {
        let text = format!(
            "program: p\nversion: v\ncurrency: EUR\nwindow: {window}\nearning:\n  points_per_unit: 1\n\
             tiers:\n  - id: bronze\n  - id: silver\n    qualify: {{ qualifying_points: 500 }}\n    retain: {{ qualifying_points: 400 }}\n\
             \x20 - id: gold\n    qualify: {{ all: [ {{ qualifying_points: 1500 }}, {{ purchase_count: 5 }} ] }}\n    retain: {{ qualifying_points: 1200 }}\n"
        );
        rules::load(&Candidate::new("p.yaml", text.as_str())).expect("valid rules")
    }

    fn on(month: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, 0, 0, 0)
            .single()
            .expect("date")
    }

    /// A member in `tier`, enrolled on 1 January 2026, who made the given
    /// purchases (day, euros).
    fn member(tier: &str, purchases: &[(DateTime<Utc>, i64)]) -> MemberState {
        let mut m = MemberState::new("m", "bronze", on(1, 1));
        for (i, (at, euros)) in purchases.iter().enumerate() {
            m.record_purchase(&format!("p{i}"), euros * 100, *euros, *at, None);
        }
        m.tier.tier_id = tier.into();
        m
    }

    fn projection(rules: &RuleSet, m: &MemberState, at: DateTime<Utc>) -> Projection {
        let metrics = apply::metrics(rules, m, at);
        let attributes = BTreeMap::new();
        let subject = Subject {
            metrics: &metrics,
            attributes: &attributes,
            lifecycle: None,
        };
        project(rules, &m.tier.tier_id, subject, m.enrolled_at, at).expect("a projection")
    }

    #[test]
    fn a_quarter_s_pace_is_carried_to_the_end_of_the_calendar_year() {
        let rules = ladder("calendar year");
        // 600 points in the first quarter (90 days of 365): 2433 by the
        // year's end, and 4 purchases project 16.
        let m = member(
            "silver",
            &[
                (on(1, 10), 150),
                (on(2, 1), 150),
                (on(3, 1), 150),
                (on(3, 20), 150),
            ],
        );
        let p = projection(&rules, &m, on(4, 1));
        assert_eq!(
            p.horizon,
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                .single()
                .expect("date")
        );
        assert_eq!(
            (p.projected.qualifying_points, p.projected.purchase_count),
            (2433, 16)
        );
        assert!(p.keeps_tier);
        assert_eq!(p.reaches.as_deref(), Some("gold"));
        assert_eq!(
            p.summary,
            "at this pace you keep silver (by 2027-01-01); at this pace you reach gold"
        );
    }

    #[test]
    fn a_slow_pace_says_what_it_takes_to_keep_the_tier_and_reach_the_next() {
        let rules = ladder("calendar year");
        // 100 points by 1 July (181 days): 201 by the year's end.
        let m = member("silver", &[(on(6, 1), 100)]);
        let p = projection(&rules, &m, on(7, 1));
        assert!(!p.keeps_tier);
        assert_eq!(p.to_keep, [("qualifying_points".to_owned(), 199)]);
        assert_eq!(p.reaches, None);
        assert_eq!(
            p.next_tier,
            Some((
                "gold".to_owned(),
                vec![
                    ("qualifying_points".to_owned(), 1299),
                    ("purchase_count".to_owned(), 3)
                ]
            ))
        );
        assert!(
            p.summary.starts_with(
                "at this pace you drop below silver by 2027-01-01: earn 199 more points to keep it; "
            ),
            "{}",
            p.summary
        );
        assert!(p.summary.ends_with(" to reach gold"), "{}", p.summary);
    }

    #[test]
    fn a_rolling_window_projects_a_new_member_over_its_first_full_window() {
        let rules = ladder("rolling 12 months");
        let mut m = member("bronze", &[(on(3, 2), 60)]);
        m.enrolled_at = on(3, 1);
        // One month (31 days) active, 60 points: 365/31 times that over
        // the first full window, which ends a year after enrolment.
        let p = projection(&rules, &m, on(4, 1));
        assert_eq!(
            p.horizon,
            Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0)
                .single()
                .expect("date")
        );
        assert_eq!(p.projected.qualifying_points, 706);
        assert_eq!(p.reaches.as_deref(), Some("silver"));
        // A member active for the whole window is at its pace already.
        let mut old = member("silver", &[(on(2, 1), 450)]);
        old.enrolled_at = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .expect("date");
        let p = projection(&rules, &old, on(12, 1));
        assert_eq!((p.horizon, p.projected.qualifying_points), (on(12, 1), 450));
        assert!(p.keeps_tier);
    }
}
