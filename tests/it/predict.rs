//! The prediction report against the papers: the CDNOW sample's raw
//! purchases, sent to the real server, fitted by `tierd report predict`
//! from the running service and from its stopped data directory (the same
//! bytes), match the published BG/NBD and Gamma-Gamma figures within 1%.

use chrono::{NaiveDate, TimeDelta, Utc};
use serde_json::Value;
use tempfile::TempDir;

use crate::process::{serve, stop_with_log, succeeded, tierd};
use tierd::grpc::{
    convert::timestamp,
    pb::{self, event::Event as Kind, ingest_client::IngestClient},
};

/// CDNOW's last purchase day and calibration end (39 weeks).
const LAST_DAY: &str = "1998-06-30";
const CALIBRATION_END: &str = "1997-09-30";

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y%m%d"))
        .expect("a date")
}

/// Every CDNOW purchase as a request, moved by `shift` so that the last
/// falls yesterday. The 8 purchases of $0.00 are sent as 0.01 (a purchase
/// is at least one minor unit): their days still count.
fn purchases(shift: TimeDelta) -> Vec<pb::RecordPurchaseRequest> {
    include_str!("../fixtures/cdnow/CDNOW_sample.txt")
        .lines()
        .enumerate()
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let day = date(fields[2]) + shift;
            let cents = (fields[4].parse::<f64>().expect("dollars") * 100.0).round() as i64;
            let at = day.and_hms_opt(12, 0, 0).expect("noon").and_utc();
            pb::RecordPurchaseRequest {
                member_id: format!("cdnow-{}", fields[0]),
                transaction_id: format!("cdnow-t{n}"),
                amount_minor: cents.max(1),
                currency: "EUR".into(),
                occurred_at: Some(timestamp(at)),
                channel: "web".into(),
                store_id: "cdnow".into(),
                ..Default::default()
            }
        })
        .collect()
}

fn within(got: &Value, want: f64, share: f64) {
    let got = got.as_f64().expect("a number");
    assert!(
        (got - want).abs() <= share * want.abs(),
        "{got} is not within {share} of {want}"
    );
}

