//! The bookkeeping around an event, beyond the member's own change: the
//! receipts of earlier purchases (what their returns may still take back,
//! how many of their points lapsed) and the redemptions against orders
//! (what a return of the order gives back).
//!
//! The service keeps these books in its store; `tierd rules test` keeps
//! them in memory for one case's story. Both read them through [`Books`]
//! and change them only here, so a marketer's test story books a lapse, a
//! return and a re-credit exactly as the service would.

use chrono::{DateTime, Utc};

use super::{
    apply::{self, Effect},
    member::{Lapse, MemberState},
    receipt::{OrderRedemptions, Receipt, ReturnRefused, Returned},
};
use crate::rules::RuleSet;

/// Where the receipts and order redemptions are looked up: the store's
/// writer (as it last committed), or a rules test's memory.
pub trait Books {
    /// Why a lookup failed (storage); a rules test's never fails.
    type Error;

    /// The receipt recorded under `transaction_id`, if any.
    ///
    /// # Errors
    /// When the books cannot be read.
    fn receipt(&self, transaction_id: &str) -> Result<Option<Receipt>, Self::Error>;

    /// The redemptions of `member_id` against the order `order_id`, if any.
    ///
    /// # Errors
    /// When the books cannot be read.
    fn order(
        &self,
        member_id: &str,
        order_id: &str,
    ) -> Result<Option<OrderRedemptions>, Self::Error>;

    /// The member whose books hold what `member_id` did: itself, or the
    /// member it was merged into (so that a purchase made under an id
    /// merged away is still its member's to return). Books without merges
    /// answer the id itself.
    ///
    /// # Errors
    /// When the books cannot be read.
    fn owner(&self, member_id: &str) -> Result<String, Self::Error> {
        Ok(member_id.to_owned())
    }
}

/// Receipts and order redemptions an event changed, to be kept with it.
#[derive(Debug, Default)]
pub struct Entries {
    /// Receipts by transaction id (the event's own is added by the caller).
    pub receipts: Vec<(String, Receipt)>,
    /// Redemptions by member id and order id.
    pub orders: Vec<(String, String, OrderRedemptions)>,
}

/// After any event: day totals too old for any window are dropped, and
/// every purchase whose points lapsed on the way is told how many, so a
/// later return does not take them again. The receipts changed join
/// `receipts` (one already there is updated in place).
///
/// # Errors
/// When the books cannot be read.
pub fn settle<B: Books>(
    books: &B,
    member: &mut MemberState,
    lapsed: &[Lapse],
    now: DateTime<Utc>,
    receipts: &mut Vec<(String, Receipt)>,
) -> Result<(), B::Error> {
    member.prune_days(now);
    book_lapses(books, lapsed, receipts)
}

/// Tells each purchase whose points lapsed how many did (see [`settle`]).
///
/// # Errors
/// When the books cannot be read.
pub fn book_lapses<B: Books>(
    books: &B,
    lapsed: &[Lapse],
    receipts: &mut Vec<(String, Receipt)>,
) -> Result<(), B::Error> {
    for lapse in lapsed.iter().filter(|lapse| lapse.points > 0) {
        if let Some((_, receipt)) = receipts.iter_mut().find(|(id, _)| *id == lapse.source) {
            if let Some(track) = receipt.purchase.as_mut() {
                track.record_lapse(lapse.points);
            }
            continue;
        }
        if let Some(mut receipt) = books.receipt(&lapse.source)?
            && let Some(track) = receipt.purchase.as_mut()
        {
            track.record_lapse(lapse.points);
            receipts.push((lapse.source.clone(), receipt));
        }
    }
    Ok(())
}

/// Why a return was not booked; nothing changed.
#[derive(Debug)]
pub enum ReturnError<E> {
    /// `member` has no purchase under that transaction id.
    NotFound,
    /// The return happened before the purchase it returns.
    BeforePurchase {
        /// When the purchase happened.
        purchased_at: DateTime<Utc>,
    },
    /// The return does not fit what is left of the purchase.
    Refused(ReturnRefused),
    /// The books could not be read.
    Books(E),
}

/// A return of (part of) the purchase `original` of `member`, happened at
/// `occurred_at` (if the caller knows), received at `now`: the purchase's
/// receipt is taken back from, the order's redemptions re-credited (when
/// it was paid partly with points), and both are in the entries returned.
///
/// # Errors
/// [`ReturnError`]; nothing changed.
pub fn return_purchase<B: Books>(
    books: &B,
    rules: &RuleSet,
    member: &mut MemberState,
    original: &str,
    what: Returned<'_>,
    occurred_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(Effect, Entries), ReturnError<B::Error>> {
    let mut receipt = books
        .receipt(original)
        .map_err(ReturnError::Books)?
        .ok_or(ReturnError::NotFound)?;
    if books
        .owner(&receipt.member_id)
        .map_err(ReturnError::Books)?
        != member.member_id
    {
        return Err(ReturnError::NotFound);
    }
    let mut track = receipt.purchase.take().ok_or(ReturnError::NotFound)?;
    if occurred_at.is_some_and(|at| at < track.occurred_at) {
        return Err(ReturnError::BeforePurchase {
            purchased_at: track.occurred_at,
        });
    }
    let mut order = books
        .order(&member.member_id, original)
        .map_err(ReturnError::Books)?;
    let effect = apply::return_purchase(
        rules,
        member,
        original,
        &mut track,
        what,
        order.as_mut(),
        now,
    )
    .map_err(ReturnError::Refused)?;
    receipt.purchase = Some(track);
    let orders = order
        .filter(|_| effect.points_recredited > 0)
        .map(|o| (member.member_id.clone(), original.to_owned(), o))
        .into_iter()
        .collect();
    Ok((
        effect,
        Entries {
            receipts: vec![(original.to_owned(), receipt)],
            orders,
        },
    ))
}
