//! Server processes the measuring examples start (`loadgen`, `scale`): the
//! real `tierd serve` binary beside them in `target/release`, on a free
//! loopback port, its address read from its own log, as an operator would
//! start it.

use std::{
    io::BufRead as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

/// A server process this run started; killed when dropped, unless it was
/// already reaped (see `scale`'s peak-memory reading).
pub struct Server {
    pub child: Child,
    pub address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The directory of this executable's sibling binaries (`target/release`).
fn binaries() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let examples = exe.parent().ok_or_else(|| anyhow::anyhow!("no parent"))?;
    Ok(examples
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no target dir"))?
        .to_owned())
}

/// A binary built beside this one (`relative` to `target/release`), with
/// the `cargo build --release` arguments that build it when it is missing.
pub fn built(relative: &str, build: &str) -> anyhow::Result<Command> {
    let binary = binaries()?.join(relative);
    anyhow::ensure!(
        binary.exists(),
        "{} is missing (cargo build --release {build})",
        binary.display()
    );
    Ok(Command::new(binary))
}

/// The `tierd` binary.
pub fn tierd() -> anyhow::Result<Command> {
    built("tierd", "--bin tierd")
}

/// Starts `tierd serve` on the sled directory `data`: see [`start_tierd_on`].
pub fn start_tierd(data: &Path) -> anyhow::Result<Server> {
    start_tierd_on(&format!("sled:{}", data.display()))
}

/// Starts `tierd serve` on `store` (as `--store` takes it) with the shipped
/// rules and reads its address from its log: it returns once the server
/// accepts connections.
pub fn start_tierd_on(store: &str) -> anyhow::Result<Server> {
    start_tierd_with(store, &[])
}

/// [`start_tierd_on`] with more flags for `tierd serve`.
pub fn start_tierd_with(store: &str, flags: &[&str]) -> anyhow::Result<Server> {
    let mut child = tierd()?
        .args(["serve", "--listen", "127.0.0.1:0", "--no-watch"])
        .args(["--store", store, "--rules", "rules"])
        .args(flags)
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let address = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| tierd::grpc::address_in_log(&line).map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("tierd did not start"))?;
    // Keep draining its log so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    Ok(Server {
        child,
        address: format!("http://{address}"),
    })
}
