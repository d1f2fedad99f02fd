//! One scan of the members for any number of reports.
//!
//! Reading and decoding the members is most of what a report costs, and
//! the HTML page shows nine of them: each report is therefore written as
//! [`Making`], the three steps of a fold (an empty part for each thread,
//! adding one member to a part, merging two parts) and a last step that
//! makes the report from the whole. [`super::Reporter::run_all`] feeds every
//! member, read once, to every report asked for, then finishes them one
//! after another, so that the memory of one last step (the models'
//! scoring, the clustering's matrix) is not added to another's.
//! Each report's part is its own type; here they travel as `dyn Any`, so
//! that reports of every kind share one scan.

use std::any::Any;

use super::{Report, ReportError};
use crate::{domain::member::MemberState, store::StoreError};

/// One report's running totals, whatever their type.
pub(super) type Part = Box<dyn Any + Send>;

/// Makes an empty part.
type Start<'r> = Box<dyn Fn() -> Part + Sync + 'r>;
/// Adds a member to a part.
type Add<'r> = Box<dyn Fn(&mut Part, &MemberState) -> Result<(), StoreError> + Sync + 'r>;
/// Adds a part to a total.
type Merge<'r> = Box<dyn Fn(&mut Part, Part) + Sync + 'r>;

/// What a report does with each member: the fold, without its last step.
pub(super) struct Folding<'r> {
    start: Start<'r>,
    add: Add<'r>,
    merge: Merge<'r>,
}

impl Folding<'_> {
    /// An empty part, for one thread of the scan.
    pub(super) fn start(&self) -> Part {
        (self.start)()
    }

    /// Adds `member` to `part`.
    pub(super) fn add(&self, part: &mut Part, member: &MemberState) -> Result<(), StoreError> {
        (self.add)(part, member)
    }

    /// Adds another thread's `part` to `total`.
    pub(super) fn merge(&self, total: &mut Part, part: Part) {
        (self.merge)(total, part);
    }
}

/// The last step: the report from the totals of every member.
type Finish<'r> = Box<dyn FnOnce(Part) -> Result<Report, ReportError> + 'r>;

/// A report whose options were checked, waiting for the members.
pub(super) struct Making<'r> {
    /// What it does with each member.
    pub(super) folding: Folding<'r>,
    /// How it is made from the totals.
    pub(super) finish: Finish<'r>,
}

impl<'r> Making<'r> {
    /// A report made by folding every member into a `T`: `start` makes an
    /// empty one, `add` adds a member, `merge` adds another thread's, and
    /// `finish` makes the report from the whole.
    pub(super) fn new<T, S, A, M, F>(start: S, add: A, merge: M, finish: F) -> Self
    where
        T: Any + Send,
        S: Fn() -> T + Sync + 'r,
        A: Fn(&mut T, &MemberState) -> Result<(), StoreError> + Sync + 'r,
        M: Fn(&mut T, T) + Sync + 'r,
        F: FnOnce(T) -> Result<Report, ReportError> + 'r,
    {
        // Every part of this report was made by `start`, so each is a `T`:
        // the casts below cannot fail.
        Self {
            folding: Folding {
                start: Box::new(move || Box::new(start())),
                add: Box::new(move |part, member| match part.downcast_mut::<T>() {
                    Some(part) => add(part, member),
                    None => Ok(()),
                }),
                merge: Box::new(move |total, part| {
                    if let (Some(total), Ok(part)) = (total.downcast_mut::<T>(), part.downcast()) {
                        merge(total, *part);
                    }
                }),
            },
            finish: Box::new(move |part| match part.downcast::<T>() {
                Ok(part) => finish(*part),
                Err(_) => unreachable!("a report's part is the type its start makes"),
            }),
        }
    }
}

/// Adds the members of another thread's `part` to `all`, keeping the
/// larger allocation: a million members' rows are then copied once, not
/// into a third vector as large as both.
pub(super) fn append<T>(all: &mut Vec<T>, mut part: Vec<T>) {
    if part.capacity() > all.capacity() {
        std::mem::swap(all, &mut part);
    }
    all.append(&mut part);
}
