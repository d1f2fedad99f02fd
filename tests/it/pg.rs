//! A throwaway PostgreSQL cluster for the tests that run on PostgreSQL.
//!
//! One cluster per test process, started on first use: `initdb` into a
//! temporary directory, `postgres` on a free loopback port, each test in a
//! database of its own. PostgreSQL refuses to run as root, so as root the
//! cluster runs as the `postgres` user (`runuser`). A watchdog shell stops
//! the cluster (fast shutdown) and removes its directory once the test
//! process is gone, however it ended.
//!
//! Where no PostgreSQL is installed, [`database`] says so and returns
//! `None`, and the test prints that it was skipped; with
//! `TIERD_REQUIRE_POSTGRES=1` (as `.ci/run` sets) it fails instead. The
//! server binaries are looked for in `TIERD_PG_BIN`, then in Debian's
//! `/usr/lib/postgresql/<version>/bin`, newest first.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

/// The running cluster, or why there is none.
static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// Databases made so far in this process.
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// How long the cluster gets to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A cluster this process started.
pub struct Cluster {
    port: u16,
    /// The cluster's data directory (PGDATA).
    data: PathBuf,
    /// How to run a command as the cluster's owner.
    as_owner: Vec<String>,
    bin: PathBuf,
}

impl Cluster {
    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://tierd@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the cluster (fast shutdown) until the guard is dropped, which
    /// starts it again on the same port and data.
    pub fn stopped(&self) -> Down<'_> {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
        Down(self)
    }

    fn start(&self) {
        self.pg_ctl(&["start", "-w", "-l", "/dev/null", "-o", &self.options()]);
    }

    fn options(&self) -> String {
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.data.display()
        )
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data.display().to_string();
        let status = self
            .owner_command(&self.bin.join("pg_ctl"))
            .args(["-D", &data])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    fn owner_command(&self, program: &Path) -> Command {
        match self.as_owner.split_first() {
            Some((first, rest)) => {
                let mut command = Command::new(first);
                command.args(rest).arg(program);
                command
            }
            None => Command::new(program),
        }
    }
}

/// A stopped cluster; dropping it starts the cluster again.
pub struct Down<'c>(&'c Cluster);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        self.0.start();
    }
}

/// A cluster of the caller's own, for a test that stops it; `None` as
/// [`cluster`].
pub fn private_cluster() -> Option<Cluster> {
    let started = std::thread::spawn(start_cluster)
        .join()
        .unwrap_or_else(|_| Err("starting the cluster panicked".into()));
    usable(started)
}

/// The cluster, or why there is none: a panic where PostgreSQL is required,
/// otherwise a line saying the test was skipped.
fn usable<C>(cluster: Result<C, String>) -> Option<C> {
    match cluster {
        Ok(cluster) => Some(cluster),
        Err(why) if required() => panic!("PostgreSQL is required but: {why}"),
        Err(why) => {
            eprintln!(
                "skipped on PostgreSQL: {why} (TIERD_REQUIRE_POSTGRES=1 makes this a failure)"
            );
            None
        }
    }
}

/// The shared cluster, started on first use; `None` (and the reason printed) when
/// there is no PostgreSQL here and it is not required.
///
/// # Panics
/// When PostgreSQL is required (`TIERD_REQUIRE_POSTGRES=1`) but cannot be
/// started.
pub fn cluster() -> Option<&'static Cluster> {
    let cluster = CLUSTER.get_or_init(|| {
        // Not on the caller's thread: it may be an async worker.
        std::thread::spawn(start_cluster)
            .join()
            .unwrap_or_else(|_| Err("starting the cluster panicked".into()))
    });
    usable(cluster.as_ref().map_err(Clone::clone))
}

/// A new, empty database on the shared cluster, as a URL; `None` as
/// [`cluster`].
pub fn database() -> Option<String> {
    new_database(cluster()?)
}

/// A new, empty database on `cluster`, as a URL.
pub fn new_database(cluster: &Cluster) -> Option<String> {
    let name = format!(
        "t{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    let admin = cluster.url("postgres");
    let create = format!("CREATE DATABASE {name}");
    std::thread::spawn(move || execute(&admin, &create))
        .join()
        .expect("creating a database")
        .expect("the cluster creates a database");
    Some(cluster.url(&name))
}

/// Runs one statement on `url`, on a runtime of its own.
fn execute(url: &str, sql: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|err| err.to_string())?;
        tokio::spawn(connection);
        client
            .batch_execute(sql)
            .await
            .map_err(|err| err.to_string())
    })
}

fn required() -> bool {
    std::env::var("TIERD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Where `initdb` and `postgres` are.
fn binaries() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("TIERD_PG_BIN") {
        return Ok(bin.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no PostgreSQL under /usr/lib/postgresql (set TIERD_PG_BIN)".to_owned())?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no postgres binary under /usr/lib/postgresql/*/bin".to_owned())
}

fn start_cluster() -> Result<Cluster, String> {
    let bin = binaries()?;
    let root = tempfile::Builder::new()
        .prefix("tierd-pg-")
        .tempdir()
        .map_err(|err| err.to_string())?
        .keep();
    let as_owner = if is_root() {
        let status = Command::new("chown")
            .args(["postgres:", &root.display().to_string()])
            .status()
            .map_err(|err| format!("chown: {err}"))?;
        if !status.success() {
            return Err("cannot hand the cluster directory to the postgres user".into());
        }
        vec![
            "runuser".into(),
            "-u".into(),
            "postgres".into(),
            "--".into(),
        ]
    } else {
        Vec::new()
    };
    let cluster = Cluster {
        port: free_port()?,
        data: root.join("data"),
        as_owner,
        bin,
    };
    let initdb = cluster
        .owner_command(&cluster.bin.join("initdb"))
        .args(["-D", &cluster.data.display().to_string()])
        .args(["-A", "trust", "-U", "tierd", "--no-sync", "-E", "UTF8"])
        .stdout(Stdio::null())
        .output()
        .map_err(|err| format!("initdb: {err}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    cluster.start();
    watch_over(&cluster, &root)?;
    let started = Instant::now();
    while let Err(why) = execute(&cluster.url("postgres"), "SELECT 1") {
        if started.elapsed() > READY_WITHIN {
            return Err(format!("the cluster did not come up: {why}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(cluster)
}

/// Starts the watchdog: once this process has ended, stop the cluster and
/// remove its directory.
fn watch_over(cluster: &Cluster, root: &Path) -> Result<(), String> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {owner} {pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {root}",
        pid = std::process::id(),
        owner = cluster.as_owner.join(" "),
        pg_ctl = cluster.bin.join("pg_ctl").display(),
        data = cluster.data.display(),
        root = root.display(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|err| format!("starting the watchdog: {err}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|err| err.to_string())
}
