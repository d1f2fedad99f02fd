//! Write lanes: threads that each own one database connection and run the
//! write jobs given to them on it, one at a time.
//!
//! A write job is synchronous code (the same job runs on sled's writer
//! thread) that waits for each of its statements. Waiting for a
//! connection that another runtime's threads drive costs two thread
//! switches per round trip; measured, a quarter of a node's time went to
//! them. A lane drives its own connection on its own thread instead (a
//! current-thread runtime, entered only while the job waits), so a
//! statement's round trip is the socket and nothing else. A job reaches a
//! free lane through one queue, and its answer comes back on a oneshot.
//!
//! A lane connects when it first gets a job, and again after its
//! connection broke; a job that finds the database unreachable is answered
//! [`StoreError::Unavailable`].

use std::{
    cell::RefCell,
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    thread,
};

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, NoTls, Statement};

use super::CONNECT_TIMEOUT;
use crate::store::StoreError;

/// Jobs waiting for a lane before senders wait too (backpressure).
const QUEUE: usize = 1024;

/// Work for a lane.
type Task = Box<dyn FnOnce(&mut Lane) + Send>;

/// One connection and the thread that drives it.
pub struct Lane {
    runtime: tokio::runtime::Runtime,
    config: tokio_postgres::Config,
    client: Option<Client>,
    /// Statements prepared on this connection, by their SQL.
    statements: RefCell<HashMap<String, Statement>>,
}

impl Lane {
    /// Runs `future` to its end on this lane's thread, driving the
    /// connection meanwhile.
    pub(super) fn wait<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The connection. Only within a job, after [`Lane::connect`].
    ///
    /// # Panics
    /// Never in a job: [`Lanes::run`] connects first.
    pub(super) fn client(&self) -> &Client {
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("a lane runs jobs only when connected"))
    }

    /// `sql` prepared on this connection, from the cache after the first
    /// time.
    pub(super) async fn prepare(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client().prepare(sql).await?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Connects, unless connected already and the connection is whole.
    fn connect(&mut self) -> Result<(), StoreError> {
        if self
            .client
            .as_ref()
            .is_some_and(|client| !client.is_closed())
        {
            return Ok(());
        }
        self.client = None;
        self.statements.borrow_mut().clear();
        let config = &self.config;
        let (client, connection) = self
            .runtime
            .block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls)).await })
            .map_err(|_| StoreError::Unavailable("connecting timed out".into()))??;
        self.runtime.spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "a write lane's connection ended");
            }
        });
        self.client = Some(client);
        Ok(())
    }
}

/// The lanes of a store and the queue to them. Dropping it lets each lane
/// finish its job and end.
pub struct Lanes {
    queue: mpsc::Sender<Task>,
}

impl Lanes {
    /// Starts `count` lanes connecting with `config`.
    ///
    /// # Errors
    /// When a thread or its runtime cannot be made.
    pub fn start(config: &tokio_postgres::Config, count: usize) -> Result<Self, StoreError> {
        let (queue, tasks) = mpsc::channel::<Task>(QUEUE);
        let tasks = Arc::new(Mutex::new(tasks));
        for n in 0..count {
            let mut lane = Lane {
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
                config: config.clone(),
                client: None,
                statements: RefCell::new(HashMap::new()),
            };
            let tasks = Arc::clone(&tasks);
            thread::Builder::new()
                .name(format!("tierd-lane-{n}"))
                .spawn(move || {
                    while let Some(task) = next_task(&tasks) {
                        // A task that panics ends only itself: its caller
                        // sees the oneshot dropped, and the lane goes on.
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            task(&mut lane);
                        }));
                        if ran.is_err() {
                            tracing::error!("a write lane's task panicked");
                        }
                    }
                })?;
        }
        Ok(Self { queue })
    }

    /// Runs `job` on the next free lane, connected, and returns its result.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the lane cannot connect;
    /// [`StoreError::WriterStopped`] when the lanes are gone or the job
    /// panicked.
    pub async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Lane) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let task: Task = Box::new(move |lane: &mut Lane| {
            let outcome = lane.connect().and_then(|()| job(lane));
            // A caller that gave up (client gone) is no error.
            let _ = answer.send(outcome);
        });
        self.queue
            .send(task)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answered.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// The next task for a lane; `None` once the store is gone.
fn next_task(tasks: &Mutex<mpsc::Receiver<Task>>) -> Option<Task> {
    tasks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .blocking_recv()
}
