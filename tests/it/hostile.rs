//! Hostile callers: what a client sends may cost the service only what its
//! limits say, with or without a key (issue 21). The memory checks run the
//! real `tierd` binary and read its peak resident size from `/proc`.

use std::path::Path;

use bytes::{Buf as _, BufMut as _, Bytes};
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

use crate::process::{Served, serve_with, shipped_rules};
use tierd::grpc::auth::hash_key;

const KEY: &str = "till-secret-0123456789abcdef";

/// Sends bytes as they are and takes the answer's bytes as they are: a
/// hostile client builds its message by hand, without materialising it.
#[derive(Debug, Default, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Calls `path` on `served` with `body` as the encoded request.
async fn send_raw(served: &Served, path: &'static str, body: Bytes, key: Option<&str>) -> Status {
    let mut grpc = tonic::client::Grpc::new(served.channel().await)
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(body);
    if let Some(key) = key {
        let header = format!("Bearer {key}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", header);
    }
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(request, path, RawCodec)
        .await
        .expect_err("refused")
}

/// A `RecordEventsRequest` of `count` empty events: 2 bytes each.
fn empty_events(count: usize) -> Bytes {
    Bytes::from([0x0a_u8, 0x00].repeat(count))
}

/// A kB figure of `/proc/PID/status` (`VmRSS`, `VmHWM`).
fn status_kb(served: &Served, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.child.id()))
        .expect("the server's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc status"))
}

/// A server process with one pos key, or none (open).
fn serve_keyed(dir: &Path, keyed: bool) -> Served {
    let config = dir.join("tierd.yaml");
    let keys = if keyed {
        format!(
            "api_keys:\n  - {{ name: till, role: pos, sha256: {} }}\n",
            hash_key(KEY)
        )
    } else {
        String::new()
    };
    std::fs::write(&config, keys).expect("config written");
    let config = config.display().to_string();
    serve_with(&dir.join("data"), shipped_rules(), &["--config", &config])
}

/// Three batches of 4,194,294 empty events (8,388,588 bytes) at once took
/// a server from 71 MB to 1.7 GB resident, and it stayed there: each was
/// decoded before anyone looked at it. Now the key is checked from the
/// headers and the events are counted in the bytes; the peak grows by the
/// buffers alone, and five more bursts reuse them instead of growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_empty_events_costs_its_bytes_not_their_decoding() {
    const GROWTH_KB: u64 = 64 * 1024;
    for (keyed, key, code) in [
        (true, None, Code::Unauthenticated),
        (false, None, Code::InvalidArgument),
        (true, Some(KEY), Code::InvalidArgument),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let served = serve_keyed(dir.path(), keyed);
        let before = status_kb(&served, "VmRSS");
        let body = empty_events(4_194_294);
        assert_eq!(body.len(), 8_388_588);
        let mut peaks = Vec::new();
        for _ in 0..6 {
            let calls = (0..3).map(|_| {
                send_raw(
                    &served,
                    "/loyalty.v1.Ingest/RecordEvents",
                    body.clone(),
                    key,
                )
            });
            for status in futures::future::join_all(calls).await {
                assert_eq!(status.code(), code, "keyed={keyed} {status:?}");
                if code == Code::InvalidArgument {
                    assert!(status.message().contains("got 4194294"), "{status:?}");
                }
            }
            peaks.push(status_kb(&served, "VmHWM"));
        }
        let after = status_kb(&served, "VmRSS");
        eprintln!(
            "keyed={keyed} key={}: resident {before} kB before, peaks {peaks:?} kB, then {after} kB",
            key.is_some(),
        );
        let first = peaks[0];
        let last = peaks[peaks.len() - 1];
        assert!(
            first <= before + GROWTH_KB,
            "keyed={keyed} key={key:?}: resident {before} kB before, peak {first} kB"
        );
        assert!(
            last <= first + 16 * 1024,
            "keyed={keyed} key={key:?}: bursts keep growing the server: {peaks:?} kB"
        );
    }
}

