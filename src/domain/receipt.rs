//! What a recorded request did, kept under its transaction id: a retry is
//! answered from it (and only a retry of the very same request, by its
//! [`Fingerprint`]), and a return finds its purchase in it.
//!
//! A receipt holds facts (points, the seqs of the tier changes the request
//! caused), never text for people: a retry's answer is rendered when it is
//! given, and the changes' reasons live in the history, the audit trail.

use chrono::{DateTime, Utc};

use super::{
    fingerprint::Fingerprint,
    member::{LineBack, Qualified, TakeBack},
    share,
};
use crate::rules::Minimum;

/// The kinds of request that carry a transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// A manual tier placement (or its clearing) by customer service.
    Override,
    /// An account closed by customer service.
    Close,
    /// A closed account reopened.
    Reopen,
    /// A member merged into another (the receipt is the target's).
    Merge,
    /// A member's identifying data erased (the receipt is the
    /// pseudonym's).
    Erase,
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
            RequestKind::Override => "override",
            RequestKind::Close => "close",
            RequestKind::Reopen => "reopen",
            RequestKind::Merge => "merge",
            RequestKind::Erase => "erase",
        }
    }

    /// Whether a closed account refuses requests of this kind: everything
    /// that earns, redeems or places, not a return (the money goes back
    /// whatever the account's state) nor the account's own changes.
    pub fn needs_open_account(self) -> bool {
        !matches!(
            self,
            RequestKind::Return
                | RequestKind::Close
                | RequestKind::Reopen
                | RequestKind::Merge
                | RequestKind::Erase
        )
    }
}

/// The record of one transaction id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    /// For a return: the money it refunded, minor units (0 otherwise).
    pub refunded_minor: i64,
    /// For a return: redeemed points it gave back (0 otherwise).
    pub points_recredited: i64,
}

impl Receipt {
    /// The receipt of a purchase booked outside the service (a rules test's
    /// story, a seeded store): no request to fingerprint, no tier change
    /// numbered, never capped (caps are for activities).
    pub fn of_booked_purchase(member_id: &str, actor: &str, track: PurchaseTrack) -> Self {
        Self {
            kind: RequestKind::Purchase,
            member_id: member_id.to_owned(),
            fingerprint: Fingerprint([0; 32]),
            actor: actor.to_owned(),
            points: track.points,
            capped: false,
            tier_changes: Vec::new(),
            purchase: Some(track),
            refunded_minor: 0,
            points_recredited: 0,
        }
    }
}

/// Why a return was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnRefused {
    /// More was returned than is left of the purchase.
    #[error("only {returnable_minor} minor units are left to return")]
    TooLarge {
        /// What is still returnable, minor units.
        returnable_minor: i64,
    },
    /// The return named lines, but the purchase was recorded as a sum.
    #[error("the purchase was recorded without lines: return it by amount_minor")]
    NoLines,
    /// A named SKU is not in the purchase.
    #[error("lines[{index}].sku: {sku:?} is not in the purchase")]
    UnknownSku {
        /// The line of the return.
        index: usize,
        /// Its SKU.
        sku: String,
    },
    /// More units or money of a SKU than is left of it.
    #[error("lines[{index}].{field}: only {left} of {sku:?} are left to return")]
    LineTooLarge {
        /// The line of the return.
        index: usize,
        /// `quantity` or `amount_minor`.
        field: &'static str,
        /// Its SKU.
        sku: String,
        /// What is left of the SKU, in that field's unit.
        left: i64,
    },
    /// The return's amount differs from what its lines come to.
    #[error("amount_minor: {sent} differs from the {lines_total} the named lines come to")]
    AmountMismatch {
        /// The amount sent.
        sent: i64,
        /// What the lines come to.
        lines_total: i64,
    },
}

/// How much of a SKU a return line gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineSize {
    /// Units (their money is the line's, in proportion; the last unit
    /// takes what is left).
    Units(i64),
    /// An amount of money, minor units (a price correction, a partial
    /// refund of the line).
    Amount(i64),
}

/// One line of a return: a SKU of the purchase and how much of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnLine {
    /// The SKU returned; taken from the purchase's lines of that SKU in
    /// basket order.
    pub sku: String,
    /// How much of it.
    pub size: LineSize,
}

