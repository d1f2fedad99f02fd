//! Load generator: durable `RecordPurchase`s against a running server, as
//! tills would send them, from its own process; throughput and latency
//! percentiles (p50, p99, p99.9, from an HDR histogram).
//!
//! ```sh
//! cargo build --release --bin tierd --example noop_server --example loadgen
//! # tierd against the no-op server, one after the other, and the ratio:
//! target/release/examples/loadgen --compare-noop
//! # or against any running tierd:
//! target/release/examples/loadgen --target http://127.0.0.1:50051 --api-key KEY
//! # purchases landing on the members of a seeded store (a copy of it):
//! target/release/examples/seed /tmp/s100k 100000 && cp -r /tmp/s100k /tmp/run
//! target/release/examples/loadgen --compare-noop --members-from /tmp/run --members 100000
//! # sled against one and two nodes on a PostgreSQL database:
//! target/release/examples/loadgen --compare-stores postgres://tierd@127.0.0.1/loyalty
//! # a purchase's latency with no streams open, then with 64 that never read:
//! target/release/examples/loadgen --compare-stalled-watchers 64
//! # or against two nodes of one database, connections spread over both:
//! target/release/examples/loadgen --target http://127.0.0.1:50051 --target http://127.0.0.1:50052
//! ```
//!
//! With `--compare-noop` it starts the real `tierd serve` binary (on a
//! temporary data directory, the shipped rules, its default limits and
//! logging) and the no-op server binary (`examples/noop_server.rs`, the
//! same contract answering at once), each on a free loopback port, drives
//! each for the same time, and prints both and the ratio. Requests spread
//! over `--connections` HTTP/2 connections; `--concurrency` is the number
//! in flight. `--batch N` sends `RecordEvents` calls of N purchases instead
//! (batch ingestion; the no-op server refuses those, so use `--target`).
//! The run is bounded by time, so it always stops by itself.

