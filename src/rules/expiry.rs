//! When earned points lapse: a number of months or days after they were
//! earned, optionally held until the end of that quarter or year, as the
//! commercial engines offer it.
//!
//! ```yaml
//! points_expiry:
//!   months: 12              # or days: 90
//!   until_end_of: year      # optional: quarter or year
//! ```
//!
//! `months: 12, until_end_of: year`: points earned on 2026-02-10 lapse at
//! the end of 2027 (the first instant of 2028-01-01).

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;

use super::{Problem, values::Count};

/// When points lapse after they are earned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// How long after earning.
    pub after: Lifetime,
    /// Held until the end of this calendar period, if given.
    pub until_end_of: Option<CalendarPeriod>,
}

/// How long points live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Calendar months (1 to 120).
    Months(u32),
    /// Days (1 to 3650).
    Days(u32),
}

/// A calendar period points may be held to the end of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalendarPeriod {
    /// January-March, April-June, July-September, October-December.
    Quarter,
    /// The calendar year.
    Year,
}

impl Expiry {
    /// The instant points earned at `earned_at` lapse (they are spendable
    /// until just before it); `None` when the date is out of range.
    pub fn lapse_at(self, earned_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let lived = match self.after {
            Lifetime::Months(m) => earned_at.checked_add_months(Months::new(m))?,
            Lifetime::Days(d) => earned_at.checked_add_signed(TimeDelta::days(i64::from(d)))?,
        };
        let Some(period) = self.until_end_of else {
            return Some(lived);
        };
        let day = lived.date_naive();
        let next_start = match period {
            CalendarPeriod::Quarter => {
                let first_month = (day.month0() / 3) * 3 + 1;
                NaiveDate::from_ymd_opt(day.year(), first_month, 1)?
                    .checked_add_months(Months::new(3))?
            }
            CalendarPeriod::Year => NaiveDate::from_ymd_opt(day.year().checked_add(1)?, 1, 1)?,
        };
        Some(next_start.and_hms_opt(0, 0, 0)?.and_utc())
    }
}

/// `points_expiry` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpiryFile {
    #[serde(default)]
    months: Option<Count>,
    #[serde(default)]
    days: Option<Count>,
    #[serde(default)]
    until_end_of: Option<CalendarPeriod>,
}

/// Checks the lifetime is one of months or days, within range.
pub(super) fn compile(raw: Option<ExpiryFile>, problems: &mut Vec<Problem>) -> Option<Expiry> {
    let raw = raw?;
    let within = |n: Count, max: i64| {
        u32::try_from(n.0)
            .ok()
            .filter(|n| (1..=max).contains(&i64::from(*n)))
    };
    let after = match (raw.months, raw.days) {
        (Some(m), None) => within(m, 120).map(Lifetime::Months).or_else(|| {
            problems.push(Problem::at(
                "months:",
                0,
                "points expire after 1 to 120 months",
            ));
            None
        }),
        (None, Some(d)) => within(d, 3650).map(Lifetime::Days).or_else(|| {
            problems.push(Problem::at(
                "days:",
                0,
                "points expire after 1 to 3650 days",
            ));
            None
        }),
        (Some(_), Some(_)) => {
            problems.push(Problem::at(
                "points_expiry:",
                0,
                "points_expiry takes `months` or `days`, not both",
            ));
            None
        }
        (None, None) => {
            problems.push(Problem::at(
                "points_expiry:",
                0,
                "points_expiry needs `months` or `days` (leave the section out for points that never expire)",
            ));
            None
        }
    }?;
    Some(Expiry {
        after,
        until_end_of: raw.until_end_of,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0)
            .single()
            .expect("valid")
    }

    fn midnight(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn points_lapse_after_months_or_days_or_at_the_end_of_a_period() {
        let expiry = |after, until_end_of| Expiry {
            after,
            until_end_of,
        };
        let earned = at(2026, 2, 10);
        assert_eq!(
            expiry(Lifetime::Months(12), None).lapse_at(earned),
            Some(at(2027, 2, 10))
        );
        assert_eq!(
            expiry(Lifetime::Days(90), None).lapse_at(earned),
            Some(at(2026, 5, 11))
        );
        assert_eq!(
            expiry(Lifetime::Months(12), Some(CalendarPeriod::Year)).lapse_at(earned),
            Some(midnight(2028, 1, 1))
        );
        assert_eq!(
            expiry(Lifetime::Months(3), Some(CalendarPeriod::Quarter)).lapse_at(earned),
            Some(midnight(2026, 7, 1))
        );
        assert_eq!(
            expiry(Lifetime::Days(1), Some(CalendarPeriod::Quarter)).lapse_at(at(2026, 12, 30)),
            Some(midnight(2027, 1, 1))
        );
    }
}