/// `tierd report predict` with the calibration end, in `format`.
fn predict(source: &[&str], format: &str, calibration_end: NaiveDate) -> Vec<u8> {
    let output = succeeded(
        tierd()
            .args(["report", "predict", "--format", format, "--calibration-end"])
            .arg(calibration_end.to_string())
            .args(source)
            .output()
            .expect("tierd runs"),
    );
    output.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cdnow_purchases_fit_the_papers_figures_from_the_service_and_from_its_data() {
    let yesterday = Utc::now().date_naive() - TimeDelta::days(1);
    let shift = yesterday - date(LAST_DAY);
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("data");
    let served = serve(&data);
    let mut ingest = IngestClient::new(served.channel().await);
    for batch in purchases(shift).chunks(500) {
        let events = batch
            .iter()
            .map(|p| pb::Event {
                event: Some(Kind::Purchase(p.clone())),
            })
            .collect();
        let outcomes = ingest
            .record_events(pb::RecordEventsRequest { events })
            .await
            .expect("recorded")
            .into_inner()
            .outcomes;
        assert!(
            outcomes
                .iter()
                .all(|o| !matches!(o.outcome, Some(pb::event_outcome::Outcome::Error(_)))),
            "every purchase recorded"
        );
    }
    let calibration_end = date(CALIBRATION_END) + shift;
    let address = format!("http://{}", served.address);
    let from_service = predict(&["--server", &address], "json", calibration_end);
    let members_from_service =
        predict(&["--server", &address, "--members"], "csv", calibration_end);
    let workbook_from_service = predict(&["--server", &address], "xlsx", calibration_end);
    // GetMember scores a member once a prediction was made for today.
    let mut client = served.client().await;
    let ask = || pb::GetMemberRequest {
        member_id: "cdnow-00004".into(),
    };
    let before = client
        .get_member(ask())
        .await
        .expect("a member")
        .into_inner();
    assert!(before.prediction.is_none(), "no prediction for today yet");
    predict(&["--server", &address], "json", Utc::now().date_naive());
    let scored = client
        .get_member(ask())
        .await
        .expect("a member")
        .into_inner();
    let prediction = scored.prediction.expect("scored with today's models");
    assert_eq!(prediction.purchase_days, 4);
    assert!(
        prediction.p_alive > 0.0 && prediction.p_alive <= 1.0,
        "{prediction:?}"
    );
    assert!(prediction.expected_spend_minor > 0, "{prediction:?}");
    drop(client);
    drop(ingest);
    let (status, _) = stop_with_log(served, "TERM");
    assert!(status.success());
    let data_arg = data.to_string_lossy().into_owned();
    let from_data = predict(&["--data", &data_arg], "json", calibration_end);
    assert_eq!(
        String::from_utf8_lossy(&from_service),
        String::from_utf8_lossy(&from_data),
        "the same bytes from the service and from its data"
    );

    let members_from_data = predict(&["--data", &data_arg, "--members"], "csv", calibration_end);
    let workbook = predict(&["--data", &data_arg], "xlsx", calibration_end);
    assert!(
        workbook == workbook_from_service,
        "the same workbook from the service and from its data"
    );
    let sheets = sheets_of(&workbook);
    let by_tier = sheets
        .iter()
        .find(|(name, _)| name.contains("sheet2.xml"))
        .map(|(_, xml)| xml.as_str())
        .expect("the By tier sheet");
    assert!(
        by_tier.contains("<v>2357</v>"),
        "members as a number: {by_tier}"
    );
    assert!(
        sheets.iter().any(|(_, xml)| xml.contains("<pane ")),
        "header rows frozen"
    );
    assert_eq!(
        String::from_utf8_lossy(&members_from_service),
        String::from_utf8_lossy(&members_from_data),
        "every member's figures, streamed, are the same bytes too"
    );
    let members_csv = String::from_utf8_lossy(&members_from_data);
    let member_rows = members_csv
        .split("\n\n")
        .last()
        .map(|table| table.lines().count());
    assert_eq!(member_rows, Some(2_358), "a header and every member");

    let report: Value = serde_json::from_slice(&from_data).expect("JSON");
    // lifetimes 0.11.3 on the raw file, repeat purchase days, weeks.
    let bg = &report["bg_nbd"];
    within(&bg["r"], 0.2426, 0.01);
    within(&bg["alpha"], 4.4136, 0.01);
    within(&bg["a"], 0.7929, 0.01);
    within(&bg["b"], 2.4259, 0.01);
    assert_eq!(bg["members"], 2_357);
    let gg = &report["gamma_gamma"];
    within(&gg["p"], 6.2496, 0.01);
    within(&gg["q"], 3.7442, 0.01);
    within(&gg["gamma"], 1_544.35, 0.01);
    assert_eq!(gg["members"], 946);
    // Every member scored is in one RFM segment; the named segments are
    // listed in the rules' order, then (none).
    let members_in = |list: &str| -> i64 {
        report[list]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["members"].as_i64().expect("members"))
            .sum()
    };
    assert_eq!(members_in("rfm_segments"), 2_357);
    let named = report["segments"].as_array().expect("named segments");
    assert_eq!(
        named.last().map(|g| g["group"].clone()),
        Some("(none)".into())
    );
    // The holdout (weeks 40 to 78): the reference expects 1,653 repeat
    // purchase days against 1,882 observed.
    let total = report["holdout"]
        .as_array()
        .and_then(|rows| rows.last())
        .expect("a holdout total");
    assert_eq!(total["group"], "total");
    assert_eq!(total["actual_purchases"], 1_882);
    within(&total["expected_purchases"], 1_653.0, 0.02);
    let table = predict(&["--data", &data_arg], "table", calibration_end);
    let table = String::from_utf8(table).expect("UTF-8");
    assert!(table.contains("Holdout"), "{table}");
    println!("{table}");
    let page = dir.path().join("page.html");
    succeeded(
        tierd()
            .args(["report", "html", "--data", &data_arg, "--out"])
            .arg(&page)
            .output()
            .expect("tierd runs"),
    );
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(
        html.contains("<h2>Predictions: who is slipping away, what each member will be worth</h2>")
    );
    assert!(html.contains("Value predicted over the coming months, by tier"));
    assert_eq!(html.matches("<svg ").count(), 9, "a chart per report");
    let csv = predict(&["--data", &data_arg], "csv", calibration_end);
    let csv = String::from_utf8(csv).expect("UTF-8");
    assert!(
        csv.starts_with("report,as_of,from,to,rules_version,currency,tier,"),
        "{csv}"
    );
}

/// Every worksheet of an .xlsx workbook: its path in the archive and its
/// XML.
fn sheets_of(workbook: &[u8]) -> Vec<(String, String)> {
    use std::io::Read as _;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(workbook)).expect("a zip archive");
    let mut sheets = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).expect("an entry");
        if file.name().starts_with("xl/worksheets/") {
            let mut xml = String::new();
            file.read_to_string(&mut xml).expect("XML");
            sheets.push((file.name().to_owned(), xml));
        }
    }
    sheets
}
