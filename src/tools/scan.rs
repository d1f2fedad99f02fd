//! One pass over every stored member, on all cores: one thread walks sled
//! and hands batches of undecoded records to one worker per core, which
//! decode them and fold them into a partial result; the partial results are
//! merged at the end. Reads only, in bounded memory (a few batches in
//! flight per worker). Simulations and reports are built on it.

use std::sync::mpsc;

use crate::{
    domain::member::MemberState,
    store::{RawMember, Store, StoreError},
};

/// Members handed to a worker at a time.
const BATCH: usize = 1024;

/// Batches queued per worker before the walker waits.
const QUEUED: usize = 4;

/// Folds every stored member into a result: each worker starts from
/// `start()` and folds its members in with `add`; the workers' results are
/// then combined with `merge`. The order members reach `add` is not fixed,
/// so `add` and `merge` must not depend on it.
///
/// # Errors
/// On a storage failure or an undecodable record.
pub fn fold_members<T, S, A, M>(store: &Store, start: S, add: A, merge: M) -> Result<T, StoreError>
where
    T: Send,
    S: Fn() -> T + Sync,
    A: Fn(&mut T, MemberState) + Sync,
    M: Fn(&mut T, T),
{
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    std::thread::scope(|scope| {
        let mut queues = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (queue, batches) = mpsc::sync_channel::<Vec<RawMember>>(QUEUED);
            queues.push(queue);
            let (start, add) = (&start, &add);
            handles.push(scope.spawn(move || -> Result<T, StoreError> {
                let mut part = start();
                for batch in batches {
                    for raw in batch {
                        add(&mut part, raw.decode()?);
                    }
                }
                Ok(part)
            }));
        }
        let walked = walk(store, &queues);
        drop(queues);
        let mut total = start();
        for handle in handles {
            // A worker panic is a bug, not bad input: let it surface as one.
            let part = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            merge(&mut total, part);
        }
        walked.map(|()| total)
    })
}

/// Walks the members, dealing batches to the workers in turn.
fn walk(store: &Store, queues: &[mpsc::SyncSender<Vec<RawMember>>]) -> Result<(), StoreError> {
    let mut batch = Vec::with_capacity(BATCH);
    let mut next = 0;
    for raw in store.raw_members() {
        batch.push(raw?);
        if batch.len() == BATCH {
            // A worker that stopped has an error to report when joined.
            let _ = queues[next % queues.len()].send(std::mem::take(&mut batch));
            next += 1;
        }
    }
    let _ = queues[next % queues.len()].send(batch);
    Ok(())
}
