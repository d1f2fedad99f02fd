//! Running the real `tierd` binary: start it on a store, read its
//! address from the start-up log, stop it politely or kill it.

use std::process::Command;

use tierd::store::Location;

/// `store` as `--store` takes it (with its password, unlike `Display`).
pub fn store_arg(store: &Location) -> String {
    match store {
        Location::Sled(dir) => format!("sled:{}", dir.display()),
        Location::Postgres(url) => url.clone(),
    }
}

/// The `tierd` binary that cargo built for these tests.
pub fn tierd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tierd"))
}

/// A `tierd serve` process with its address, read from its start-up log.
pub struct Served {
    pub child: std::process::Child,
    /// `host:port` the server listens on.
    pub address: String,
    /// Its log after the start-up line, collected until it exits.
    log: std::thread::JoinHandle<Vec<String>>,
}

/// A server left running by a failing test would outlive it: kill it.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped rules directory.
pub fn shipped_rules() -> &'static std::path::Path {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/rules"))
}

/// Starts `tierd serve` on `data` with the shipped rules, on a free port.
pub fn serve(data: &std::path::Path) -> Served {
    serve_rules(data, shipped_rules())
}

/// Starts `tierd serve` on `data` with the given rules, on a free port.
pub fn serve_rules(data: &std::path::Path, rules: &std::path::Path) -> Served {
    serve_with(data, rules, &[])
}

/// Starts `tierd serve` on the sled directory `data` with more flags.
pub fn serve_with(data: &std::path::Path, rules: &std::path::Path, flags: &[&str]) -> Served {
    serve_on(&Location::Sled(data.to_owned()), rules, flags)
}

/// Starts `tierd serve` on `store` (a sled directory or a database) with
/// the given rules and flags, on a free port.
pub fn serve_on(store: &Location, rules: &std::path::Path, flags: &[&str]) -> Served {
    serve_by(tierd(), store, rules, flags)
}

/// Starts `tierd serve` as `command` runs it (the binary itself, or a
/// wrapper such as `prlimit` that execs it), as [`serve_on`] does.
pub fn serve_by(
    mut command: Command,
    store: &Location,
    rules: &std::path::Path,
    flags: &[&str],
) -> Served {
    use std::io::BufRead as _;
    let mut child = command
        .arg("serve")
        .args(flags)
        .args(["--listen", "127.0.0.1:0", "--store"])
        .arg(store_arg(store))
        .arg("--rules")
        .arg(rules)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tierd starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let address = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let address = tierd::grpc::address_in_log(&line).map(str::to_owned);
            seen.push(line);
            address
        })
        .unwrap_or_else(|| {
            panic!(
                "the start-up log names the address; it said:\n{}",
                seen.join("\n")
            )
        });
    // Keep draining the log so the server never blocks on a full pipe.
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    Served {
        child,
        address,
        log,
    }
}

impl Served {
    /// A channel to the server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://{}", self.address))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    /// A loyalty client of the server.
    pub async fn client(
        &self,
    ) -> tierd::grpc::pb::loyalty_client::LoyaltyClient<tonic::transport::Channel> {
        tierd::grpc::pb::loyalty_client::LoyaltyClient::new(self.channel().await)
    }
}

/// A purchase at the machine's time (a server process runs on the system
/// clock).
pub fn purchase_now(
    member: &str,
    txn: &str,
    amount_minor: i64,
) -> tierd::grpc::pb::RecordPurchaseRequest {
    tierd::grpc::pb::RecordPurchaseRequest {
        member_id: member.into(),
        transaction_id: txn.into(),
        amount_minor,
        currency: "EUR".into(),
        occurred_at: Some(tierd::grpc::convert::timestamp(chrono::Utc::now())),
        channel: "pos".into(),
        store_id: "s1".into(),
        ..Default::default()
    }
}

/// Sends SIGTERM and waits for the exit status.
pub fn terminate(served: Served) -> std::process::ExitStatus {
    stop_with(served, "TERM")
}

/// Sends SIGKILL and waits: a crash at whatever moment this is.
pub fn crash(served: Served) {
    stop_with(served, "KILL");
}

/// Sends the signal `name` (e.g. HUP) and leaves the process running.
pub fn send_signal(served: &Served, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), served.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Sends the signal `name` (TERM, INT, KILL) and waits for the exit status.
pub fn stop_with(served: Served, name: &str) -> std::process::ExitStatus {
    stop_with_log(served, name).0
}

/// Sends the signal `name`, waits for the exit status, and returns it with
/// the log written after start-up.
pub fn stop_with_log(mut served: Served, name: &str) -> (std::process::ExitStatus, Vec<String>) {
    send_signal(&served, name);
    let status = served.child.wait().expect("tierd exits");
    let log = std::mem::replace(&mut served.log, std::thread::spawn(Vec::new));
    (
        status,
        log.join().expect("the log reader ends with the process"),
    )
}

/// Runs `tierd backup --store STORE --out OUT` and returns the backup bytes.
pub fn backup_bytes(store: &Location, out: &std::path::Path) -> Vec<u8> {
    let made = tierd()
        .args(["backup", "--out"])
        .arg(out)
        .args(["--store", &store_arg(store)])
        .output()
        .expect("tierd runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    std::fs::read(out).expect("backup")
}

/// `output` of a command that must have succeeded (else its stderr is the
/// failure message).
pub fn succeeded(output: std::process::Output) -> std::process::Output {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
