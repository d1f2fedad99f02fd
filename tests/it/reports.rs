//! Reports over a generated programme: every identity the figures promise
//! holds (members over tiers, ranks, segments, bands; value over the ranks;
//! migration rows and columns against the distributions at both ends;
//! liability against the members' balances), and each member's value is
//! recomputed from the requests this test sent. The CLI shows the same
//! numbers from the service and from its data directory.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeDelta};
use tonic::{Code, transport::Channel};

use crate::{harness::TestServer, process::tierd};
use tierd::grpc::pb::{self, reports_client::ReportsClient};

/// What the test sent for one member, in minor units and points.
#[derive(Default, Clone)]
struct Sent {
    purchased: i64,
    refunded: i64,
    redeemed: i64,
    /// The days (from the first) of purchases not wholly returned.
    bought_on: BTreeMap<String, i64>,
}

/// The region the programme gives member number `n` (none for every
/// fifth), so that grouping has a `(none)` row too.
fn region_of(n: u64) -> Option<&'static str> {
    ["north", "south", "east", "west"]
        .get(usize::try_from(n % 5).unwrap_or(4))
        .copied()
}

/// A small deterministic generator (no dependency on a seed crate).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

const MEMBERS: u64 = 40;
const DAYS: i64 = 90;

/// Runs a programme of purchases, returns and redemptions over `DAYS`
/// days; returns what was sent per member and the first day.
async fn programme(server: &mut TestServer) -> (BTreeMap<String, Sent>, NaiveDate) {
    let first = server.clock.now().date_naive();
    let mut rng = Lcg(7);
    let mut sent: BTreeMap<String, Sent> = BTreeMap::new();
    let mut purchases: Vec<(String, String, i64)> = Vec::new();
    for n in 0..MEMBERS {
        let attributes = region_of(n)
            .map(|r| std::collections::HashMap::from([("region".to_owned(), r.to_owned())]))
            .unwrap_or_default();
        let request = pb::UpsertMemberRequest {
            member_id: format!("m{n:02}"),
            attributes,
            enrolled_at: None,
        };
        server.client.upsert_member(request).await.expect("upsert");
        sent.insert(format!("m{n:02}"), Sent::default());
    }
    for day in 0..DAYS {
        for n in 0..6 {
            let member = format!("m{:02}", rng.below(MEMBERS));
            let txn = format!("d{day}-{n}");
            match rng.below(10) {
                0..=5 => {
                    let amount = 100 + i64::try_from(rng.below(40_000)).unwrap_or(0);
                    server.buy(&member, &txn, amount).await;
                    let member_sent = sent.entry(member.clone()).or_default();
                    member_sent.purchased += amount;
                    member_sent.bought_on.insert(txn.clone(), day);
                    purchases.push((member, txn, amount));
                }
                6 | 7 if !purchases.is_empty() => {
                    let pick = usize::try_from(rng.below(purchases.len() as u64)).unwrap_or(0);
                    let (owner, original, left) = purchases[pick].clone();
                    let amount = (left / 2).max(1);
                    if left >= amount {
                        let request = server.refund(&owner, &txn, &original, amount);
                        server.client.record_return(request).await.expect("return");
                        purchases[pick].2 -= amount;
                        let owner_sent = sent.entry(owner).or_default();
                        owner_sent.refunded += amount;
                        if purchases[pick].2 == 0 {
                            owner_sent.bought_on.remove(&original);
                        }
                    }
                }
                _ => {
                    let points = 1 + i64::try_from(rng.below(300)).unwrap_or(0);
                    let request = pb::RedeemPointsRequest {
                        member_id: member.clone(),
                        transaction_id: txn,
                        points,
                        order_id: String::new(),
                        reward_id: String::new(),
                    };
                    match server.client.redeem_points(request).await {
                        Ok(_) => sent.entry(member).or_default().redeemed += points,
                        Err(status) => assert!(
                            matches!(status.code(), Code::FailedPrecondition | Code::NotFound),
                            "{status:?}"
                        ),
                    }
                }
            }
        }
        server.clock.advance(TimeDelta::days(1));
    }
    (sent, first)
}

fn reports(server: &TestServer) -> ReportsClient<Channel> {
    ReportsClient::new(server.channel.clone())
}

