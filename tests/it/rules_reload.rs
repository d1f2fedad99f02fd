//! Reloading rules without a restart: a good file goes live at once and is
//! recorded; a bad one never replaces the running rules.

use tonic::Code;

use crate::harness::TestServer;
use tierd::grpc::pb;

const V1: &str = "\
program: reload
version: v1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
tiers:
  - id: member
  - id: plus
    qualify: { qualifying_points: 100 }
";

async fn reload(server: &mut TestServer) -> Result<pb::ReloadRulesResponse, tonic::Status> {
    server
        .client
        .reload_rules(pb::ReloadRulesRequest {})
        .await
        .map(tonic::Response::into_inner)
}

async fn versions(server: &mut TestServer) -> Vec<pb::RulesVersion> {
    server
        .client
        .list_rules_versions(pb::ListRulesVersionsRequest::default())
        .await
        .expect("versions")
        .into_inner()
        .versions
}

async fn rules(server: &mut TestServer) -> pb::GetRulesResponse {
    server
        .client
        .get_rules(pb::GetRulesRequest {})
        .await
        .expect("rules")
        .into_inner()
}

#[tokio::test]
async fn a_valid_change_goes_live_at_once_and_is_recorded() {
    let mut server = TestServer::with_rules(V1).await;
    let before = server.buy("m", "t1", 6_000).await;
    assert_eq!(
        before.member.expect("member").tier_id,
        "member",
        "60 points < 100"
    );

    let unchanged = reload(&mut server).await.expect("same file");
    assert!(!unchanged.changed);

    let v2 = V1
        .replace("version: v1", "version: v2")
        .replace("qualifying_points: 100", "qualifying_points: 50");
    std::fs::write(server.rules_path(), &v2).expect("edit rules");
    let reloaded = reload(&mut server).await.expect("valid file");
    assert!(reloaded.changed);
    assert_eq!(reloaded.active.expect("active").version, "v2");

    let after = server.buy("m", "t2", 100).await;
    let change = after.tier_change.expect("promoted under v2");
    assert_eq!(
        (change.to_tier.as_str(), change.rules_version.as_str()),
        ("plus", "v2")
    );

    let active = rules(&mut server).await.active.expect("active");
    assert_eq!(active.version, "v2");
    assert_eq!(active.text, v2);
    let versions = versions(&mut server).await;
    let labels: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(labels, ["v1", "v2"]);
    assert_ne!(versions[0].content_hash, versions[1].content_hash);
    assert_eq!(versions[0].text, "", "a list leaves the texts out");
    let first = server
        .client
        .get_rules_version(pb::GetRulesVersionRequest {
            position: versions[0].position,
        })
        .await
        .expect("version 1")
        .into_inner();
    assert_eq!((first.text.as_str(), first.position), (V1, 1));
}

#[tokio::test]
async fn a_bad_file_never_replaces_the_running_rules() {
    let mut server = TestServer::with_rules(V1).await;
    let broken = V1
        .replace("version: v1", "version: v2")
        .replace("currency: EUR", "currency: EURO")
        .replace("qualifying_points: 100", "qualifying_pints: 50");
    std::fs::write(server.rules_path(), broken).expect("edit rules");
    let status = reload(&mut server).await.expect_err("invalid file");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("rules.yaml:10:"), "{status:?}");
    assert!(
        status
            .message()
            .contains("did you mean `qualifying_points`"),
        "{status:?}"
    );
    assert!(
        status.message().contains("running rules stay version v1"),
        "{status:?}"
    );

    let state = rules(&mut server).await;
    assert_eq!(state.active.expect("active").version, "v1");
    let failure = state.last_failure.expect("the failed attempt is reported");
    assert!(
        failure.diagnostics.contains("qualifying_pints"),
        "{failure:?}"
    );
    let problems: Vec<(u32, &str, bool)> = failure
        .problems
        .iter()
        .map(|p| {
            let named = p.file.ends_with("rules.yaml");
            (p.line, p.severity.as_str(), named)
        })
        .collect();
    assert_eq!(
        problems,
        [(3, "error", true), (10, "error", true)],
        "every problem, one by one: {failure:?}"
    );

    let bought = server.buy("m", "t1", 10_000).await;
    assert_eq!(bought.tier_change.expect("promoted").rules_version, "v1");

    // The next good reload clears the failure.
    std::fs::write(
        server.rules_path(),
        V1.replace("version: v1", "version: v3"),
    )
    .expect("fix rules");
    reload(&mut server).await.expect("fixed");
    assert_eq!(rules(&mut server).await.last_failure, None);
}