/// What a return gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned<'a> {
    /// An amount, taken from the purchase in proportion (from each line in
    /// proportion to what is left of it).
    Amount(i64),
    /// Named lines; `amount_minor`, when sent, must be what they come to.
    Lines {
        /// The lines returned.
        lines: &'a [ReturnLine],
        /// The refund the till sent, if it sent one.
        amount_minor: Option<i64>,
    },
}

/// One line of a purchase, as returns need it: what it cost and earned,
/// and what of it came back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineTrack {
    /// The SKU.
    pub sku: String,
    /// Units bought.
    pub quantity: i64,
    /// Paid for the line, minor units.
    pub amount_minor: i64,
    /// The line's part of the purchase's points.
    pub points: i64,
    /// Units returned so far.
    pub returned_quantity: i64,
    /// Money returned so far, minor units.
    pub returned_minor: i64,
    /// Status points taken back so far.
    pub points_reversed: i64,
    /// Whether the line counted toward the tier when it was bought (the
    /// rules' `qualifying` basis then): its returns take back as much.
    pub qualifies: bool,
}

impl LineTrack {
    /// A line that earned `points` and counts toward the tier, nothing
    /// returned.
    pub fn new(sku: &str, quantity: i64, amount_minor: i64, points: i64) -> Self {
        Self {
            sku: sku.to_owned(),
            quantity,
            amount_minor,
            points,
            returned_quantity: 0,
            returned_minor: 0,
            points_reversed: 0,
            qualifies: true,
        }
    }

    fn units_left(&self) -> i64 {
        self.quantity.saturating_sub(self.returned_quantity)
    }

    fn money_left(&self) -> i64 {
        self.amount_minor.saturating_sub(self.returned_minor)
    }

    /// Returns `units`, with their money in proportion (the last unit
    /// takes what is left).
    fn take_units(&mut self, units: i64) {
        let after = self.returned_quantity.saturating_add(units);
        let money = if after >= self.quantity {
            self.money_left()
        } else {
            share::share(self.amount_minor, after, self.quantity)
                .saturating_sub(share::share(
                    self.amount_minor,
                    self.returned_quantity,
                    self.quantity,
                ))
                .min(self.money_left())
        };
        self.returned_quantity = after;
        self.returned_minor = self.returned_minor.saturating_add(money);
    }

    /// Returns `money` of the line; when none is left, its units are all
    /// back too.
    fn take_money(&mut self, money: i64) {
        self.returned_minor = self.returned_minor.saturating_add(money);
        if self.money_left() == 0 && self.amount_minor > 0 {
            self.returned_quantity = self.quantity;
        }
    }

    /// `points` of the line in proportion to its money back (to its units
    /// back, for a line that cost nothing).
    fn returned_share(&self, points: i64) -> i64 {
        if self.amount_minor > 0 {
            share::share(points, self.returned_minor, self.amount_minor)
        } else {
            share::share(points, self.returned_quantity, self.quantity)
        }
    }
}

/// What is tracked of a purchase so that returns can refer to it.
///
/// A return takes back spend and status points in proportion to what is
/// returned: of the whole purchase, or line by line when the purchase
/// came with a basket (each line's points in proportion to what of it
/// came back, so returning the gift card takes back nothing and the
/// double-points coffee its double points). Of the redeemable points it
/// takes back the same share of what the member still has or has spent:
/// points of the purchase that lapsed unredeemed (`points_lapsed`) already
/// left once, as breakage, and are never taken a second time from the
/// member's other points. Proportions are computed on running totals, so
/// partial returns round consistently and a full return takes back exactly
/// what was earned (less what lapsed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PurchaseTrack {
    /// Amount paid, minor units.
    pub amount_minor: i64,
    /// Points the purchase earned.
    pub points: i64,
    /// When the purchase happened (its spend counts on that day).
    pub occurred_at: DateTime<Utc>,
    /// Amount returned so far, minor units.
    pub returned_minor: i64,
    /// Points taken back so far (status points, of the lines that
    /// count toward the tier).
    pub points_reversed: i64,
    /// Redeemable points taken back so far.
    pub redeemable_reversed: i64,
    /// Points of the purchase that expired unredeemed.
    pub points_lapsed: i64,
    /// The basket's lines; empty for a purchase sent as a sum.
    pub lines: Vec<LineTrack>,
    /// What line rules with a minimum paid (part of the lines' points).
    pub minimums: Vec<MinimumTrack>,
}

