//! The report page as a browser reads it: headless Chromium, driven over
//! WebDriver by its own chromedriver, says what each chart is called (its
//! accessible name, as a screen reader would announce it), finds both axis
//! titles drawn inside the chart, and reads the value ticks. Where Chromium
//! or chromedriver is not installed the test says so and passes: the page's
//! markup is checked without a browser in `src/report/html.rs`.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::process::tierd;

/// The first of `names` found on the PATH.
fn installed(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A chromedriver process and one headless Chromium session under it.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session;
    /// `None` (with a message) when either program is missing.
    async fn open() -> Option<Self> {
        let chromium = installed(&["chromium", "chromium-browser", "google-chrome"]);
        let Some((chromium, chromedriver)) = chromium.zip(installed(&["chromedriver"])) else {
            eprintln!(
                "skipped: the page is not checked in a browser because chromium and \
                 chromedriver are not both installed (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // It says when it listens; reading that line is the wait. The rest
        // of its output is read to the end, so that it never writes into
        // a closed pipe.
        let stdout = driver.stdout.take().expect("stdout");
        let (started, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("started successfully") {
                    let _ = started.send(());
                }
            }
        });
        listening.recv().expect("chromedriver did not start");
        let http = reqwest::Client::new();
        let mut browser = Self {
            driver,
            http,
            session: format!("http://127.0.0.1:{port}/session"),
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // No background traffic: it would only be refused here.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1200,900",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run"],
            },
        }}});
        let created = browser.call("POST", "", capabilities).await;
        let id = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser.session = format!("{}/{id}", browser.session);
        Some(browser)
    }

    /// One WebDriver command; its `value`.
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string()),
        };
        let text = request
            .send()
            .await
            .expect("webdriver answers")
            .text()
            .await
            .expect("webdriver body");
        let answer: Value = serde_json::from_str(&text).expect("webdriver json");
        assert!(answer["value"]["error"].is_null(), "{path}: {answer}");
        answer["value"].clone()
    }

    async fn open_page(&self, page: &Path) {
        let url = format!("file://{}", page.display());
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    /// The result of a script run in the page.
    async fn run(&self, script: &str) -> Value {
        let body = json!({ "script": script, "args": [] });
        self.call("POST", "/execute/sync", body).await
    }

    /// Each chart's accessible name and role, as the browser computes them.
    async fn charts(&self) -> Vec<(String, String)> {
        let found = self
            .call(
                "POST",
                "/elements",
                json!({"using": "css selector", "value": "svg"}),
            )
            .await;
        let mut charts = Vec::new();
        for element in found.as_array().expect("a list") {
            let id = element
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .expect("an element id");
            let label = self
                .call("GET", &format!("/element/{id}/computedlabel"), json!({}))
                .await;
            let role = self
                .call("GET", &format!("/element/{id}/computedrole"), json!({}))
                .await;
            charts.push((
                label.as_str().unwrap_or_default().to_owned(),
                role.as_str().unwrap_or_default().to_owned(),
            ));
        }
        charts
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A page of every report over a small seeded programme.
async fn report_page(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    crate::harness::seeded(&data, 400, 7, chrono::Utc::now()).await;
    let page = dir.join("report.html");
    crate::process::succeeded(
        tierd()
            .args(["report", "html", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&page)
            .output()
            .expect("tierd runs"),
    );
    page
}

/// Per chart: its axis titles, whether each is drawn inside the chart's
/// box with some width, and its value ticks' texts.
const AXES: &str = "return [...document.querySelectorAll('svg')].map(svg => {
  const box = svg.getBoundingClientRect();
  const axes = [...svg.querySelectorAll('text.axis')].map(t => {
    const r = t.getBoundingClientRect();
    const inside = r.width > 0 && r.left >= box.left - 1 && r.right <= box.right + 1
      && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    return [t.textContent, inside];
  });
  const ticks = [...svg.querySelectorAll('text.tick')].map(t => t.textContent);
  return {axes, ticks};
});";

/// Whether `step` is 1, 2 or 5 times a power of ten.
fn one_two_five(step: i64) -> bool {
    let mut step = step;
    while step >= 10 && step % 10 == 0 {
        step /= 10;
    }
    matches!(step, 1 | 2 | 5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chart_is_named_and_titled_with_round_ticks_in_a_browser() {
    let dir = TempDir::new().expect("temp dir");
    let page = report_page(dir.path()).await;
    let Some(browser) = Browser::open().await else {
        return;
    };
    browser.open_page(&page).await;
    let charts = browser.charts().await;
    assert_eq!(charts.len(), 8, "{charts:?}");
    for (name, role) in &charts {
        assert!(!name.is_empty(), "a chart without a name: {charts:?}");
        assert!(matches!(role.as_str(), "img" | "image"), "{charts:?}");
    }
    assert!(
        charts
            .iter()
            .any(|(name, _)| name == "Cumulative share of value by rank"),
        "{charts:?}"
    );
    let drawn = browser.run(AXES).await;
    for (chart, (name, _)) in drawn.as_array().expect("charts").iter().zip(&charts) {
        let axes = chart["axes"].as_array().expect("axes");
        assert_eq!(axes.len(), 2, "{name}: {chart}");
        for axis in axes {
            assert_eq!(axis[1], Value::Bool(true), "{name}: drawn outside: {axis}");
        }
        let ticks: Vec<i64> = chart["ticks"]
            .as_array()
            .expect("ticks")
            .iter()
            .filter_map(Value::as_str)
            .map(|t| t.trim_end_matches('%').parse().expect("a whole number"))
            .collect();
        for pair in ticks.windows(2) {
            let step = pair[1] - pair[0];
            assert!(one_two_five(step), "{name}: ticks {ticks:?}");
        }
    }
    let with_ticks = drawn
        .as_array()
        .expect("charts")
        .iter()
        .filter(|c| c["ticks"].as_array().is_some_and(|t| t.len() >= 3))
        .count();
    assert_eq!(with_ticks, 2, "the Pareto and segments charts: {drawn}");
    browser.call("DELETE", "", json!({})).await;
}