async fn distribution(
    client: &mut ReportsClient<Channel>,
    as_of: NaiveDate,
) -> pb::DistributionReport {
    client
        .tier_distribution(pb::AsOfRequest {
            as_of: as_of.to_string(),
        })
        .await
        .expect("distribution")
        .into_inner()
}

#[tokio::test]
async fn every_report_adds_up_over_a_generated_programme() {
    let mut server = TestServer::start().await;
    let (sent, first) = programme(&mut server).await;
    let today = server.clock.now().date_naive();
    let members = i64::try_from(sent.len()).expect("small");
    let mut balances = 0;
    for id in sent.keys() {
        balances += server.member(id).await.points_balance;
    }
    let mut client = reports(&server);
    let period = pb::PeriodRequest {
        from: first.to_string(),
        to: today.to_string(),
    };

    let now = distribution(&mut client, today).await;
    let total = now.total.clone().expect("total");
    assert_eq!(total.members, members);
    assert_eq!(now.tiers.iter().map(|t| t.members).sum::<i64>(), members);
    assert_eq!(total.points_outstanding, balances);
    assert_eq!(
        now.tiers.iter().map(|t| t.points_outstanding).sum::<i64>(),
        balances
    );
    assert_eq!(now.header.expect("header").rules_version, "2026.1");

    // Value: purchases minus returns minus 1 cent per point redeemed, as sent.
    let value = |s: &Sent| s.purchased - s.refunded - s.redeemed;
    let ranks = client
        .value_ranks(pb::ValueRanksRequest {
            from: period.from.clone(),
            to: period.to.clone(),
            ranks: 10,
        })
        .await
        .expect("ranks")
        .into_inner();
    assert_eq!(ranks.ranks.len(), 10);
    assert_eq!(ranks.ranks.iter().map(|r| r.members).sum::<i64>(), members);
    let expected_value: i64 = sent.values().map(value).sum();
    assert_eq!(ranks.value_minor, expected_value);
    assert_eq!(
        ranks.ranks.iter().map(|r| r.value_minor).sum::<i64>(),
        expected_value
    );
    let positive: i64 = sent.values().map(value).filter(|v| *v > 0).sum();
    assert_eq!(ranks.positive_value_minor, positive);
    let mut values: Vec<i64> = sent.values().map(value).filter(|v| *v > 0).collect();
    values.sort_unstable_by(|a, b| b.cmp(a));
    let top = values.len().div_ceil(10);
    assert_eq!(ranks.pareto[0].members, i64::try_from(top).expect("small"));
    assert_eq!(
        ranks.pareto[0].value_minor,
        values[..top].iter().sum::<i64>()
    );

    let rfm = client.rfm(period.clone()).await.expect("rfm").into_inner();
    let mut stream = client
        .rfm_members(period.clone())
        .await
        .expect("rfm members")
        .into_inner();
    let mut listed = Vec::new();
    let mut summaries = Vec::new();
    while let Some(message) = stream.message().await.expect("a message") {
        summaries.extend(message.summary);
        listed.extend(message.members.into_iter().map(|m| m.member_id));
    }
    assert_eq!(
        summaries,
        std::slice::from_ref(&rfm),
        "one summary, the same as Rfm's"
    );
    assert_eq!(
        listed,
        sent.keys().cloned().collect::<Vec<_>>(),
        "every member, by id"
    );
    assert_eq!(rfm.members, members);
    assert_eq!(rfm.segments.iter().map(|s| s.members).sum::<i64>(), members);
    let net_spend: i64 = sent.values().map(|s| s.purchased - s.refunded).sum();
    assert_eq!(
        rfm.segments.iter().map(|s| s.monetary_minor).sum::<i64>(),
        net_spend
    );

    let bands = client
        .value_bands(pb::AsOfRequest {
            as_of: today.to_string(),
        })
        .await
        .expect("bands")
        .into_inner();
    assert_eq!(bands.bands.len(), 3);
    assert_eq!(bands.bands.iter().map(|b| b.members).sum::<i64>(), members);
    assert_eq!(bands.value_minor, net_spend, "lifetime value is net spend");
    for (band, bound) in bands.bands.iter().zip([Some(100_000), Some(500_000), None]) {
        assert_eq!(band.up_to_minor, bound);
    }

    let liability = client
        .points_liability(pb::LiabilityRequest {})
        .await
        .expect("liability")
        .into_inner();
    let total = liability.total.expect("total");
    assert_eq!(total.points_outstanding, balances);
    assert_eq!(total.value_minor, balances, "a point is worth one cent");
    assert_eq!(
        liability
            .tiers
            .iter()
            .map(|t| t.points_outstanding)
            .sum::<i64>(),
        balances
    );
    let redeemed: i64 = sent.values().map(|s| s.redeemed).sum();
    assert_eq!(
        liability
            .past
            .iter()
            .map(|m| m.points_redeemed)
            .sum::<i64>(),
        redeemed
    );
    assert_eq!((liability.expiring.len(), liability.past.len()), (12, 12));

    // Migration from the middle of the programme: rows are the tiers then,
    // columns the tiers now.
    let middle = first + TimeDelta::days(DAYS / 2);
    let then = distribution(&mut client, middle).await;
    let migration = client
        .tier_migration(pb::PeriodRequest {
            from: middle.to_string(),
            to: today.to_string(),
        })
        .await
        .expect("migration")
        .into_inner();
    let joined = migration.joined.clone().expect("joined row");
    assert_eq!(
        migration.members_at_start,
        then.total.expect("total").members
    );
    assert_eq!(migration.members_at_end, members);
    for (row, tier) in migration.rows.iter().zip(&then.tiers) {
        assert_eq!((&row.from_tier, row.members), (&tier.tier, tier.members));
    }
    for (column, tier) in now.tiers.iter().enumerate() {
        let sum: i64 = migration
            .rows
            .iter()
            .chain([&joined])
            .map(|r| r.to[column])
            .sum();
        assert_eq!(sum, tier.members, "column {}", tier.tier);
    }
    assert!(migration.promotions > 0, "the programme promotes someone");
}