/// What a line rule with a minimum paid the lines it matched. While what
/// is left of those lines meets the minimum, a return takes its points
/// back in proportion, as any line's; once a return takes them below it,
/// the rest of what the rule paid goes back with that return.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MinimumTrack {
    /// The rule's minimum, as it was when the purchase earned.
    pub minimum: Minimum,
    /// Every line the rule matched, with what the rule paid it.
    pub lines: Vec<MinimumLine>,
}

/// One line a rule with a minimum matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MinimumLine {
    /// The line's index in the basket.
    pub index: usize,
    /// The points the rule paid it.
    pub points: i64,
}

impl MinimumTrack {
    /// Whether what is left of its lines, as `lines` stand, meets the
    /// minimum.
    fn holds(&self, lines: &[LineTrack]) -> bool {
        let left = self.lines.iter().filter_map(|l| lines.get(l.index));
        let quantity = total(left.clone().map(LineTrack::units_left));
        let amount = total(left.map(LineTrack::money_left));
        self.minimum.met_by(quantity, amount)
    }
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
            lines: Vec::new(),
            minimums: Vec::new(),
        }
    }

    /// Spend not yet returned.
    pub fn returnable_minor(&self) -> i64 {
        self.amount_minor.saturating_sub(self.returned_minor)
    }

    /// What returning `what` takes back.
    ///
    /// # Errors
    /// [`ReturnRefused`] saying what does not fit the purchase.
    pub fn take_back(&self, what: Returned<'_>) -> Result<TakeBack, ReturnRefused> {
        let returnable_minor = self.returnable_minor();
        let (amount_minor, points, lines) = if self.lines.is_empty() {
            let Returned::Amount(amount) = what else {
                return Err(ReturnRefused::NoLines);
            };
            let after = self.returned_minor.saturating_add(amount);
            let due = share::share(self.points, after, self.amount_minor);
            (amount, due.saturating_sub(self.points_reversed), Vec::new())
        } else {
            let after = self.lines_after(what)?;
            let lines = self.line_backs(after);
            let amount = total(lines.iter().map(|l| l.amount_minor));
            let points = total(lines.iter().map(|l| l.points));
            (amount, points, lines)
        };
        if amount_minor > returnable_minor {
            return Err(ReturnRefused::TooLarge { returnable_minor });
        }
        let (qualifying_minor, qualifying_points) = if self.lines.is_empty() {
            (amount_minor, points)
        } else {
            let qualifying = || {
                lines
                    .iter()
                    .filter(|back| self.lines.get(back.index).is_some_and(|l| l.qualifies))
            };
            (
                total(qualifying().map(|l| l.amount_minor)),
                total(qualifying().map(|l| l.points)),
            )
        };
        let reversed_after = self.points_reversed.saturating_add(points);
        let still_held = self.points.saturating_sub(self.points_lapsed).max(0);
        let redeemable = share::share(still_held, reversed_after, self.points)
            .saturating_sub(self.redeemable_reversed)
            .max(0);
        let emptied = returnable_minor > 0 && amount_minor == returnable_minor;
        Ok(TakeBack {
            amount_minor,
            qualifying_minor,
            points,
            qualifying_points,
            redeemable_points: redeemable,
            fully_returned: emptied && self.counts(),
            lines,
        })
    }

    /// Whether the purchase counted as one toward the tier: sent as a sum,
    /// or with a line that counts.
    fn counts(&self) -> bool {
        self.lines.is_empty() || self.lines.iter().any(|l| l.qualifies)
    }

    /// What of the purchase counts toward the tier: all of a purchase sent
    /// as a sum; else the money and points of its lines that count.
    pub fn qualified(&self) -> Qualified {
        if self.lines.is_empty() {
            return Qualified {
                amount_minor: self.amount_minor,
                points: self.points,
                counts: true,
            };
        }
        let counting = || self.lines.iter().filter(|line| line.qualifies);
        Qualified {
            amount_minor: total(counting().map(|l| l.amount_minor)),
            points: total(counting().map(|l| l.points)),
            counts: self.counts(),
        }
    }

    /// The lines as they would be after returning `what`.
    fn lines_after(&self, what: Returned<'_>) -> Result<Vec<LineTrack>, ReturnRefused> {
        let mut lines = self.lines.clone();
        match what {
            Returned::Amount(amount) if amount >= self.returnable_minor() => {
                for line in &mut lines {
                    line.take_units(line.units_left());
                }
            }
            Returned::Amount(amount) => {
                let left: Vec<i64> = lines.iter().map(LineTrack::money_left).collect();
                for (line, money) in lines.iter_mut().zip(share::split(amount, &left)) {
                    line.take_money(money);
                }
            }
            Returned::Lines {
                lines: returned,
                amount_minor,
            } => {
                for (index, back) in returned.iter().enumerate() {
                    take_line(&mut lines, index, back)?;
                }
                let lines_total = total(lines.iter().map(|l| l.returned_minor))
                    .saturating_sub(total(self.lines.iter().map(|l| l.returned_minor)));
                if let Some(sent) = amount_minor.filter(|sent| *sent != lines_total) {
                    return Err(ReturnRefused::AmountMismatch { sent, lines_total });
                }
            }
        }
        Ok(lines)
    }

    /// Books a return that took `back`.
    pub fn record_return(&mut self, back: &TakeBack) {
        self.returned_minor = self.returned_minor.saturating_add(back.amount_minor);
        self.points_reversed = self.points_reversed.saturating_add(back.points);
        self.redeemable_reversed = self
            .redeemable_reversed
            .saturating_add(back.redeemable_points);
        for line_back in &back.lines {
            if let Some(line) = self.lines.get_mut(line_back.index) {
                line.returned_quantity = line.returned_quantity.saturating_add(line_back.quantity);
                line.returned_minor = line.returned_minor.saturating_add(line_back.amount_minor);
                line.points_reversed = line.points_reversed.saturating_add(line_back.points);
            }
        }
    }

    /// Books points of this purchase that lapsed unredeemed.
    pub fn record_lapse(&mut self, points: i64) {
        self.points_lapsed = self.points_lapsed.saturating_add(points);
    }
}

