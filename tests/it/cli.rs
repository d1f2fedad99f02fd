//! The `tierd` binary: a bad rules file stops `serve` at start-up with
//! file:line:column, and `rules check` reports the same.

use std::process::Command;

use tempfile::TempDir;

fn tierd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tierd"))
}

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
}