/// A script that runs away fails its evaluation only: the purchase is
/// recorded, the member keeps its tier, the service stays up and the
/// failure is counted.
#[tokio::test]
async fn a_runaway_script_fails_its_evaluation_and_nothing_else() {
    let runaway = V1.replace(
        "qualify: { qualifying_points: 100 }",
        "qualify: { script: 'let n = 0; loop { n += 1; } n > 0' }",
    );
    let mut server = TestServer::with_rules(&runaway).await;
    let before = rules(&mut server).await.script_failures;
    let bought = server.buy("m", "t1", 50_000).await;
    assert_eq!(bought.points_earned, 500, "the purchase is recorded");
    assert_eq!(bought.tier_change, None, "a failed condition is not met");
    assert_eq!(server.member("m").await.tier_id, "member");
    assert!(rules(&mut server).await.script_failures > before);
}

/// A version with `effective_from` ahead is staged: shown, not used, and
/// live by itself from that moment, without anyone reloading again.
#[tokio::test]
async fn a_staged_version_goes_live_by_itself_at_its_time() {
    let mut server = TestServer::with_rules(V1).await;
    let start = server.clock.now();
    let go_live = (start + chrono::TimeDelta::days(10)).to_rfc3339();
    let staged = V1
        .replace(
            "version: v1",
            &format!("version: v2\neffective_from: {go_live}"),
        )
        .replace("qualifying_points: 100", "qualifying_points: 50");
    std::fs::write(server.rules_path(), &staged).expect("stage rules");
    let reloaded = reload(&mut server).await.expect("valid file");
    assert!(!reloaded.changed, "staged, not live");
    assert_eq!(reloaded.scheduled.expect("scheduled").version, "v2");
    let state = rules(&mut server).await;
    assert_eq!(state.active.expect("active").version, "v1");
    let scheduled = state.scheduled.expect("scheduled");
    assert_eq!(
        scheduled.activated_at.map(|t| t.seconds),
        Some((start + chrono::TimeDelta::days(10)).timestamp())
    );

    let before = server.buy("m", "t1", 6_000).await; // 60 points
    assert_eq!(
        before.member.expect("member").tier_id,
        "member",
        "v1: 60 < 100"
    );

    server.clock.advance(chrono::TimeDelta::days(11));
    let after = server.buy("m", "t2", 100).await;
    let change = after.tier_change.expect("promoted under v2");
    assert_eq!(change.rules_version, "v2");
    let state = rules(&mut server).await;
    assert_eq!(state.active.expect("active").version, "v2");
    assert_eq!(state.scheduled, None);
    let versions = versions(&mut server).await;
    assert_eq!(
        versions
            .iter()
            .map(|v| v.version.as_str())
            .collect::<Vec<_>>(),
        ["v1", "v2"]
    );

    // A restart before the time would run v1 and keep v2 staged; after it,
    // the staged file is simply the running version.
    let mut server = server.restart().await;
    assert_eq!(
        rules(&mut server).await.active.expect("active").version,
        "v2"
    );
}

#[tokio::test]
async fn a_restart_before_the_staged_time_keeps_running_the_live_version() {
    let mut server = TestServer::with_rules(V1).await;
    let go_live = (server.clock.now() + chrono::TimeDelta::days(10)).to_rfc3339();
    let staged = V1.replace(
        "version: v1",
        &format!("version: v2\neffective_from: {go_live}"),
    );
    std::fs::write(server.rules_path(), &staged).expect("stage rules");
    reload(&mut server).await.expect("staged");
    let mut server = server.restart().await;
    let state = rules(&mut server).await;
    assert_eq!(
        state.active.expect("active").version,
        "v1",
        "the file is staged, v1 stays live"
    );
    assert_eq!(state.scheduled.expect("still staged").version, "v2");
}

#[tokio::test]
async fn an_active_campaign_multiplies_points_and_is_shown() {
    let campaign = format!(
        "{V1}campaigns:\n  - name: spring double\n    from: 2026-03-01T00:00:00Z\n    until: 2026-03-08T00:00:00Z\n    multiplier: 2\n    channels: [pos]\n"
    );
    let mut server = TestServer::with_rules(&campaign).await;
    let during = server.buy("m", "t1", 1_000).await;
    assert_eq!(during.points_earned, 20, "10.00 at the till, doubled");
    server.clock.advance(chrono::TimeDelta::days(7));
    let after = server.buy("m", "t2", 1_000).await;
    assert_eq!(after.points_earned, 10, "the campaign is over");
    let shown = rules(&mut server).await.campaigns;
    assert_eq!(shown.len(), 1);
    assert_eq!(
        (shown[0].name.as_str(), shown[0].multiplier.as_str()),
        ("spring double", "2")
    );
    assert_eq!(shown[0].channels, ["pos"]);
}