/// Takes the `index`-th return line from the purchase's lines of its SKU,
/// in basket order.
fn take_line(
    lines: &mut [LineTrack],
    index: usize,
    back: &ReturnLine,
) -> Result<(), ReturnRefused> {
    let of_sku = || lines.iter().filter(|l| l.sku == back.sku);
    if of_sku().next().is_none() {
        return Err(ReturnRefused::UnknownSku {
            index,
            sku: back.sku.clone(),
        });
    }
    let (field, left, mut wanted) = match back.size {
        LineSize::Units(units) => (
            "quantity",
            total(of_sku().map(LineTrack::units_left)),
            units,
        ),
        LineSize::Amount(money) => (
            "amount_minor",
            total(of_sku().map(LineTrack::money_left)),
            money,
        ),
    };
    if wanted > left {
        return Err(ReturnRefused::LineTooLarge {
            index,
            field,
            sku: back.sku.clone(),
            left,
        });
    }
    for line in lines.iter_mut().filter(|l| l.sku == back.sku) {
        match back.size {
            LineSize::Units(_) => {
                let units = wanted.min(line.units_left());
                line.take_units(units);
                wanted -= units;
            }
            LineSize::Amount(_) => {
                let money = wanted.min(line.money_left());
                line.take_money(money);
                wanted -= money;
            }
        }
    }
    Ok(())
}

/// Points redeemed against one order (`RedeemPoints` naming an
/// `order_id`), and what of them the order's returns gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrderRedemptions {
    /// Points redeemed against the order, all redemptions together.
    pub redeemed: i64,
    /// Points given back so far by returns of the order.
    pub recredited: i64,
}

impl OrderRedemptions {
    /// Both sums, with `other`'s added (the same order's redemptions under
    /// two members that merge).
    pub fn add(&mut self, other: OrderRedemptions) {
        self.redeemed = self.redeemed.saturating_add(other.redeemed);
        self.recredited = self.recredited.saturating_add(other.recredited);
    }

    /// What a return gives back, `track` being the order's purchase after
    /// it: the redeemed points in proportion to the money returned so far,
    /// less what earlier returns gave back. On running totals, so a full
    /// return gives back exactly what was redeemed.
    pub fn due_after(&self, track: &PurchaseTrack) -> i64 {
        share::share(self.redeemed, track.returned_minor, track.amount_minor)
            .saturating_sub(self.recredited)
            .max(0)
    }
}

/// The sum of `values`, saturating.
fn total(values: impl Iterator<Item = i64>) -> i64 {
    values.fold(0_i64, i64::saturating_add)
}