/// A caller without a key is refused before its body is read, however
/// large: UNAUTHENTICATED, not OUT_OF_RANGE.
#[tokio::test]
async fn an_oversized_call_without_a_key_is_unauthenticated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = serve_keyed(dir.path(), true);
    for path in [
        "/loyalty.v1.Loyalty/RecordPurchase",
        "/loyalty.v1.Ingest/RecordEvents",
    ] {
        let status = send_raw(&served, path, Bytes::from(vec![0; 9 << 20]), None).await;
        assert_eq!(status.code(), Code::Unauthenticated, "{path}: {status:?}");
        assert!(
            status.message().contains("authorization: Bearer"),
            "{status:?}"
        );
        let status = send_raw(&served, path, Bytes::from(vec![0; 9 << 20]), Some(KEY)).await;
        assert_eq!(status.code(), Code::OutOfRange, "{path}: {status:?}");
    }
}

/// Each RPC is capped at its own largest valid request: a rules file at its
/// limit may be simulated, but GetMember is held to the single-request cap
/// (the Loyalty service's own tonic limit is the largest of its RPCs').
#[tokio::test]
async fn each_rpc_is_capped_at_its_own_largest_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = serve_keyed(dir.path(), false);
    let mut get_member = vec![0x0a_u8];
    get_member.extend(prost_length(200 * 1024));
    get_member.extend(vec![b'm'; 200 * 1024]);
    let status = send_raw(
        &served,
        "/loyalty.v1.Loyalty/GetMember",
        Bytes::from(get_member),
        None,
    )
    .await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("limit"), "{status:?}");
    let mut client = served.client().await;
    let rules = std::fs::read_to_string(shipped_rules().join("example.yaml")).expect("rules");
    let padding = "#".repeat(200 * 1024);
    let refused = client
        .simulate_rules(tierd::grpc::pb::SimulateRulesRequest {
            rules_text: format!("{rules}\n{padding}\n"),
            as_of: None,
        })
        .await;
    assert!(
        refused.is_ok(),
        "a 200 KiB rules file is simulated: {refused:?}"
    );
    let too_large = client
        .simulate_rules(tierd::grpc::pb::SimulateRulesRequest {
            rules_text: "#".repeat(tierd::rules::MAX_FILE_BYTES + 1),
            as_of: None,
        })
        .await
        .expect_err("over the rules limit");
    assert!(
        too_large.message().contains("1 MiB"),
        "{:?}",
        too_large.message()
    );
}

/// A protobuf length prefix (varint).
fn prost_length(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(len as u64, &mut out);
    out
}

/// `authorization: bearer KEY`: the scheme is case-insensitive.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = serve_keyed(dir.path(), true);
    let mut client = served.client().await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let mut request = tonic::Request::new(crate::process::purchase_now(
            "m",
            &format!("t-{scheme}"),
            1_000,
        ));
        let header = format!("{scheme} {KEY}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", header);
        client.record_purchase(request).await.expect(scheme);
    }
}

/// CPU time the server process has used, in clock ticks (1/100 s).
fn cpu_ticks(served: &Served) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", served.child.id()))
        .expect("the server's /proc stat");
    // Fields after the command name (which is in brackets): utime is the
    // 12th, stime the 13th.
    let after = stat.rsplit(')').next().expect("stat fields");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<u64>().expect("a tick count");
    ticks(11) + ticks(12)
}

/// The share of one core the server used over the next second.
async fn cpu_share_over_a_second(served: &Served) -> f64 {
    let before = cpu_ticks(served);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    (cpu_ticks(served) - before) as f64 / 100.0
}

/// `count` connections from `source` that never send a byte.
async fn silent_sockets(address: &str, source: &str, count: usize) -> Vec<tokio::net::TcpStream> {
    let target: std::net::SocketAddr = address.parse().expect("server address");
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{source}:0").parse().expect("source address"))
            .expect("bind");
        sockets.push(socket.connect(target).await.expect("connect"));
    }
    sockets
}

/// A server with at most 1,024 file descriptors (as `ulimit -n` often
/// is), and the given `limits:` section.
fn serve_with_descriptors(dir: &Path, limits: &str) -> Served {
    let config = dir.join("tierd.yaml");
    std::fs::write(&config, format!("limits: {limits}\n")).expect("config written");
    let mut command = std::process::Command::new("prlimit");
    command.args(["--nofile=1024", env!("CARGO_BIN_EXE_tierd")]);
    let config = config.display().to_string();
    crate::process::serve_by(
        command,
        &tierd::store::Location::Sled(dir.join("data")),
        shipped_rules(),
        &["--config", &config],
    )
}

