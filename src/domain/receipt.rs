//! What a recorded request did, kept under its transaction id: a retry is
//! answered from it (and only a retry of the very same request, by its
//! [`Fingerprint`]), and a return finds its purchase in it.
//!
//! A receipt holds facts (points, the seqs of the tier changes the request
//! caused), never text for people: a retry's answer is rendered when it is
//! given, and the changes' reasons live in the history, the audit trail.

use chrono::{DateTime, Utc};

use super::{fingerprint::Fingerprint, member::TakeBack};

/// The kinds of request that carry a transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A purchase.
    Purchase,
    /// A return of (part of) a purchase.
    Return,
    /// An activity that is not a purchase.
    Activity,
    /// A staff adjustment of points.
    Adjustment,
    /// A redemption of points.
    Redemption,
}

impl RequestKind {
    /// The kind's name, as written in fingerprints and logs.
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Purchase => "purchase",
            RequestKind::Return => "return",
            RequestKind::Activity => "activity",
            RequestKind::Adjustment => "adjustment",
            RequestKind::Redemption => "redemption",
        }
    }
}

/// The record of one transaction id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// What kind of request it was.
    pub kind: RequestKind,
    /// The member the transaction belongs to.
    pub member_id: String,
    /// Identifies the request: a retry must match it exactly.
    pub fingerprint: Fingerprint,
    /// The API key name that sent the request (audit trail).
    pub actor: String,
    /// Points earned (purchase, activity), taken back (return) or moved
    /// (adjustment, redemption), as the request kind defines.
    pub points: i64,
    /// True when a cap held an activity's points back.
    pub capped: bool,
    /// The seqs of the history entries the request caused, in order.
    pub tier_changes: Vec<u64>,
    /// Set for purchases: what returns may still take back.
    pub purchase: Option<PurchaseTrack>,
}

/// More was returned than is left of the purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("only {returnable_minor} minor units are left to return")]
pub struct ReturnTooLarge {
    /// What is still returnable, minor units.
    pub returnable_minor: i64,
}

/// What is tracked of a purchase so that returns can refer to it.
///
/// A return takes back spend and status points in proportion to what is
/// returned. Of the redeemable points it takes back only what the member
/// still has or has spent: points of the purchase that lapsed unredeemed
/// (`points_lapsed`) already left once, as breakage, and are never taken a
/// second time from the member's other points. Proportions are computed on
/// running totals, so partial returns round consistently and a full return
/// takes back exactly what was earned (less what lapsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseTrack {
    /// Amount paid, minor units.
    pub amount_minor: i64,
    /// Points the purchase earned.
    pub points: i64,
    /// When the purchase happened (its spend counts on that day).
    pub occurred_at: DateTime<Utc>,
    /// Amount returned so far, minor units.
    pub returned_minor: i64,
    /// Status points taken back so far.
    pub points_reversed: i64,
    /// Redeemable points taken back so far.
    pub redeemable_reversed: i64,
    /// Points of the purchase that expired unredeemed.
    pub points_lapsed: i64,
}

impl PurchaseTrack {
    /// A purchase of `amount_minor` that earned `points`, nothing returned.
    pub fn new(amount_minor: i64, points: i64, occurred_at: DateTime<Utc>) -> Self {
        Self {
            amount_minor,
            points,
            occurred_at,
            returned_minor: 0,
            points_reversed: 0,
            redeemable_reversed: 0,
            points_lapsed: 0,
        }
    }

    /// Spend not yet returned.
    pub fn returnable_minor(&self) -> i64 {
        self.amount_minor.saturating_sub(self.returned_minor)
    }

    /// What returning `amount_minor` more takes back.
    ///
    /// # Errors
    /// [`ReturnTooLarge`] when more is returned than is left.
    pub fn take_back(&self, amount_minor: i64) -> Result<TakeBack, ReturnTooLarge> {
        let returnable_minor = self.returnable_minor();
        if amount_minor > returnable_minor {
            return Err(ReturnTooLarge { returnable_minor });
        }
        let after = self.returned_minor.saturating_add(amount_minor);
        let qualifying = self
            .share(self.points, after)
            .saturating_sub(self.points_reversed);
        let still_held = self.points.saturating_sub(self.points_lapsed).max(0);
        let redeemable = self
            .share(still_held, after)
            .saturating_sub(self.redeemable_reversed)
            .max(0);
        Ok(TakeBack {
            amount_minor,
            qualifying_points: qualifying,
            redeemable_points: redeemable,
            fully_returned: amount_minor == returnable_minor,
        })
    }

    /// Books a return that took `back`.
    pub fn record_return(&mut self, back: &TakeBack) {
        self.returned_minor = self.returned_minor.saturating_add(back.amount_minor);
        self.points_reversed = self.points_reversed.saturating_add(back.qualifying_points);
        self.redeemable_reversed = self
            .redeemable_reversed
            .saturating_add(back.redeemable_points);
    }

    /// Books points of this purchase that lapsed unredeemed.
    pub fn record_lapse(&mut self, points: i64) {
        self.points_lapsed = self.points_lapsed.saturating_add(points);
    }

    /// `total` scaled by `returned / amount`, rounded down.
    fn share(&self, total: i64, returned: i64) -> i64 {
        let scaled =
            i128::from(total) * i128::from(returned) / i128::from(self.amount_minor.max(1));
        i64::try_from(scaled).unwrap_or(total)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn track(amount_minor: i64, points: i64) -> PurchaseTrack {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        PurchaseTrack::new(amount_minor, points, at)
    }

    fn returned(track: &mut PurchaseTrack, amount: i64) -> (i64, i64) {
        let back = track.take_back(amount).expect("returnable");
        track.record_return(&back);
        (back.qualifying_points, back.redeemable_points)
    }

    #[test]
    fn partial_returns_add_up_to_exactly_what_was_earned() {
        let mut p = track(1_000, 9);
        let taken: Vec<(i64, i64)> = [333, 333, 334].map(|a| returned(&mut p, a)).to_vec();
        assert_eq!(taken, [(2, 2), (3, 3), (4, 4)]);
        assert_eq!(
            p.take_back(1),
            Err(ReturnTooLarge {
                returnable_minor: 0
            })
        );
    }

    #[test]
    fn lapsed_points_are_never_taken_back() {
        let mut p = track(10_000, 100);
        p.record_lapse(100);
        assert_eq!(returned(&mut p, 5_000), (50, 0));
        assert_eq!(returned(&mut p, 5_000), (50, 0));
    }

    #[test]
    fn what_was_spent_before_the_rest_lapsed_is_taken_back_in_proportion() {
        // 100 earned, 30 spent, 70 lapsed: half the goods back takes 15.
        let mut p = track(10_000, 100);
        p.record_lapse(70);
        assert_eq!(returned(&mut p, 5_000), (50, 15));
        assert_eq!(returned(&mut p, 5_000), (50, 15));
    }

    #[test]
    fn a_lapse_after_a_partial_return_takes_nothing_more_than_was_held() {
        let mut p = track(10_000, 100);
        assert_eq!(returned(&mut p, 5_000), (50, 50));
        p.record_lapse(50);
        assert_eq!(returned(&mut p, 5_000), (50, 0));
    }
}