impl PurchaseTrack {
    /// What each line gives back, going from its lines now to `after`:
    /// the lines returned, and lines a broken minimum takes points from.
    fn line_backs(&self, after: Vec<LineTrack>) -> Vec<LineBack> {
        let due: Vec<i64> = (0..after.len())
            .map(|index| self.points_due(&after, index))
            .collect();
        self.lines
            .iter()
            .zip(after)
            .zip(due)
            .enumerate()
            .filter(|(_, ((old, new), due))| *old != new || *due != old.points_reversed)
            .map(|(index, ((old, new), due))| LineBack {
                index,
                quantity: new.returned_quantity.saturating_sub(old.returned_quantity),
                amount_minor: new.returned_minor.saturating_sub(old.returned_minor),
                points: due.saturating_sub(old.points_reversed),
            })
            .collect()
    }

    /// Status points line `index` owes back in all once the lines stand as
    /// `lines`: its points in proportion to what of it came back, except
    /// what a rule whose minimum no longer holds paid it, which is owed
    /// whole.
    fn points_due(&self, lines: &[LineTrack], index: usize) -> i64 {
        let Some(line) = lines.get(index) else {
            return 0;
        };
        let mut due = 0_i64;
        let mut held = 0_i64;
        for minimum in &self.minimums {
            let broken = !minimum.holds(lines);
            for paid in minimum.lines.iter().filter(|l| l.index == index) {
                held = held.saturating_add(paid.points);
                let owed = if broken {
                    paid.points
                } else {
                    line.returned_share(paid.points)
                };
                due = due.saturating_add(owed);
            }
        }
        due.saturating_add(line.returned_share(line.points.saturating_sub(held)))
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
        let back = track
            .take_back(Returned::Amount(amount))
            .expect("returnable");
        track.record_return(&back);
        (back.qualifying_points, back.redeemable_points)
    }