/// The example rules with three segments more, each checkable against
/// what the programme sent.
fn rules_with_segments() -> String {
    let example = std::fs::read_to_string(crate::harness::example_rules()).expect("example rules");
    example
        + r#"    - name: recent buyers
      when: { days_since_last_purchase: { at_most: 20 } }
    - name: northern
      when: { script: 'attributes.region == "north"' }
    - name: over 1000
      when: { lifetime_value: "1000.00" }
"#
}

#[tokio::test]
async fn segments_groups_and_clusters_add_up_to_what_was_sent() {
    let mut server = TestServer::with_rules(&rules_with_segments()).await;
    let (sent, first) = programme(&mut server).await;
    let today = server.clock.now().date_naive();
    let members = i64::try_from(sent.len()).expect("small");
    let mut client = reports(&server);
    let report = client
        .segments(pb::PeriodRequest {
            from: first.to_string(),
            to: today.to_string(),
        })
        .await
        .expect("segments")
        .into_inner();
    assert_eq!(report.members, members);
    let size = |name: &str| {
        let row = report.segments.iter().find(|s| s.segment == name);
        row.unwrap_or_else(|| panic!("segment {name}")).members
    };
    let count = |keep: &dyn Fn(&Sent) -> bool| {
        i64::try_from(sent.values().filter(|s| keep(s)).count()).expect("small")
    };
    // Everyone enrolled in the last 90 days; the clock is one day past the
    // last programme day.
    assert_eq!(size("new"), members);
    assert_eq!(size("active") + size("lapsing") + size("lost"), 0);
    let recent = count(&|s| s.bought_on.values().any(|d| DAYS - d <= 20));
    assert_eq!(size("recent buyers"), recent);
    let north = (0..MEMBERS).filter(|n| region_of(*n) == Some("north"));
    assert_eq!(
        size("northern"),
        i64::try_from(north.count()).expect("small")
    );
    assert_eq!(
        size("over 1000"),
        count(&|s| s.purchased - s.refunded >= 100_000)
    );
    let value = |s: &Sent| s.purchased - s.refunded - s.redeemed;
    let everyone = report
        .segments
        .iter()
        .find(|s| s.segment == "new")
        .expect("new");
    assert_eq!(everyone.value_minor, sent.values().map(value).sum::<i64>());
    // One point per month end, the last on the period's last day; each
    // month's value of `new` (everyone) is the programme's value then.
    let months = &report.months;
    assert_eq!(
        months.last().map(|m| m.as_of.clone()),
        Some(today.to_string())
    );
    assert!(months.len() >= 3, "{months:?}");
    let monthly_new: i64 = months
        .iter()
        .flat_map(|m| &m.segments)
        .filter(|s| s.segment == "new")
        .map(|s| s.value_minor)
        .sum();
    assert_eq!(monthly_new, everyone.value_minor);
    assert!(months.windows(2).all(|w| w[0].members <= w[1].members));

    let groups = client
        .groups(pb::GroupsRequest {
            from: first.to_string(),
            to: today.to_string(),
            by: "region".into(),
        })
        .await
        .expect("groups")
        .into_inner();
    let names: Vec<&str> = groups.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["east", "north", "south", "west", "(none)"]);
    let total = groups.total.clone().expect("total");
    assert_eq!(total.members, members);
    assert_eq!(
        groups.groups.iter().map(|g| g.members).sum::<i64>(),
        members
    );
    for group in &groups.groups {
        let region = (group.group != "(none)").then_some(group.group.as_str());
        let of_region: Vec<&Sent> = sent
            .iter()
            .filter(|(id, _)| {
                let n: u64 = id[1..].parse().expect("numbered");
                region_of(n) == region
            })
            .map(|(_, s)| s)
            .collect();
        let net: i64 = of_region.iter().map(|s| s.purchased - s.refunded).sum();
        assert_eq!(group.net_spend_minor, net, "{}", group.group);
        let worth: i64 = of_region.iter().map(|s| value(s)).sum();
        assert_eq!(group.value_minor, worth, "{}", group.group);
    }
    let clusters = |k: u32| pb::ClustersRequest {
        from: first.to_string(),
        to: today.to_string(),
        k,
        seed: Some(5),
    };
    let chosen = client
        .clusters(clusters(0))
        .await
        .expect("clusters")
        .into_inner();
    assert!(chosen.k_chosen && (2..=8).contains(&chosen.k), "{chosen:?}");
    assert_eq!(chosen.silhouette.len(), 7);
    assert_eq!(chosen.members, members);
    assert_eq!(
        chosen.clusters.iter().map(|c| c.members).sum::<i64>(),
        members
    );
    let total_value: i64 = sent.values().map(value).sum();
    assert_eq!(chosen.value_minor, total_value);
    assert_eq!(
        chosen.clusters.iter().map(|c| c.value_minor).sum::<i64>(),
        total_value
    );
    let three = client
        .clusters(clusters(3))
        .await
        .expect("k=3")
        .into_inner();
    assert_eq!(
        (three.k, three.k_chosen, three.clusters.len()),
        (3, false, 3)
    );
    let again = client
        .clusters(clusters(3))
        .await
        .expect("k=3")
        .into_inner();
    assert_eq!(three, again, "the same seed gives the same clusters");
    let status = client.clusters(clusters(1)).await.expect_err("one cluster");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("k:"), "{status:?}");
    let status = client
        .groups(pb::GroupsRequest {
            by: " ".into(),
            ..pb::GroupsRequest::default()
        })
        .await
        .expect_err("no attribute");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("by:"), "{status:?}");
    // A misspelt attribute no member has is refused, not shown as
    // everyone under `(none)`.
    let status = client
        .groups(pb::GroupsRequest {
            by: "regoin".into(),
            ..pb::GroupsRequest::default()
        })
        .await
        .expect_err("no member has it");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("by: no member has the attribute \"regoin\"; members have "),
        "{status:?}"
    );
    assert!(
        status.message().ends_with("did you mean `region`?"),
        "{status:?}"
    );
}