use std::{
    io::BufRead as _,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use hdrhistogram::Histogram;
use tonic::{
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

#[path = "support/servers.rs"]
mod servers;
use servers::Server;
use tierd::grpc::{
    convert::timestamp,
    pb::{self, ingest_client::IngestClient, loyalty_client::LoyaltyClient},
};

/// What to drive and how hard.
#[derive(Parser, Debug)]
struct Args {
    /// A running server (`http://host:port`); not needed with
    /// `--compare-noop`. Give it again for several nodes of one store: the
    /// connections are spread over them in turn.
    #[arg(long)]
    target: Vec<String>,
    /// Start `tierd serve` and the no-op server and compare them.
    #[arg(long)]
    compare_noop: bool,
    /// Start `tierd serve` on sled, then one and two nodes on this
    /// PostgreSQL database (`postgres://...`, empty or made by an earlier
    /// run), and compare them.
    #[arg(long)]
    compare_stores: Option<String>,
    /// Start `tierd serve`, drive it, then open this many
    /// `WatchTierChanges` streams that never read (each on a connection of
    /// its own) and drive it again, and compare the two.
    #[arg(long)]
    compare_stalled_watchers: Option<usize>,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections they share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds per server.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// With --compare-noop: run tierd on this data directory instead of a
    /// fresh one, a store made by `examples/seed` (a copy: it is written
    /// to), and send the purchases to its members (ids as the seed tool
    /// names them; set --members to the number seeded), so that each
    /// lands on a member with two years of history.
    #[arg(long)]
    members_from: Option<std::path::PathBuf>,
    /// Distinct members the purchases go to.
    #[arg(long, default_value_t = 10_000)]
    members: u64,
    /// Sent as `authorization: Bearer <key>`.
    #[arg(long)]
    api_key: Option<String>,
    /// Send purchases in `RecordEvents` calls of this many (0: one
    /// `RecordPurchase` per request); figures are then events per second.
    #[arg(long, default_value_t = 0)]
    batch: usize,
}

/// What one run measured.
struct Figures {
    requests_per_second: f64,
    /// Events recorded per second (a request is one event, or a batch).
    events_per_second: f64,
    latencies: Histogram<u64>,
    /// Events not recorded: failed calls, refused slots and duplicates.
    errors: u64,
}

impl Figures {
    /// The latency at quantile `q`, in microseconds.
    fn at(&self, q: f64) -> f64 {
        self.latencies.value_at_quantile(q) as f64
    }

    fn show(&self, label: &str) {
        println!(
            "{label:<8} {:>9.0} req/s {:>9.0} events/s   p50 {:>8.2} ms   p99 {:>8.2} ms   p99.9 {:>8.2} ms   errors {}",
            self.requests_per_second,
            self.events_per_second,
            self.at(0.50) / 1000.0,
            self.at(0.99) / 1000.0,
            self.at(0.999) / 1000.0,
            self.errors
        );
    }
}

/// Drives `addresses` (one, or several nodes of one store) for
/// `args.seconds`.
async fn drive(addresses: &[String], args: &Args, label: &str) -> anyhow::Result<Figures> {
    let mut channels = Vec::new();
    for address in addresses
        .iter()
        .cycle()
        .take(args.connections.max(addresses.len()))
    {
        channels.push(Channel::from_shared(address.clone())?.connect().await?);
    }
    let key: Option<MetadataValue<_>> = args
        .api_key
        .as_ref()
        .map(|k| format!("Bearer {k}").parse())
        .transpose()?;
    // Each run's transaction ids are new, so that a second run against the
    // same server records purchases instead of replaying the first run's.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|worker| {
            let channel = channels[worker % channels.len()].clone();
            let mut client = LoyaltyClient::new(channel.clone());
            let mut ingest = IngestClient::new(channel);
            let (next, errors, events) =
                (Arc::clone(&next), Arc::clone(&errors), Arc::clone(&events));
            let (members, label, key, batch, seeded) = (
                args.members.max(1),
                label.to_owned(),
                key.clone(),
                args.batch,
                args.members_from.is_some(),
            );
            tokio::spawn(async move {
                let mut latencies =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
                let purchase = |n: u64| pb::RecordPurchaseRequest {
                    member_id: if seeded {
                        tierd::tools::seed::member_id(n % members)
                    } else {
                        format!("member-{}", n % members)
                    },
                    transaction_id: format!("{label}-{run}-{n}"),
                    amount_minor: 1_000 + i64::try_from(n % 50_000).unwrap_or(0),
                    currency: "EUR".into(),
                    occurred_at: Some(timestamp(chrono::Utc::now())),
                    channel: "pos".into(),
                    store_id: "store-1".into(),
                    ..Default::default()
                };
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let (recorded, failed) = if batch == 0 {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let request = keyed(key.as_ref(), purchase(n));
                        match client.record_purchase(request).await {
                            Ok(answer) if !answer.get_ref().duplicate => (1, 0),
                            _ => (0, 1),
                        }
                    } else {
                        let first = next.fetch_add(batch as u64, Ordering::Relaxed);
                        let events = (first..first + batch as u64)
                            .map(|n| pb::Event {
                                event: Some(pb::event::Event::Purchase(purchase(n))),
                            })
                            .collect();
                        let request = keyed(key.as_ref(), pb::RecordEventsRequest { events });
                        match ingest.record_events(request).await {
                            Ok(answer) => recorded_in(&answer.into_inner()),
                            Err(_) => (0, 1),
                        }
                    };
                    events.fetch_add(recorded, Ordering::Relaxed);
                    errors.fetch_add(failed, Ordering::Relaxed);
                    let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    latencies.saturating_record(micros.max(1));
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for worker in workers {
        latencies.add(worker.await?)?;
    }
    Ok(Figures {
        requests_per_second: latencies.len() as f64 / started.elapsed().as_secs_f64(),
        events_per_second: events.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        latencies,
        errors: errors.load(Ordering::Relaxed),
    })
}

/// Events a batch recorded, and those it did not: refused in their slot,
/// or a duplicate (a replay would inflate the rate).
fn recorded_in(answer: &pb::RecordEventsResponse) -> (u64, u64) {
    let recorded = answer
        .outcomes
        .iter()
        .filter(|slot| {
            matches!(&slot.outcome, Some(pb::event_outcome::Outcome::Purchase(p)) if !p.duplicate)
        })
        .count() as u64;
    (recorded, answer.outcomes.len() as u64 - recorded)
}

/// `message` with the API key, if any.
fn keyed<T>(key: Option<&MetadataValue<Ascii>>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        request.metadata_mut().insert("authorization", key.clone());
    }
    request
}

/// sled, one node on `database` and two, one after the other, with the
/// ratios to sled.
async fn compare_stores(database: &str, args: &Args) -> anyhow::Result<()> {
    let data = tempfile::TempDir::new()?;
    let sled = servers::start_tierd(&data.path().join("data"))?;
    let on_sled = drive(std::slice::from_ref(&sled.address), args, "sled").await?;
    drop(sled);
    on_sled.show("sled");
    let first = servers::start_tierd_on(database)?;
    let one = drive(std::slice::from_ref(&first.address), args, "pg1").await?;
    one.show("pg, 1");
    let second = servers::start_tierd_on(database)?;
    let addresses = [first.address.clone(), second.address.clone()];
    let two = drive(&addresses, args, "pg2").await?;
    two.show("pg, 2");
    println!(
        "ratio    {:.2} (one node) and {:.2} (two nodes) of sled's throughput",
        one.requests_per_second / on_sled.requests_per_second,
        two.requests_per_second / on_sled.requests_per_second
    );
    Ok(())
}

/// One server driven with no streams open, then with `count` streams that
/// never read, then with none again; one more stream is asked for, to show
/// the limit. A first run warms the store up (every member created), so
/// that the runs compared write the same kind of purchases; the runs with
/// no streams before and after bracket the one with them, since the store
/// grows as they go.
async fn compare_stalled_watchers(count: usize, args: &Args) -> anyhow::Result<()> {
    let data = tempfile::TempDir::new()?;
    let tierd = servers::start_tierd(&data.path().join("data"))?;
    let address = std::slice::from_ref(&tierd.address);
    drive(address, args, "warm").await?.show("warm-up");
    let free = drive(address, args, "free").await?;
    free.show("0 open");
    let key: Option<MetadataValue<_>> = args
        .api_key
        .as_ref()
        .map(|k| format!("Bearer {k}").parse())
        .transpose()?;
    let mut stalled = Vec::with_capacity(count);
    for _ in 0..=count {
        let channel = Channel::from_shared(tierd.address.clone())?
            .connect()
            .await?;
        let request = keyed(key.as_ref(), pb::WatchTierChangesRequest::default());
        match LoyaltyClient::new(channel)
            .watch_tier_changes(request)
            .await
        {
            Ok(stream) => stalled.push(stream.into_inner()),
            Err(status) => println!(
                "stream {} of {count}: {:?} {}",
                stalled.len() + 1,
                status.code(),
                status.message()
            ),
        }
    }
    let watched = drive(address, args, "stalled").await?;
    watched.show(&format!("{} open", stalled.len()));
    drop(stalled);
    let after = drive(address, args, "after").await?;
    after.show("0 open");
    let worse = |q: f64| watched.at(q) / free.at(q).max(after.at(q));
    println!(
        "ratio    {:.2} of the throughput with no streams open; p50 x{:.2}, p99 x{:.2}, p99.9 x{:.2} \
         (against the worse of the runs before and after)",
        watched.requests_per_second / free.requests_per_second.min(after.requests_per_second),
        worse(0.50),
        worse(0.99),
        worse(0.999)
    );
    Ok(())
}

/// Starts the no-op server and reads its address.
fn start_noop() -> anyhow::Result<Server> {
    let mut child = servers::built("examples/noop_server", "--example noop_server")?
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow::anyhow!("the no-op server did not start"))?;
    Ok(Server {
        address: format!("http://{address}"),
        child,
    })
}

/// Bytes in the files under `dir` (the data directory's size on disk).
fn bytes_under(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => bytes_under(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The resident memory of process `pid`, in KiB (Linux `/proc`).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The server's resident memory, sampled every 10 s while it is driven.
struct RssSamples {
    sampler: tokio::task::JoinHandle<()>,
    samples: Arc<std::sync::Mutex<Vec<u64>>>,
}

impl RssSamples {
    fn start(pid: u32) -> Self {
        let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = Arc::clone(&samples);
        let sampler = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            loop {
                every.tick().await;
                if let (Some(kib), Ok(mut samples)) = (rss_kib(pid), kept.lock()) {
                    samples.push(kib);
                }
            }
        });
        Self { sampler, samples }
    }

    /// The samples taken, in KiB.
    fn stop(self) -> Vec<u64> {
        self.sampler.abort();
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// A loopback address no one listens on (for tierd's `/metrics`).
fn free_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

/// What tierd's write rounds handed to sled, from its `/metrics`.
struct Written {
    bytes: f64,
    keys: f64,
    rounds: f64,
}

impl Written {
    /// Reads the counters from tierd's `/metrics` at `address` (HTTP/1.0,
    /// plain text).
    fn scrape(address: &str) -> anyhow::Result<Self> {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(address)?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut page = String::new();
        stream.read_to_string(&mut page)?;
        let value = |name: &str| {
            page.lines()
                .find_map(|line| {
                    line.strip_prefix(name)?
                        .strip_prefix(' ')?
                        .trim()
                        .parse()
                        .ok()
                })
                .ok_or_else(|| anyhow::anyhow!("{name} is not on the page"))
        };
        Ok(Self {
            bytes: value("tierd_store_written_bytes_total")?,
            keys: value("tierd_store_written_keys_total")?,
            rounds: value("tierd_fsync_duration_seconds_count")?,
        })
    }

    /// Per event and per round (a round: one sled batch and one fsync).
    fn show(&self, events: f64) {
        if events >= 1.0 && self.rounds >= 1.0 {
            println!(
                "sled     {:.0} bytes and {:.2} keys handed to sled per event; {:.0} bytes, {:.1} keys per round ({:.0} rounds)",
                self.bytes / events,
                self.keys / events,
                self.bytes / self.rounds,
                self.keys / self.rounds,
                self.rounds
            );
        }
    }
}

/// The data directory's growth per event recorded.
fn show_growth(grown: u64, events: f64) {
    if events >= 1.0 {
        println!(
            "disk     +{grown} bytes over {events:.0} events: {:.0} bytes per event",
            grown as f64 / events
        );
    }
}

/// The resident memory samples, and how far the last half strays from its
/// first sample (flat memory stays within a few percent).
fn show_rss(samples: &[u64]) {
    let Some(last) = samples.last() else {
        return;
    };
    let second_half = &samples[samples.len() / 2..];
    let low = second_half.iter().min().copied().unwrap_or(*last);
    let high = second_half.iter().max().copied().unwrap_or(*last);
    let shown: Vec<String> = samples.iter().map(|k| (k / 1024).to_string()).collect();
    println!(
        "rss      MiB every 10 s: {}; last half {} to {} MiB ({:+.1}%)",
        shown.join(" "),
        low / 1024,
        high / 1024,
        (high as f64 - low as f64) * 100.0 / low.max(1) as f64
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "RecordPurchase, {} in flight over {} connections, {} s, {} members",
        args.concurrency, args.connections, args.seconds, args.members
    );
    if let Some(database) = &args.compare_stores {
        return compare_stores(database, &args).await;
    }
    if let Some(count) = args.compare_stalled_watchers {
        return compare_stalled_watchers(count, &args).await;
    }
    if !args.compare_noop {
        if args.target.is_empty() {
            anyhow::bail!("give --target URL or --compare-noop");
        }
        drive(&args.target, &args, "load").await?.show("target");
        return Ok(());
    }
    let noop = start_noop()?;
    let baseline = drive(std::slice::from_ref(&noop.address), &args, "noop").await?;
    drop(noop);
    baseline.show("no-op");
    let data = tempfile::TempDir::new()?;
    let store = args
        .members_from
        .clone()
        .unwrap_or_else(|| data.path().join("data"));
    let metrics = free_address()?;
    let store_arg = format!("sled:{}", store.display());
    let tierd = servers::start_tierd_with(&store_arg, &["--metrics-listen", &metrics])?;
    let size_before = bytes_under(&store);
    let sampling = RssSamples::start(tierd.child.id());
    let measured = drive(std::slice::from_ref(&tierd.address), &args, "tierd").await?;
    let rss = sampling.stop();
    let written = Written::scrape(&metrics);
    drop(tierd);
    measured.show("tierd");
    let events = measured.events_per_second * args.seconds as f64;
    show_growth(bytes_under(&store).saturating_sub(size_before), events);
    match written {
        Ok(written) => written.show(events),
        Err(err) => println!("sled     (no figures from /metrics: {err})"),
    }
    show_rss(&rss);
    println!(
        "ratio    {:.2} of the no-op throughput; p50 x{:.1}, p99 x{:.1}, p99.9 x{:.1} of the no-op's",
        measured.requests_per_second / baseline.requests_per_second,
        measured.at(0.50) / baseline.at(0.50),
        measured.at(0.99) / baseline.at(0.99),
        measured.at(0.999) / baseline.at(0.999)
    );
    Ok(())
}