/// 2,000 connections that send nothing, from one address, took every file
/// descriptor the process had: its accept loop then spun and new tills
/// timed out. Now one peer holds at most its share, silent connections
/// are closed after the handshake timeout, and another client is served
/// at once while the server idles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_crowd_out_a_till() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = serve_with_descriptors(
        dir.path(),
        "{ max_connections_per_peer: 64, handshake_timeout: 2s }",
    );
    let mut silent = silent_sockets(&served.address, "127.0.0.2", 2_000).await;
    let started = std::time::Instant::now();
    let answered = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let mut client = served.client().await;
        client
            .record_purchase(crate::process::purchase_now("m", "t1", 1_000))
            .await
    })
    .await;
    assert!(
        matches!(answered, Ok(Ok(_))),
        "a till's purchase within 1 s: {answered:?} after {:?}",
        started.elapsed()
    );
    let share = cpu_share_over_a_second(&served).await;
    assert!(share < 0.05, "idle, the server used {share} of a core");
    // The first 64 were let in (the server sends its HTTP/2 settings);
    // silent, they are closed after 2 s.
    let first = silent.first_mut().expect("a silent socket");
    let mut sent = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(first, &mut sent),
    )
    .await;
    assert!(
        closed.is_ok(),
        "a silent connection is closed after the handshake timeout: {closed:?}"
    );
}