#[tokio::test]
async fn report_options_out_of_range_name_their_field() {
    let server = TestServer::start().await;
    let mut client = reports(&server);
    let today = server.clock.now().date_naive();
    let refused = |result: Result<tonic::Response<pb::DistributionReport>, tonic::Status>| {
        result.expect_err("refused")
    };
    let status = refused(
        client
            .tier_distribution(pb::AsOfRequest {
                as_of: "2026-13-01".into(),
            })
            .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("as_of:"), "{status:?}");
    let status = refused(
        client
            .tier_distribution(pb::AsOfRequest {
                as_of: (today - TimeDelta::days(800)).to_string(),
            })
            .await,
    );
    assert!(status.message().contains("too far back"), "{status:?}");
    let status = refused(
        client
            .tier_distribution(pb::AsOfRequest {
                as_of: (today + TimeDelta::days(1)).to_string(),
            })
            .await,
    );
    assert!(status.message().contains("after today"), "{status:?}");
    let status = client
        .value_ranks(pb::ValueRanksRequest {
            from: String::new(),
            to: String::new(),
            ranks: 2,
        })
        .await
        .expect_err("two ranks leave none for contributing members");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("ranks:"), "{status:?}");
    let status = client
        .tier_migration(pb::PeriodRequest {
            from: today.to_string(),
            to: (today - TimeDelta::days(1)).to_string(),
        })
        .await
        .expect_err("backwards");
    assert!(status.message().starts_with("to:"), "{status:?}");
}

