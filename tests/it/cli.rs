//! The `tierd` binary: a bad rules file stops `serve` at start-up with
//! file:line:column, and `rules check` reports every problem of a file.

use crate::process::{send_signal, serve, serve_with, stop_with_log, terminate, tierd};

use tempfile::TempDir;

const BROKEN: &str = "\
program: p
version: v1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
tiers:
  - id: bronze
  - id: silver
    qualify:
      purchase_volum: 100
";

#[test]
fn serve_refuses_to_start_on_an_invalid_rules_file() {
    let dir = TempDir::new().expect("temp dir");
    let rules = dir.path().join("broken.yaml");
    std::fs::write(&rules, BROKEN).expect("write rules");
    let output = tierd()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--rules")
        .arg(&rules)
        .output()
        .expect("tierd runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:11:7: error: tiers[1].qualify: unknown condition `purchase_volum`",
        rules.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains("did you mean `purchase_volume`"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was opened");
}

#[test]
fn rules_check_passes_the_example_and_fails_a_broken_file() {
    let ok = tierd()
        .args([
            "rules",
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/rules/example.yaml"),
        ])
        .output()
        .expect("tierd runs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .contains("ok: program acme-rewards version 2026.1, 4 tiers")
    );

    let dir = TempDir::new().expect("temp dir");
    let rules = dir.path().join("broken.yaml");
    std::fs::write(&rules, BROKEN.replace("EUR", "EURO")).expect("write rules");
    let failed = tierd()
        .args(["rules", "check"])
        .arg(&rules)
        .output()
        .expect("tierd runs");
    assert!(!failed.status.success());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(
        stdout.contains(":3:11: error: currency: unknown currency code"),
        "{stdout}"
    );
    assert!(
        stdout.contains(":11:7: error: tiers[1].qualify: unknown condition `purchase_volum`"),
        "every problem in one run: {stdout}"
    );
    assert_eq!(stdout.lines().count(), 2, "nothing invented: {stdout}");
}

// Multi-threaded: stopping blocks its thread while the client's connection
// task must still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_service_cleanly_and_nothing_answered_is_lost() {
    stops_cleanly_on("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_service_cleanly_and_nothing_answered_is_lost() {
    stops_cleanly_on("INT").await;
}

async fn stops_cleanly_on(signal: &str) {
    use tierd::grpc::{convert::timestamp, pb};
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("data");
    let served = serve(&data);
    let mut client =
        pb::loyalty_client::LoyaltyClient::connect(format!("http://{}", served.address))
            .await
            .expect("connect");
    for i in 0..20 {
        client
            .record_purchase(pb::RecordPurchaseRequest {
                member_id: "kim".into(),
                transaction_id: format!("t{i}"),
                amount_minor: 2_500,
                currency: "EUR".into(),
                occurred_at: Some(timestamp(chrono::Utc::now())),
                channel: "pos".into(),
                store_id: String::new(),
                tags: vec![],
                lines: Vec::new(),
            })
            .await
            .expect("recorded");
    }
    drop(client);
    let (status, log) = stop_with_log(served, signal);
    assert!(status.success(), "exit status {status:?} after SIG{signal}");
    assert_stops_in_order(&log);

    let served = serve(&data);
    let mut client =
        pb::loyalty_client::LoyaltyClient::connect(format!("http://{}", served.address))
            .await
            .expect("connect");
    let member = client
        .get_member(pb::GetMemberRequest {
            member_id: "kim".into(),
        })
        .await
        .expect("member survived")
        .into_inner();
    assert_eq!(member.purchase_count, 20);
    assert_eq!(member.lifetime_value_minor, 50_000);
    assert_eq!(member.tier_id, "silver");
    drop(client);
    let status = terminate(served);
    assert!(status.success(), "exit status {status:?} after SIGTERM");
}

/// Shutdown is explicit and in order: stop serving, stop and join the
/// background tasks, flush, and only then say "stopped", last.
fn assert_stops_in_order(log: &[String]) {
    let position = |needle: &str| {
        log.iter()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the log: {log:#?}"))
    };
    let steps = [
        position("shutting down: draining in-flight requests"),
        position("rules watcher and reloader stopped"),
        position("every answered write is on disk"),
        position("tierd stopped"),
    ];
    assert!(steps.is_sorted(), "out of order {steps:?}: {log:#?}");
    assert_eq!(
        steps[3],
        log.len() - 1,
        "stopped is the last word: {log:#?}"
    );
}

#[test]
fn without_api_keys_serve_refuses_an_address_beyond_loopback() {
    let dir = TempDir::new().expect("temp dir");
    let output = tierd()
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--rules")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/rules"))
        .output()
        .expect("tierd runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without api keys"),
        "{stderr}"
    );
}