    #[test]
    fn partial_returns_add_up_to_exactly_what_was_earned() {
        let mut p = track(1_000, 9);
        let taken: Vec<(i64, i64)> = [333, 333, 334].map(|a| returned(&mut p, a)).to_vec();
        assert_eq!(taken, [(2, 2), (3, 3), (4, 4)]);
        assert_eq!(
            p.take_back(Returned::Amount(1)),
            Err(ReturnRefused::TooLarge {
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

    /// Coffee 2 x 5.00 earning 40, a gift card 50.00 earning nothing, beans
    /// 3 x 10.00 earning 60.
    fn basket() -> PurchaseTrack {
        PurchaseTrack {
            lines: vec![
                LineTrack::new("coffee", 2, 1_000, 40),
                LineTrack::new("gift-card", 1, 5_000, 0),
                LineTrack::new("beans", 3, 3_000, 60),
            ],
            ..track(9_000, 100)
        }
    }

    fn units(sku: &str, units: i64) -> ReturnLine {
        ReturnLine {
            sku: sku.into(),
            size: LineSize::Units(units),
        }
    }

    fn lines_back(track: &mut PurchaseTrack, lines: &[ReturnLine]) -> (i64, i64) {
        let back = track
            .take_back(Returned::Lines {
                lines,
                amount_minor: None,
            })
            .expect("returnable");
        track.record_return(&back);
        (back.amount_minor, back.qualifying_points)
    }

    #[test]
    fn a_returned_line_takes_back_exactly_what_it_earned() {
        let mut p = basket();
        assert_eq!(lines_back(&mut p, &[units("gift-card", 1)]), (5_000, 0));
        assert_eq!(lines_back(&mut p, &[units("coffee", 1)]), (500, 20));
        let money = ReturnLine {
            sku: "beans".into(),
            size: LineSize::Amount(1_000),
        };
        assert_eq!(lines_back(&mut p, &[money]), (1_000, 20));
        // The rest by amount: what is left of each line, all its points.
        let rest = p.take_back(Returned::Amount(2_500)).expect("returnable");
        assert_eq!((rest.qualifying_points, rest.fully_returned), (60, true));
        p.record_return(&rest);
        assert_eq!((p.points_reversed, p.redeemable_reversed), (100, 100));
        assert!(p.lines.iter().all(|l| l.returned_quantity == l.quantity));
    }

    /// A basket whose coffee earned under a rule with a minimum: 4 bags
    /// for 40.00, `amount` 30.00 at 2 per 1.00 (80 points, all the rule's),
    /// and tea for 10.00 (10 points of another rule).
    fn coffee_over_a_minimum() -> PurchaseTrack {
        PurchaseTrack {
            lines: vec![
                LineTrack::new("coffee", 4, 4_000, 80),
                LineTrack::new("tea", 1, 1_000, 10),
            ],
            minimums: vec![minimum(0, 3_000, &[(0, 80)])],
            ..track(5_000, 90)
        }
    }

    /// A rule's minimum of `quantity` units and `amount_minor`, which paid
    /// `paid` (line index, points).
    fn minimum(quantity: i64, amount_minor: i64, paid: &[(usize, i64)]) -> MinimumTrack {
        MinimumTrack {
            minimum: Minimum {
                quantity,
                amount_minor,
            },
            lines: paid
                .iter()
                .map(|&(index, points)| MinimumLine { index, points })
                .collect(),
        }
    }

    #[test]
    fn below_its_minimum_a_rule_takes_back_all_it_paid() {
        let mut p = coffee_over_a_minimum();
        // 30.00 of coffee left: the minimum holds, the bag takes its share.
        assert_eq!(lines_back(&mut p, &[units("coffee", 1)]), (1_000, 20));
        // 20.00 left: below it, the rest of the rule's 80 goes back.
        assert_eq!(lines_back(&mut p, &[units("coffee", 1)]), (1_000, 60));
        assert_eq!(lines_back(&mut p, &[units("coffee", 2)]), (2_000, 0));
        assert_eq!(lines_back(&mut p, &[units("tea", 1)]), (1_000, 10));
        assert_eq!(p.points_reversed, 90, "exactly what was earned");
    }

    #[test]
    fn a_line_returned_below_the_minimum_takes_back_what_the_rule_paid_another() {
        // "Buy 3 coffees, get 50": the bonus went to the first line, the
        // second counted toward the 3.
        let mut p = PurchaseTrack {
            lines: vec![
                LineTrack::new("arabica", 2, 2_000, 50),
                LineTrack::new("robusta", 1, 1_000, 0),
            ],
            minimums: vec![minimum(3, 0, &[(0, 50), (1, 0)])],
            ..track(3_000, 50)
        };
        let back = p
            .take_back(Returned::Lines {
                lines: &[units("robusta", 1)],
                amount_minor: None,
            })
            .expect("returnable");
        assert_eq!(back.qualifying_points, 50);
        let moved: Vec<(usize, i64, i64)> = back
            .lines
            .iter()
            .map(|l| (l.index, l.quantity, l.points))
            .collect();
        assert_eq!(
            moved,
            [(0, 0, 50), (1, 1, 0)],
            "the kept line gives back the bonus"
        );
        p.record_return(&back);
        assert_eq!(lines_back(&mut p, &[units("arabica", 2)]), (2_000, 0));
    }

    #[test]
    fn units_share_their_line_s_money_and_the_last_takes_the_rest() {
        let mut p = PurchaseTrack {
            lines: vec![LineTrack::new("tea", 3, 1_000, 10)],
            ..track(1_000, 10)
        };
        let taken: Vec<(i64, i64)> = (0..3)
            .map(|_| lines_back(&mut p, &[units("tea", 1)]))
            .collect();
        assert_eq!(taken, [(333, 3), (333, 3), (334, 4)]);
    }

    #[test]
    fn an_amount_return_of_a_basket_comes_from_every_line_in_proportion() {
        let mut p = basket();
        let back = p.take_back(Returned::Amount(4_500)).expect("returnable");
        // Half of each line: 20 + 0 + 30.
        assert_eq!(back.qualifying_points, 50);
        p.record_return(&back);
        assert_eq!(p.lines[0].returned_minor, 500);
    }

    #[test]
    fn a_return_that_does_not_fit_the_basket_says_why() {
        let p = basket();
        let refused = |lines: &[ReturnLine], amount_minor| {
            p.take_back(Returned::Lines {
                lines,
                amount_minor,
            })
            .expect_err("refused")
        };
        assert_eq!(
            refused(&[units("tea", 1)], None),
            ReturnRefused::UnknownSku {
                index: 0,
                sku: "tea".into()
            }
        );
        assert_eq!(
            refused(&[units("coffee", 1), units("coffee", 2)], None).to_string(),
            "lines[1].quantity: only 1 of \"coffee\" are left to return"
        );
        assert_eq!(
            refused(&[units("coffee", 2)], Some(999)),
            ReturnRefused::AmountMismatch {
                sent: 999,
                lines_total: 1_000
            }
        );
        assert_eq!(
            track(1_000, 10).take_back(Returned::Lines {
                lines: &[units("coffee", 1)],
                amount_minor: None
            }),
            Err(ReturnRefused::NoLines)
        );
    }

    #[test]
    fn an_order_s_redeemed_points_come_back_in_proportion_and_only_once() {
        let mut order = OrderRedemptions {
            redeemed: 300,
            recredited: 0,
        };
        let mut p = track(10_000, 100);
        let mut give_back = |p: &mut PurchaseTrack, amount| {
            let back = p.take_back(Returned::Amount(amount)).expect("returnable");
            p.record_return(&back);
            let due = order.due_after(p);
            order.recredited += due;
            due
        };
        assert_eq!(give_back(&mut p, 3_333), 99);
        assert_eq!(give_back(&mut p, 3_333), 100);
        assert_eq!(give_back(&mut p, 3_334), 101);
        assert_eq!(order.recredited, 300);
    }

    /// A basket of up to four lines (SKUs `l0`...), what each earned, and
    /// up to two rules with a minimum over some of them, each having paid
    /// a part of its lines' points.
    fn basket_with_minimums() -> impl proptest::strategy::Strategy<Value = PurchaseTrack> {
        use proptest::prelude::*;
        let line = (1_i64..5, 0_i64..10_000, 0_i64..1_000);
        let rule = (
            proptest::collection::vec(any::<bool>(), 4),
            0_i64..6,
            0_i64..20_000,
            proptest::collection::vec(0_i64..=100, 4),
        );
        (
            proptest::collection::vec(line, 1..=4),
            proptest::collection::vec(rule, 0..=2),
        )
            .prop_map(|(lines, rules)| {
                let lines: Vec<LineTrack> = lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, (quantity, amount, points))| {
                        LineTrack::new(&format!("l{i}"), quantity, amount, points)
                    })
                    .collect();
                // Each rule pays a percentage of each line it matches, and
                // no line more than it earned, all rules together.
                let mut left: Vec<i64> = lines.iter().map(|l| l.points).collect();
                let minimums = rules
                    .into_iter()
                    .map(|(matched, quantity, amount, percent)| {
                        let paid: Vec<(usize, i64)> = (0..lines.len())
                            .filter(|&i| matched[i])
                            .map(|i| {
                                let points = left[i] * percent[i] / 100;
                                left[i] -= points;
                                (i, points)
                            })
                            .collect();
                        minimum(quantity, amount, &paid)
                    })
                    .collect();
                let amount = lines.iter().map(|l| l.amount_minor).sum();
                let points = lines.iter().map(|l| l.points).sum();
                PurchaseTrack {
                    lines,
                    minimums,
                    ..track(amount, points)
                }
            })
    }

    proptest::proptest! {
        /// Whatever the minimums and the order of the returns, no return
        /// takes back a negative amount, and returning everything takes
        /// back exactly what the basket earned.
        #[test]
        fn returns_over_minimums_add_up_to_exactly_what_was_earned(
            mut p in basket_with_minimums(),
            picks in proptest::collection::vec((0_usize..4, 1_i64..4), 0..12),
        ) {
            let earned = p.points;
            for (line, wanted) in picks {
                let Some(left) = p.lines.get(line % p.lines.len()).map(LineTrack::units_left) else {
                    continue;
                };
                if left == 0 {
                    continue;
                }
                let sku = format!("l{}", line % p.lines.len());
                let back = p
                    .take_back(Returned::Lines { lines: &[units(&sku, wanted.min(left))], amount_minor: None })
                    .expect("returnable");
                proptest::prop_assert!(back.lines.iter().all(|l| l.points >= 0), "{back:?}");
                p.record_return(&back);
            }
            let rest = p.returnable_minor();
            let last = if rest > 0 || p.lines.iter().any(|l| l.units_left() > 0) {
                let all: Vec<ReturnLine> = p
                    .lines
                    .iter()
                    .filter(|l| l.units_left() > 0)
                    .map(|l| units(&l.sku, l.units_left()))
                    .collect();
                let back = p
                    .take_back(Returned::Lines { lines: &all, amount_minor: None })
                    .expect("the rest");
                p.record_return(&back);
                back.points
            } else {
                0
            };
            proptest::prop_assert!(last >= 0);
            proptest::prop_assert_eq!(p.points_reversed, earned);
        }
    }
}