// The CLI runs as a child process while this test waits for it: the
// server needs worker threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_the_same_numbers_from_the_service_and_from_its_data() {
    let mut server = TestServer::start().await;
    let (_, first) = programme(&mut server).await;
    let today = server.clock.now().date_naive().to_string();
    let url = format!("http://{}", server.address);
    let dates = |kind: &str| -> Vec<String> {
        match kind {
            "distribution" | "value-bands" => vec!["--as-of".into(), today.clone()],
            "html" => vec![
                "--as-of".into(),
                today.clone(),
                "--from".into(),
                first.to_string(),
                "--to".into(),
                today.clone(),
            ],
            _ => vec![
                "--from".into(),
                first.to_string(),
                "--to".into(),
                today.clone(),
            ],
        }
    };
    let kinds: [&[&str]; 9] = [
        &["distribution"],
        &["migration"],
        &["value-ranks"],
        &["rfm"],
        &["value-bands"],
        &["segments"],
        &["segments", "--by", "region"],
        &["clusters", "--seed", "9"],
        &["rfm", "--members"],
    ];
    let bytes = |kind: &[&str], place: [&str; 2], format: &str| {
        let output = tierd()
            .arg("report")
            .args(kind)
            .args([place[0], place[1], "--format", format])
            .args(dates(kind[0]))
            .output()
            .expect("tierd runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    let run = |kind: &[&str], place: [&str; 2], format: &str| {
        String::from_utf8(bytes(kind, place, format)).expect("utf-8")
    };
    let mut from_service = Vec::new();
    for kind in kinds {
        let [json, csv] = ["json", "csv"].map(|format| run(kind, ["--server", &url], format));
        let workbook = bytes(kind, ["--server", &url], "xlsx");
        from_service.push((json, csv, workbook));
    }
    let pages = tempfile::TempDir::new().expect("temp dir");
    let page_of = |name: &str| pages.path().join(name).to_str().expect("utf-8").to_owned();
    let served_page = page_of("served.html");
    run(
        &["html", "--out", &served_page],
        ["--server", &url],
        "table",
    );
    let store = crate::process::store_arg(server.store());
    let _dir = server.stop().await;
    let data = ["--store", store.as_str()];
    for (kind, (json, csv, workbook)) in kinds.into_iter().zip(from_service) {
        assert_eq!(run(kind, data, "json"), json, "{kind:?}");
        assert_eq!(run(kind, data, "csv"), csv, "{kind:?}");
        assert!(
            bytes(kind, data, "xlsx") == workbook && workbook.starts_with(b"PK"),
            "{kind:?}: the same workbook from the service and from its data"
        );
    }
    let page = page_of("report.html");
    run(&["html", "--out", &page], data, "table");
    // `--by` groups the predictions; the page keeps its segments report.
    let by_region = page_of("by-region.html");
    run(
        &["html", "--by", "region", "--out", &by_region],
        data,
        "table",
    );
    let by_region = std::fs::read_to_string(&by_region).expect("the page by region");
    assert!(by_region.contains("<h2>Segments over time</h2>"));
    let html = std::fs::read_to_string(&page).expect("the page is written");
    let served = std::fs::read_to_string(&served_page).expect("the served page");
    // The liability is always today's: the service's clock is the test's,
    // the CLI's the machine's. Everything before it has explicit dates.
    let dated = |page: &str| {
        let before = page.split("<section><h2>Points liability").next();
        before.map(str::to_owned)
    };
    assert_eq!(
        dated(&html),
        dated(&served),
        "the same page from the service and from its data"
    );
    for title in [
        "Members per tier",
        "Tier migration",
        "Value ranks (Pareto)",
        "RFM segments",
        "Segments over time",
        "Clusters",
        "Points liability",
    ] {
        assert!(html.contains(&format!("<h2>{title}</h2>")), "{title}");
    }
    // Too few members for the models: the page says so where the
    // predictions would be (tests/it/predict.rs draws them).
    assert!(html.contains("<h2>Predictions</h2>\n<p class=\"what\">No predictions: "));
    assert_eq!(html.matches("<svg ").count(), 8, "a chart per report");
    let fetched = ["src=", "href=", "url(", "@import", "<script"];
    assert!(
        fetched.iter().all(|f| !html.contains(f)),
        "nothing to fetch"
    );
    let table = run(&["value-ranks"], data, "table");
    assert!(
        table.contains("The top 10% of contributing members"),
        "{table}"
    );
    let csv = run(&["distribution"], data, "csv");
    assert!(
        csv.starts_with("report,as_of,from,to,rules_version,currency,tier,members,"),
        "{csv}"
    );
}

