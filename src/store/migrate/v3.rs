//! What changed in data format 4, frozen as format 3 wrote it: a day's
//! totals had five fields. Every other record kept its layout; only the
//! record encoding byte moved (2 -> 3). Only the migration reads these.
//!
//! A member of format 3 is `MemberRecord<Day>`; if the member record
//! itself changes in a later format, its format-3 shape is frozen here
//! whole.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::member::DayTotals;

/// The record encoding byte of format 3.
pub const RECORD_ENCODING: u8 = 2;

/// A day's totals in format 3.
#[derive(Deserialize)]
pub struct Day {
    spend_minor: i64,
    purchases: i64,
    qualifying_points: i64,
    activities: i64,
    activity_kinds: BTreeMap<String, i64>,
}

/// Format 3 netted a return on its purchase's day and kept no points per
/// day, so a migrated day reads its net spend as what was purchased that
/// day, with no refunds and no point movements: reports over days before
/// the upgrade see net spend, and no redemptions or lapses.
impl From<Day> for DayTotals {
    fn from(day: Day) -> Self {
        DayTotals {
            spend_minor: day.spend_minor,
            purchases: day.purchases,
            qualifying_points: day.qualifying_points,
            activities: day.activities,
            activity_kinds: day.activity_kinds,
            purchased_minor: day.spend_minor,
            ..DayTotals::default()
        }
    }
}