/// Edits the rules file of a running binary, optionally signals it, and
/// waits (a bounded number of looks) for the new version to be in force.
async fn edited_rules_go_live(signal: Option<&str>) {
    // With a signal, the watcher is off: the signal alone must do it.
    let flags: &[&str] = if signal.is_some() {
        &["--no-watch"]
    } else {
        &[]
    };
    use tierd::grpc::pb;
    let dir = TempDir::new().expect("temp dir");
    let rules = dir.path().join("rules.yaml");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/example.yaml"))
            .expect("example rules");
    std::fs::write(&rules, &example).expect("write rules");
    let served = serve_with(&dir.path().join("data"), &rules, flags);
    let mut client =
        pb::loyalty_client::LoyaltyClient::connect(format!("http://{}", served.address))
            .await
            .expect("connect");
    std::fs::write(
        &rules,
        example.replace("version: \"2026.1\"", "version: \"2026.2\""),
    )
    .expect("edit");
    if let Some(signal) = signal {
        send_signal(&served, signal);
    }
    // The reload happens asynchronously: look a bounded number of times.
    let mut version = String::new();
    for _ in 0..150 {
        let active = client
            .get_rules(pb::GetRulesRequest {})
            .await
            .expect("rules")
            .into_inner()
            .active
            .expect("active");
        version = active.version;
        if version == "2026.2" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(version, "2026.2");
    drop(client);
    assert!(terminate(served).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_rules_file() {
    edited_rules_go_live(Some("HUP")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_rules_file_is_picked_up_by_the_watcher() {
    edited_rules_go_live(None).await;
}

#[test]
fn rules_check_warns_without_failing_and_speaks_json() {
    let dir = TempDir::new().expect("temp dir");
    let rules = dir.path().join("ladder.yaml");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/example.yaml"))
            .expect("example rules");
    // Gold now lets members in with fewer points than it takes to stay.
    std::fs::write(
        &rules,
        example.replace("qualifying_points: 1500", "qualifying_points: 300"),
    )
    .expect("write");
    let text = tierd()
        .args(["rules", "check"])
        .arg(&rules)
        .output()
        .expect("tierd runs");
    assert!(text.status.success(), "warnings do not fail the check");
    let stdout = String::from_utf8_lossy(&text.stdout);
    let gold_line = example
        .lines()
        .position(|l| l.contains("id: gold"))
        .expect("gold")
        + 1;
    let expected = format!(
        ":{gold_line}:5: warning: retain is stricter than qualify: gold keeps qualifying_points at 1200, above the 300"
    );
    assert!(stdout.contains(&expected), "{stdout}");

    let (passed, diagnostics) = check_json(&rules);
    assert!(passed, "warnings do not fail the check");
    assert_eq!(diagnostics[0]["severity"], "warning");
    assert!(
        diagnostics[0]["line"].as_u64().is_some_and(|l| l > 0),
        "{diagnostics}"
    );

    std::fs::write(&rules, BROKEN.replace("EUR", "EURO")).expect("write");
    let (passed, diagnostics) = check_json(&rules);
    assert!(!passed);
    let places: Vec<(u64, u64, &str)> = diagnostics
        .as_array()
        .expect("a list of diagnostics")
        .iter()
        .map(|d| {
            let number = |name: &str| d[name].as_u64().unwrap_or(0);
            let severity = d["severity"].as_str().unwrap_or("");
            (number("line"), number("column"), severity)
        })
        .collect();
    assert_eq!(
        places,
        [(3, 11, "error"), (11, 7, "error")],
        "{diagnostics}"
    );
}

/// `tierd rules check --format json FILE`: whether it passed, and what it printed.
fn check_json(rules: &std::path::Path) -> (bool, serde_json::Value) {
    let json = tierd()
        .args(["rules", "check", "--format", "json"])
        .arg(rules)
        .output()
        .expect("tierd runs");
    let diagnostics = serde_json::from_slice(&json.stdout).expect("json");
    (json.status.success(), diagnostics)
}

#[test]
fn rules_test_runs_the_cases_shipped_with_the_rules() {
    let shipped = tierd()
        .args([
            "rules",
            "test",
            concat!(env!("CARGO_MANIFEST_DIR"), "/rules"),
        ])
        .output()
        .expect("tierd runs");
    let stdout = String::from_utf8_lossy(&shipped.stdout);
    assert!(shipped.status.success(), "{stdout}");
    assert!(stdout.contains("22 passed, 0 failed"), "{stdout}");

    let dir = TempDir::new().expect("temp dir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/rules/example.yaml"),
        dir.path().join("p.yaml"),
    )
    .expect("copy rules");
    std::fs::write(
        dir.path().join("p.test.yaml"),
        "tests:\n  - name: wishful\n    metrics: { qualifying_points: 10 }\n    expect_tier: gold\n",
    )
    .expect("write cases");
    let failing = tierd()
        .args(["rules", "test"])
        .arg(dir.path())
        .output()
        .expect("tierd runs");
    let stdout = String::from_utf8_lossy(&failing.stdout);
    assert!(!failing.status.success());
    assert!(
        stdout.contains("FAIL  wishful: expected tier gold, got bronze"),
        "{stdout}"
    );
}

/// One staging is logged once, with its time written as a time: the
/// watcher and reloads seeing one edit several times said "rules staged"
/// three times, with `effective_from=Some(...)`. (A second worker lets the
/// dropped client's connection close while the test waits for the exit.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_file_is_logged_once_with_a_readable_time() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules = dir.path().join("rules.yaml");
    let example = std::fs::read_to_string(crate::harness::example_rules()).expect("rules");
    std::fs::write(&rules, &example).expect("rules copy");
    let served = crate::process::serve_rules(&dir.path().join("data"), &rules);
    let staged = example.replace(
        "version: \"2026.1\"",
        "version: \"2099.1\"\neffective_from: 2099-01-01T00:00:00Z",
    );
    std::fs::write(&rules, staged).expect("stage rules");
    let mut client = served.client().await;
    for _ in 0..3 {
        client
            .reload_rules(tierd::grpc::pb::ReloadRulesRequest {})
            .await
            .expect("staged");
    }
    drop(client);
    let (_, log) = crate::process::stop_with_log(served, "TERM");
    let staged: Vec<&String> = log.iter().filter(|l| l.contains("rules staged")).collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert!(
        staged[0].contains("effective_from=2099-01-01T00:00:00+00:00"),
        "{staged:?}"
    );
}

/// Every command that writes to stdout ends quietly with status 0 when
/// its reader has gone away (`tierd ... | head -1`): here the pipe is
/// closed before the command writes anything, so every write fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_every_command_quietly() {
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("data");
    let served = serve(&data);
    let mut client = served.client().await;
    client
        .record_purchase(crate::process::purchase_now("m", "t1", 60_000))
        .await
        .expect("recorded");
    drop(client);
    assert!(terminate(served).success());
    let data = data.display().to_string();
    let rules = crate::process::shipped_rules().display().to_string();
    let file = crate::harness::example_rules().display().to_string();
    let commands: Vec<Vec<&str>> = vec![
        vec!["rules", "check", &rules],
        vec!["rules", "check", "--format", "json", &rules],
        vec!["rules", "test", &rules],
        vec!["keys", "new", "--name", "till", "--role", "pos"],
        vec!["simulate", "--rules", &file, "--data", &data],
        vec![
            "simulate", "--rules", &file, "--data", &data, "--format", "csv",
        ],
        vec![
            "simulate", "--rules", &file, "--data", &data, "--format", "json",
        ],
        vec!["report", "distribution", "--data", &data],
        vec!["report", "distribution", "--data", &data, "--format", "csv"],
        vec![
            "report",
            "distribution",
            "--data",
            &data,
            "--format",
            "json",
        ],
        vec![
            "report",
            "rfm",
            "--members",
            "--data",
            &data,
            "--format",
            "csv",
        ],
    ];
    for args in commands {
        let mut child = tierd()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tierd runs");
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("tierd exits");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success()
                && !stderr.contains("Broken pipe")
                && !stderr.contains("panicked"),
            "tierd {}: {:?}\n{stderr}",
            args.join(" "),
            output.status
        );
    }
}

/// The service's refusals as the CLI prints them: the message once,
/// plainly (not tonic's `code: '...', message: "..."`), and how to give a
/// key when the service wants one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_the_service_s_refusals_plainly() {
    let dir = TempDir::new().expect("temp dir");
    let config = dir.path().join("tierd.yaml");
    let key = "reports-secret-0123456789abcdef";
    std::fs::write(
        &config,
        format!(
            "api_keys:\n  - {{ name: crm, role: reporting, sha256: {} }}\n",
            tierd::grpc::auth::hash_key(key)
        ),
    )
    .expect("config");
    let config = config.display().to_string();
    let served = serve_with(
        &dir.path().join("data"),
        crate::process::shipped_rules(),
        &["--config", &config],
    );
    let server = format!("http://{}", served.address);
    let report = |args: &[&str]| {
        let output = tierd()
            .args(["report", "distribution", "--server", &server])
            .args(args)
            .env_remove("TIERD_API_KEY")
            .output()
            .expect("tierd runs");
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let no_key = report(&[]);
    assert_eq!(
        no_key.trim(),
        "tierd: no api key: send the header `authorization: Bearer <api key>`: \
         give an API key with --key KEY (or TIERD_API_KEY)"
    );
    let too_early = report(&["--key", key, "--as-of", "2001-01-01"]);
    assert!(too_early.starts_with("tierd: as_of: "), "{too_early}");
    assert!(!too_early.contains("code:"), "{too_early}");
    assert_eq!(too_early.matches("as_of").count(), 1, "{too_early}");
    terminate(served);
}

/// `tierd simulate --server` asks the running service (`SimulateRules`)
/// and prints what a simulation on its stopped data directory prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_asks_a_running_service_as_it_reads_a_directory() {
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("data");
    let served = serve(&data);
    let mut client = served.client().await;
    for (member, amount) in [("a", 10_000), ("b", 60_000), ("c", 200_000)] {
        client
            .record_purchase(crate::process::purchase_now(member, member, amount))
            .await
            .expect("recorded");
    }
    drop(client);
    let rules = crate::harness::example_rules().display().to_string();
    let simulate = |source: &[&str]| {
        let output = tierd()
            .args(["simulate", "--rules", &rules, "--format", "csv"])
            .args(source)
            .output()
            .expect("tierd runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let server = format!("http://{}", served.address);
    let asked = simulate(&["--server", &server]);
    assert!(terminate(served).success());
    let read = simulate(&["--data", &data.display().to_string()]);
    assert_eq!(asked, read);
    assert!(asked.contains("\ntier,members_before"), "{asked}");
}

/// `tierd member export` asks the running service (`ExportMember`) and
/// reads a stopped data directory alike: the same document but for the
/// moment it was made; an unknown member is an error that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_export_asks_a_running_service_as_it_reads_a_directory() {
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("data");
    let served = serve(&data);
    let mut client = served.client().await;
    for txn in ["t1", "t2"] {
        client
            .record_purchase(crate::process::purchase_now("ann", txn, 10_000))
            .await
            .expect("recorded");
    }
    drop(client);
    let export = |source: &[&str]| {
        let output = tierd()
            .args(["member", "export", "ann"])
            .args(source)
            .output()
            .expect("tierd runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let mut document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        document["exported_at"] = serde_json::Value::Null;
        document
    };
    let server = format!("http://{}", served.address);
    let asked = export(&["--server", &server]);
    assert!(terminate(served).success());
    let data = data.display().to_string();
    let read = export(&["--data", &data]);
    assert_eq!(asked, read);
    assert_eq!(asked["receipts"][1]["transaction_id"], "t2");
    let unknown = tierd()
        .args(["member", "export", "nobody", "--data", &data])
        .output()
        .expect("tierd runs");
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("no member \"nobody\""), "{stderr}");
}

/// A file edited without a new version label is refused wherever it is
/// checked against the history: `rules check --server` while the service
/// runs, `rules check --data` once it stopped, and a restart on it.
#[test]
fn a_changed_file_under_a_recorded_label_is_refused_by_check_and_start() {
    let dir = TempDir::new().expect("temp dir");
    let rules = dir.path().join("rules.yaml");
    let example = std::fs::read_to_string(crate::harness::example_rules()).expect("rules");
    std::fs::write(&rules, &example).expect("rules copy");
    let edited = dir.path().join("edited.yaml");
    std::fs::write(
        &edited,
        example.replace("points_per_unit: 1 ", "points_per_unit: 2 "),
    )
    .expect("edited copy");
    let data = dir.path().join("data");
    let served = crate::process::serve_rules(&data, &rules);
    let refused = "version \"2026.1\" was put live on";
    let check = |history: &[&str]| {
        let output = tierd()
            .args(["rules", "check"])
            .arg(&edited)
            .args(history)
            .output()
            .expect("tierd runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let server = format!("http://{}", served.address);
    let (passed, said) = check(&["--server", &server]);
    assert!(!passed && said.contains(refused), "{said}");
    assert!(
        said.starts_with(&format!("{}:8:1: error:", edited.display())),
        "{said}"
    );
    assert!(terminate(served).success());
    let (passed, said) = check(&["--data", &data.display().to_string()]);
    assert!(!passed && said.contains(refused), "{said}");
    // Without a history to compare with, the file itself is fine.
    let (passed, said) = check(&[]);
    assert!(passed, "{said}");
    let output = tierd()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-watch", "--data"])
        .arg(&data)
        .arg("--rules")
        .arg(&edited)
        .output()
        .expect("tierd runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(refused), "{stderr}");
}

/// A seeded directory carries the rules it was seeded with: a report on it
/// from another directory (no `./rules` at hand) reads it under them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_on_a_seeded_directory_needs_no_rules_file() {
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("seeded");
    {
        let store = tierd::store::Store::open(&data).expect("store");
        let rules = tierd::rules::load(crate::harness::example_rules().as_path()).expect("rules");
        let written = tierd::tools::seed::seed(&store, &rules, 50, 7, chrono::Utc::now())
            .await
            .expect("seeded");
        assert_eq!(written, 50);
        store.sync().await.expect("synced");
    }
    let output = tierd()
        .current_dir(dir.path())
        .args([
            "report",
            "distribution",
            "--format",
            "csv",
            "--data",
            "seeded",
        ])
        .output()
        .expect("tierd runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let csv = String::from_utf8_lossy(&output.stdout);
    assert!(
        csv.contains(",2026.1,EUR,"),
        "under the seeded rules: {csv}"
    );
}