/// `Page` answers, from one scan, what the nine calls answer one by one;
/// says why there is no prediction instead of failing the page; and
/// refuses an option as the report's own call does, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_the_nine_reports_made_in_one_scan() {
    let mut server = TestServer::start().await;
    let (_, first) = programme(&mut server).await;
    let mut client = reports(&server);
    let today = server.clock.now().date_naive();
    let period = pb::PeriodRequest {
        from: first.to_string(),
        to: today.to_string(),
    };
    let as_of = pb::AsOfRequest {
        as_of: today.to_string(),
    };
    let ranks = pb::ValueRanksRequest {
        from: period.from.clone(),
        to: period.to.clone(),
        ranks: 5,
    };
    let clusters = pb::ClustersRequest {
        from: period.from.clone(),
        to: period.to.clone(),
        k: 3,
        seed: Some(7),
    };
    let request = pb::PageRequest {
        distribution: Some(as_of.clone()),
        migration: Some(period.clone()),
        value_ranks: Some(ranks.clone()),
        value_bands: Some(as_of.clone()),
        rfm: Some(period.clone()),
        segments: Some(period.clone()),
        clusters: Some(clusters.clone()),
        predict: Some(pb::PredictRequest::default()),
    };
    let page = client
        .page(request.clone())
        .await
        .expect("page")
        .into_inner();
    macro_rules! same {
        ($field:ident, $call:ident, $request:expr) => {
            assert_eq!(
                page.$field,
                Some(client.$call($request).await.expect("report").into_inner()),
                stringify!($field)
            );
        };
    }
    same!(distribution, tier_distribution, as_of.clone());
    same!(migration, tier_migration, period.clone());
    same!(value_ranks, value_ranks, ranks);
    same!(value_bands, value_bands, as_of);
    same!(rfm, rfm, period.clone());
    same!(segments, segments, period);
    same!(clusters, clusters, clusters);
    same!(liability, points_liability, pb::LiabilityRequest {});
    let total = page.distribution.as_ref().and_then(|d| d.total.as_ref());
    assert_eq!(
        total.expect("total").members,
        i64::try_from(MEMBERS).expect("small")
    );
    // 40 members over 90 days are too few for the models: the page says
    // why, as Predict refuses.
    let refused = client
        .predict(pb::PredictRequest::default())
        .await
        .expect_err("too few members to fit");
    assert!(page.prediction.is_none());
    assert_eq!(page.no_prediction, refused.message());
    assert!(
        page.no_prediction.starts_with("calibration_end:"),
        "{}",
        page.no_prediction
    );

    let status = client
        .page(pb::PageRequest {
            value_ranks: Some(pb::ValueRanksRequest {
                ranks: 2,
                ..pb::ValueRanksRequest::default()
            }),
            ..request
        })
        .await
        .expect_err("two ranks");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("ranks:"), "{status:?}");
}
