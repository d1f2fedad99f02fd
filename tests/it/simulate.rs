//! What-if simulation over the stored members: the right migrations, and
//! provably read-only (the data is byte-identical before and after).

use crate::{
    harness::TestServer,
    process::{backup_bytes, store_arg, tierd},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_reports_migrations_and_writes_nothing() {
    let mut server = TestServer::start().await;
    server.buy("ann", "p1", 30_000).await; // 325 points: bronze
    server.buy("ben", "p2", 60_000).await; // 625 points: silver
    server.buy("cid", "p3", 10_000).await; // 100 points: bronze
    let store = server.store().clone();
    let _dir = server.stop().await;
    let place = ["--store".to_owned(), store_arg(&store)];
    let work = tempfile::TempDir::new().expect("temp dir");
    let candidate = work.path().join("candidate.yaml");
    let example = std::fs::read_to_string(crate::harness::example_rules()).expect("example");
    std::fs::write(
        &candidate,
        example
            .replace("version: \"2026.1\"", "version: \"2027.1\"")
            .replace("qualifying_points: 500", "qualifying_points: 300"),
    )
    .expect("write candidate");

    let before = backup_bytes(&store, &work.path().join("before"));
    let output = tierd()
        .args([
            "simulate",
            "--format",
            "json",
            "--as-of",
            "2026-03-02T12:00:00Z",
            "--rules",
        ])
        .arg(&candidate)
        .args(&place)
        .output()
        .expect("tierd runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = backup_bytes(&store, &work.path().join("after"));
    assert_eq!(before, after, "simulate must not write");

    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["candidate_version"], "2027.1");
    assert_eq!(report["members"], 3);
    let moved: Vec<&serde_json::Value> = report["matrix"]
        .as_array()
        .expect("cells")
        .iter()
        .filter(|c| c["from"] != c["to"])
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(
        (moved[0]["from"].as_str(), moved[0]["to"].as_str()),
        (Some("bronze"), Some("silver"))
    );
    assert_eq!(moved[0]["sample"], serde_json::json!(["ann"]));
    assert_eq!(report["after"]["silver"]["members"], 2);
    assert_eq!(report["after"]["silver"]["points"], 325 + 625);

    let table = tierd()
        .args(["simulate", "--as-of", "2026-03-02T12:00:00Z", "--rules"])
        .arg(&candidate)
        .args(&place)
        .output()
        .expect("tierd runs");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("3 members, 1 would change tier"), "{text}");
    assert!(text.contains("bronze -> silver: 1 (e.g. ann)"), "{text}");
}

#[tokio::test]
async fn the_simulate_rules_call_answers_from_the_running_service() {
    let mut server = TestServer::start().await;
    server.buy("ann", "p1", 30_000).await; // 325 points: bronze
    server.buy("ben", "p2", 60_000).await; // 625 points: silver
    let example = std::fs::read_to_string(crate::harness::example_rules()).expect("example");
    let candidate = example.replace("qualifying_points: 500", "qualifying_points: 300");
    let request = tierd::grpc::pb::SimulateRulesRequest {
        rules_text: candidate,
        as_of: None,
    };
    let report = server
        .client
        .simulate_rules(request)
        .await
        .expect("simulated")
        .into_inner();
    assert_eq!((report.members, report.moved), (2, 1));
    let silver = report
        .tiers
        .iter()
        .find(|t| t.tier_id == "silver")
        .expect("silver");
    assert_eq!((silver.members_before, silver.members_after), (1, 2));
    assert_eq!(silver.points_after, 325 + 625);
    let moved = report
        .cells
        .iter()
        .find(|c| c.from_tier != c.to_tier)
        .expect("a move");
    assert_eq!(moved.sample, ["ann"]);
    // Nothing changed for real.
    assert_eq!(server.member("ann").await.tier_id, "bronze");

    let broken = tierd::grpc::pb::SimulateRulesRequest {
        rules_text: "program: x\n".into(),
        as_of: None,
    };
    let status = server
        .client
        .simulate_rules(broken)
        .await
        .expect_err("invalid candidate");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().starts_with("rules_text: candidate:"),
        "{status:?}"
    );
}