/// A sweep is a request like any other: a staged version whose time has
/// come goes live first, and the sweep decides under it. (The sweep used
/// to read the rules in force without activating a staged version, so it
/// kept deciding under the old one.)
#[tokio::test]
async fn a_sweep_puts_a_staged_version_live_once_its_time_has_come() {
    let mut server = TestServer::with_rules(V1).await;
    server.buy("m", "t1", 6_000).await; // 60 points: below v1's 100
    let go_live = (server.clock.now() + chrono::TimeDelta::days(10)).to_rfc3339();
    let staged = V1
        .replace(
            "version: v1",
            &format!("version: v2\neffective_from: {go_live}"),
        )
        .replace("qualifying_points: 100", "qualifying_points: 50");
    std::fs::write(server.rules_path(), &staged).expect("stage rules");
    reload(&mut server).await.expect("staged");
    server.clock.advance(chrono::TimeDelta::days(11));
    let swept = server.evaluate_in_days(0).await;
    assert_eq!(swept.promoted, 1, "{swept:?}");
    assert_eq!(swept.changes[0].rules_version, "v2");
    assert_eq!(
        rules(&mut server).await.active.expect("active").version,
        "v2"
    );
}

/// A refused reload carries every problem as a PreconditionFailure
/// violation (type: severity, subject: file:line:column), for tools.
#[tokio::test]
async fn a_refused_reload_carries_its_problems_as_structured_details() {
    use tonic_types::StatusExt as _;
    let mut server = TestServer::with_rules(V1).await;
    let broken = V1
        .replace("currency: EUR", "currency: EURO")
        .replace("qualifying_points: 100", "qualifying_pints: 50");
    std::fs::write(server.rules_path(), broken).expect("edit rules");
    let status = reload(&mut server).await.expect_err("invalid file");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let failure = status
        .get_details_precondition_failure()
        .expect("precondition failure details");
    let found: Vec<(&str, Option<&str>, bool)> = failure
        .violations
        .iter()
        .map(|v| {
            // "…/rules.yaml:LINE:COLUMN": the line.
            let line = v.subject.rsplit(':').nth(1);
            (v.r#type.as_str(), line, v.description.is_empty())
        })
        .collect();
    assert_eq!(
        found,
        [("error", Some("3"), false), ("error", Some("10"), false)],
        "{failure:?}"
    );
}

/// Each request is checked and applied under one rules version, however
/// reloads interleave: an activity kind that only version A knows is either
/// refused (checked under B) or recorded under A, never recorded under B.
/// (The service used to check under one snapshot and apply under a second
/// one taken later.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_checked_and_applied_under_one_rules_version() {
    let with_visits =
        V1.replace("version: v1", "version: A") + "activities:\n  visit: { points: 5 }\n";
    let without = V1.replace("version: v1", "version: B");
    let server = TestServer::with_rules(&with_visits).await;
    let path = server.rules_path().to_owned();
    let mut flipper = server.client.clone();
    let flipping = tokio::spawn(async move {
        for round in 0..20 {
            let text = if round % 2 == 0 {
                &without
            } else {
                &with_visits
            };
            std::fs::write(&path, text).expect("edit rules");
            flipper
                .reload_rules(pb::ReloadRulesRequest {})
                .await
                .expect("valid rules");
        }
    });
    let now = tierd::grpc::convert::timestamp(server.clock.now());
    let visits = (0..200).map(|i| {
        let mut client = server.client.clone();
        let request = pb::RecordActivityRequest {
            member_id: format!("m{}", i % 20),
            transaction_id: format!("v{i}"),
            kind: "visit".into(),
            occurred_at: Some(now),
            attributes: Default::default(),
        };
        async move { client.record_activity(request).await }
    });
    let answers = futures::future::join_all(visits).await;
    flipping.await.expect("flipper");
    let mut recorded = 0;
    for answer in answers {
        match answer {
            Ok(answer) => {
                let member = answer.into_inner().member.expect("member");
                assert_eq!(member.rules_version, "A", "a visit recorded under B");
                recorded += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
                assert!(status.message().starts_with("kind:"), "{status:?}");
            }
        }
    }
    assert!(recorded > 0, "some visits went through under A");
}

/// A file edited without a new version label is refused: two different
/// files under one label would make the history, and every answer that
/// names the label, ambiguous. The same content under its label again is
/// fine.
#[tokio::test]
async fn a_changed_file_under_a_label_already_live_is_refused() {
    let mut server = TestServer::with_rules(V1).await;
    let edited = V1.replace("qualifying_points: 100", "qualifying_points: 50");
    std::fs::write(server.rules_path(), &edited).expect("edit rules");
    let refused = reload(&mut server).await.expect_err("same label");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let message = refused.message();
    assert!(
        message.contains(":2:1: error: version \"v1\" was put live on"),
        "{message}"
    );
    assert!(
        message.contains("give the changed file a new version label"),
        "{message}"
    );
    let status = rules(&mut server).await;
    assert_eq!(status.active.expect("active").version, "v1");
    assert!(status.last_failure.is_some(), "the refusal is shown");
    std::fs::write(server.rules_path(), V1).expect("revert");
    let reverted = reload(&mut server).await.expect("the same content again");
    assert!(!reverted.changed);
}