/// Out of file descriptors, accepting pauses instead of spinning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_server_waits_instead_of_spinning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = serve_with_descriptors(
        dir.path(),
        "{ max_connections_per_peer: 100, handshake_timeout: 30s }",
    );
    let mut sockets = Vec::new();
    for source in 2..=13 {
        sockets.extend(silent_sockets(&served.address, &format!("127.0.1.{source}"), 100).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let share = cpu_share_over_a_second(&served).await;
    drop(sockets);
    let (_, log) = crate::process::stop_with_log(served, "TERM");
    assert!(
        log.iter()
            .any(|line| line.contains("out of file descriptors")),
        "1,200 connections against 1,024 descriptors: the limit was reached"
    );
    assert!(
        share < 0.05,
        "out of descriptors, the server used {share} of a core"
    );
}

/// A `WatchTierChanges` stream outlives its handler: open streams count
/// against a limit of their own, and a closed one gives its place back.
#[tokio::test]
async fn open_streams_count_against_their_own_limit() {
    use tierd::grpc::{ServeLimits, ServeOptions, pb};
    let mut server = crate::harness::TestServer::with_options(ServeOptions {
        limits: ServeLimits {
            max_watch_streams: 3,
            max_in_flight: 3,
            ..ServeLimits::default()
        },
        ..ServeOptions::default()
    })
    .await;
    let watch = || pb::WatchTierChangesRequest::default();
    let mut open = Vec::new();
    for _ in 0..3 {
        let stream = server.client.watch_tier_changes(watch()).await;
        open.push(stream.expect("within the limit").into_inner());
    }
    let refused = server
        .client
        .watch_tier_changes(watch())
        .await
        .expect_err("over the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("max_watch_streams"),
        "{refused:?}"
    );
    // The streams hold no in-flight place: purchases are still answered.
    for n in 0..5 {
        server.buy("m", &format!("t{n}"), 1_000).await;
    }
    drop(open.pop());
    let reopened = async {
        loop {
            match server.client.watch_tier_changes(watch()).await {
                Ok(stream) => return stream,
                Err(status) if status.code() == Code::ResourceExhausted => {
                    tokio::task::yield_now().await;
                }
                Err(status) => panic!("{status:?}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), reopened)
        .await
        .expect("a closed stream gives its place back");
}

/// A bonus script answering `i64::MAX` saturated the balance; now the
/// purchase is refused whole, naming the rule and the ceiling, and a
/// purchase within the ceiling still counts exactly.
#[tokio::test]
async fn points_over_the_ceiling_refuse_the_purchase_naming_the_rule() {
    const GREEDY: &str = "\
program: greedy
version: g1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
  max_points_per_event: 500
  bonus: 'if amount >= 100000 { 9223372036854775807 } else { 0 }'
tiers:
  - id: bronze
";
    let mut server = crate::harness::TestServer::with_rules(GREEDY).await;
    let refused = server
        .client
        .record_purchase(server.purchase("m", "t1", 100_000))
        .await
        .expect_err("over the ceiling");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("earning.bonus"), "{refused:?}");
    assert!(
        refused.message().contains("max_points_per_event (500)"),
        "{refused:?}"
    );
    let answered = server.buy("m", "t2", 40_000).await;
    assert_eq!(answered.points_earned, 400);
    let member = server.member("m").await;
    assert_eq!(member.points_balance, 400);
    assert_eq!(member.lifetime_value_minor, 40_000);
}

/// A bonus script that sorts a copy of a 1,000-item array in a loop: each
/// sort is one operation, so only the time budget stops it.
const SLOW_RULES: &str = "\
program: slow
version: s1
currency: EUR
window: rolling 12 months
script_time_limit: 5ms
earning:
  points_per_unit: 1
  bonus: |
    if amount < 500000 { return 0; }
    let a = []; for i in 0..1000 { a.push((i * 7919) % 1000) }
    let n = 0; for k in 0..100000 { let b = a; b.sort(); n += 1 } n
tiers:
  - id: bronze
  - id: silver
    qualify:
      script: 'let a = []; for i in 0..1000 { a.push((i * 7919) % 1000) } let n = 0; for k in 0..100000 { let b = a; b.sort(); n += 1 } n > 5'
";

/// Sixteen purchases whose bonus script runs long, and one unrelated 1.00
/// purchase behind them: each script is stopped at 5 ms (its bonus counts
/// as 0), so the unrelated purchase waited 3.85 s before and is answered
/// at once now; `SimulateRules` names the slow scripts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_script_is_stopped_at_its_budget_and_named() {
    let server = crate::harness::TestServer::with_rules(SLOW_RULES).await;
    let slow = (0..16).map(|n| {
        let mut client = server.client.clone();
        let request = server.purchase(&format!("slow-{n}"), &format!("s{n}"), 500_000);
        async move { client.record_purchase(request).await }
    });
    let mut client = server.client.clone();
    let unrelated = server.purchase("other", "u1", 100);
    let started = std::time::Instant::now();
    let (slow, unrelated) = tokio::join!(futures::future::join_all(slow), async {
        let answer = client.record_purchase(unrelated).await;
        (answer, started.elapsed())
    });
    for answer in slow {
        let answer = answer.expect("recorded").into_inner();
        assert_eq!(answer.points_earned, 5_000, "the stopped bonus counts as 0");
    }
    let (answer, waited) = unrelated;
    answer.expect("recorded");
    assert!(
        waited < std::time::Duration::from_secs(1),
        "waited {waited:?}"
    );
    let simulated = client
        .simulate_rules(tierd::grpc::pb::SimulateRulesRequest {
            rules_text: SLOW_RULES.replace("s1", "s2"),
            as_of: None,
        })
        .await
        .expect("simulated")
        .into_inner();
    let slow: Vec<&str> = simulated
        .slow_scripts
        .iter()
        .map(|s| s.at.as_str())
        .collect();
    assert_eq!(slow, ["tiers.silver.qualify"], "{simulated:?}");
    let script = &simulated.slow_scripts[0];
    assert_eq!(script.runs, 17, "one run per member");
    assert_eq!(script.budget_micros, 5_000);
    assert!(script.slowest_micros >= 5_000, "{script:?}");
}

/// A 50 MB rules file was accepted, and every version's text came back in
/// one `ListRulesVersions` answer (101 MB after two of them). Now a rules
/// file over 1 MiB is refused with its size, and versions are listed a page
/// at a time without their text, which comes one version at a time.
#[tokio::test]
async fn rules_files_are_capped_and_versions_are_listed_by_page() {
    use tierd::grpc::pb;
    let good = std::fs::read_to_string(crate::harness::example_rules()).expect("rules");
    // A copy of the rules of its own, which the test edits.
    let mut server = crate::harness::TestServer::on_example_copy().await;
    for n in 2..=4 {
        assert!(server.relabel_rules(n).await.changed);
    }
    let padded = format!("{good}\n#{}\n", "x".repeat(tierd::rules::MAX_FILE_BYTES));
    std::fs::write(server.rules_path(), padded).expect("oversized rules");
    let refused = server
        .client
        .reload_rules(pb::ReloadRulesRequest {})
        .await
        .expect_err("over 1 MiB");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("1 MiB"), "{refused:?}");

    let list = |page_token: String| pb::ListRulesVersionsRequest {
        page_size: 3,
        page_token,
    };
    let first = server
        .client
        .list_rules_versions(list(String::new()))
        .await
        .expect("page 1")
        .into_inner();
    let second = server
        .client
        .list_rules_versions(list(first.next_page_token.clone()))
        .await
        .expect("page 2")
        .into_inner();
    let labels: Vec<(u64, &str)> = first
        .versions
        .iter()
        .chain(&second.versions)
        .map(|v| (v.position, v.version.as_str()))
        .collect();
    assert_eq!(
        labels,
        [(1, "2026.1"), (2, "2026.2"), (3, "2026.3"), (4, "2026.4")]
    );
    assert!(second.next_page_token.is_empty(), "the last page says so");
    assert!(first.versions.iter().all(|v| v.text.is_empty()));
    let third = server
        .client
        .get_rules_version(pb::GetRulesVersionRequest { position: 3 })
        .await
        .expect("one version")
        .into_inner();
    assert!(third.text.contains("version: \"2026.3\""));
    let missing = server
        .client
        .get_rules_version(pb::GetRulesVersionRequest { position: 9 })
        .await
        .expect_err("no such version");
    assert_eq!(missing.code(), Code::NotFound);
    let too_many = server
        .client
        .list_rules_versions(pb::ListRulesVersionsRequest {
            page_size: 1_000,
            page_token: String::new(),
        })
        .await
        .expect_err("over the page limit");
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert!(too_many.message().contains("page_size"), "{too_many:?}");
}

/// `kill -9` while a large rules file is being reloaded, then a restart:
/// from the first answer on, one version is in force (the last one
/// recorded), it never flips, and a node alone on its sled directory never
/// says another node put rules live. `TIERD_CRASH_LOOPS` sets the rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_during_a_reload_one_version_is_in_force_and_stays() {
    use tierd::grpc::pb;
    let rounds: u64 = std::env::var("TIERD_CRASH_LOOPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.yaml");
    let example = std::fs::read_to_string(crate::harness::example_rules()).expect("rules");
    std::fs::write(&rules, &example).expect("rules copy");
    let data = dir.path().join("data");
    let mut served = crate::process::serve_rules(&data, &rules);
    // Near the size limit, so that a reload takes long enough to be cut.
    let padding = format!("# {}\n", "x".repeat(800 * 1024));
    for round in 1..=rounds {
        let version = format!("crash-{round}");
        let text = example.replace("version: \"2026.1\"", &format!("version: \"{version}\""));
        std::fs::write(&rules, format!("{text}{padding}")).expect("edit rules");
        let mut client = served.client().await;
        let reload =
            tokio::spawn(async move { client.reload_rules(pb::ReloadRulesRequest {}).await });
        tokio::time::sleep(std::time::Duration::from_millis(40 * round % 400)).await;
        crate::process::crash(served);
        reload.abort();
        served = crate::process::serve_rules(&data, &rules);
        let mut client = served.client().await;
        let mut seen = Vec::new();
        let polled = std::time::Instant::now();
        while polled.elapsed() < tierd::app::RULES_POLL * 2 {
            let rules = client
                .get_rules(pb::GetRulesRequest {})
                .await
                .expect("rules")
                .into_inner();
            seen.push(rules.active.expect("a version in force").version);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        seen.dedup();
        assert_eq!(
            seen.len(),
            1,
            "round {round}: the version in force flipped: {seen:?}"
        );
        let recorded = last_recorded(&mut client).await;
        assert_eq!(
            seen[0], recorded,
            "round {round}: the last recorded version is in force"
        );
        let (_, log) = crate::process::stop_with_log(served, "TERM");
        assert!(
            !log.iter().any(|line| line.contains("another node")),
            "round {round}: a single sled node followed 'another node'"
        );
        served = crate::process::serve_rules(&data, &rules);
    }
}

/// The label of the last rules version recorded, paging to the end.
async fn last_recorded(
    client: &mut tierd::grpc::pb::loyalty_client::LoyaltyClient<tonic::transport::Channel>,
) -> String {
    use tierd::grpc::pb;
    let mut page_token = String::new();
    let mut last = String::new();
    loop {
        let page = client
            .list_rules_versions(pb::ListRulesVersionsRequest {
                page_size: 200,
                page_token,
            })
            .await
            .expect("versions")
            .into_inner();
        if let Some(version) = page.versions.last() {
            last.clone_from(&version.version);
        }
        if page.next_page_token.is_empty() {
            return last;
        }
        page_token = page.next_page_token;
    }
}
