//! `tierd report KIND`: a programme report from a running service
//! (`--server`, a `reporting` or `admin` key) or from a stopped data
//! directory or restored backup (`--data`), as a table, CSV or JSON.
//!
//! Both ways build the same protobuf request, read it into a query with
//! the same defaults, and render the same report types, so the numbers and
//! their layout are the same either way.

use std::{io::Write as _, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use chrono::NaiveDate;

use super::{authorized, open_stopped};
use crate::{
    app::{Program, system_clock},
    config,
    grpc::{
        pb::{self, reports_client::ReportsClient},
        reports::convert as wire,
    },
    report::{Query, Report, html, table, xlsx},
    rules::{self, RuleSet},
    store::Store,
};

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportKind {
    /// Members per tier on a day (--as-of).
    Distribution,
    /// Who moved between tiers over a period (--from, --to).
    Migration,
    /// Value ranks and the Pareto figures over a period (--ranks).
    ValueRanks,
    /// RFM segments over a period (--members lists every member).
    Rfm,
    /// Members and lifetime value per band on a day.
    ValueBands,
    /// The rules' segments at the end of a period and at each month end
    /// (--by ATTRIBUTE groups members by an attribute instead).
    Segments,
    /// Members in k-means clusters over a period (--k, --seed).
    Clusters,
    /// Outstanding points, their worth, expiry and breakage, today.
    Liability,
    /// Who is slipping away and what each member will be worth, by the
    /// BG/NBD and Gamma-Gamma models (--calibration-end for the holdout
    /// check, --by ATTRIBUTE, --members lists every member).
    Predict,
    /// Every report on one self-contained HTML page with charts (--out).
    Html,
}

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns, money in major units.
    Table,
    /// For spreadsheets: money in minor units, what the figures are for on
    /// every row.
    Csv,
    /// The report's documented JSON (docs/reports.md).
    Json,
    /// An Excel workbook (to redirect to a file): a sheet per table,
    /// numbers as numbers, money with the currency's decimals.
    Xlsx,
}

/// `tierd report` options.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    kind: ReportKind,
    /// The day (YYYY-MM-DD, UTC) [default: today].
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// First day of the period [default: 12 months before --to].
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last day of the period [default: today].
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Value ranks: how many (3 to 100).
    #[arg(long, default_value_t = crate::report::DEFAULT_RANKS)]
    ranks: u32,
    /// Clusters: how many (2 to 20) [default: the k in 2..=8 with the best
    /// silhouette score].
    #[arg(long)]
    k: Option<u32>,
    /// Clusters: what everything random is drawn from.
    #[arg(long, default_value_t = crate::report::clusters::DEFAULT_SEED)]
    seed: u64,
    /// Segments: group members by this attribute (e.g. region) instead;
    /// predict: group by it as well.
    #[arg(long)]
    by: Option<String>,
    /// RFM, predict: list every member's figures too.
    #[arg(long)]
    members: bool,
    /// Predict: the last day the models are fitted on [default: today;
    /// before it, the days after are the holdout check].
    #[arg(long)]
    calibration_end: Option<NaiveDate>,
    /// Predict: days ahead for the expected purchases (1 to 3650).
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Predict: months of predicted value (1 to 120).
    #[arg(long, default_value_t = 12)]
    months: u32,
    /// Predict: the monthly discount rate in basis points (100 = 1%).
    #[arg(long, default_value_t = 100)]
    discount_bp: u32,
    /// Predict: P(alive) below which a member is at risk, percent.
    #[arg(long, default_value_t = 50)]
    alive_below: u32,
    /// Predict: how many at-risk members to list.
    #[arg(long, default_value_t = 20)]
    at_risk: u32,
    /// Html: the file to write the page to.
    #[arg(long, required_if_eq("kind", "html"))]
    out: Option<PathBuf>,
    /// `table`, `csv` or `json`.
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
    #[command(flatten)]
    store: super::StoreArgs,
    /// With --data: the rules to report under [default: the version that
    /// was last live in that directory].
    #[arg(long, conflicts_with = "server")]
    rules: Option<PathBuf>,
    #[command(flatten)]
    remote: super::ServerArgs,
}

fn day(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

impl ReportArgs {
    fn as_of_request(&self) -> pb::AsOfRequest {
        pb::AsOfRequest {
            as_of: day(self.as_of),
        }
    }

    fn period_request(&self) -> pb::PeriodRequest {
        pb::PeriodRequest {
            from: day(self.from),
            to: day(self.to),
        }
    }

    fn groups_request(&self, by: &str) -> pb::GroupsRequest {
        pb::GroupsRequest {
            from: day(self.from),
            to: day(self.to),
            by: by.to_owned(),
        }
    }

    fn clusters_request(&self) -> pb::ClustersRequest {
        pb::ClustersRequest {
            from: day(self.from),
            to: day(self.to),
            k: self.k.unwrap_or(0),
            seed: Some(self.seed),
        }
    }

    fn predict_request(&self) -> pb::PredictRequest {
        pb::PredictRequest {
            calibration_end: day(self.calibration_end),
            days: self.days,
            months: self.months,
            discount_bp: Some(self.discount_bp),
            alive_below_percent: self.alive_below,
            at_risk: Some(self.at_risk),
            by: self.by.clone().unwrap_or_default(),
        }
    }

    /// The page's request: each report's as its own call would send it.
    fn page_request(&self) -> pb::PageRequest {
        pb::PageRequest {
            distribution: Some(self.as_of_request()),
            migration: Some(self.period_request()),
            value_ranks: Some(self.ranks_request()),
            value_bands: Some(self.as_of_request()),
            rfm: Some(self.period_request()),
            segments: Some(self.period_request()),
            clusters: Some(self.clusters_request()),
            predict: Some(self.predict_request()),
        }
    }

    fn ranks_request(&self) -> pb::ValueRanksRequest {
        pb::ValueRanksRequest {
            from: day(self.from),
            to: day(self.to),
            ranks: self.ranks,
        }
    }

    /// The query for `kind`, with the defaults the service applies.
    fn query(&self, kind: ReportKind, today: NaiveDate) -> anyhow::Result<Query> {
        let query = match kind {
            ReportKind::Distribution => wire::distribution_query(self.as_of_request(), today),
            ReportKind::ValueBands => wire::value_bands_query(self.as_of_request(), today),
            ReportKind::Migration => wire::migration_query(self.period_request(), today),
            ReportKind::Rfm => wire::rfm_query(self.period_request(), today),
            ReportKind::ValueRanks => wire::value_ranks_query(self.ranks_request(), today),
            ReportKind::Segments => match &self.by {
                Some(by) => wire::groups_query(self.groups_request(by), today),
                None => wire::segments_query(self.period_request(), today),
            },
            ReportKind::Clusters => wire::clusters_query(self.clusters_request(), today),
            ReportKind::Liability => Ok(Query::Liability),
            ReportKind::Predict if self.members => {
                wire::predict_members_query(self.predict_request(), today)
            }
            ReportKind::Predict => wire::predict_query(self.predict_request(), today),
            ReportKind::Html => anyhow::bail!("the page is made of the other reports"),
        }?;
        Ok(match query {
            Query::Rfm { period, .. } => Query::Rfm {
                period,
                with_members: self.members,
            },
            other => other,
        })
    }
}

/// Where reports come from: a stopped data directory or a running service.
enum Source {
    Data(Program),
    Server {
        client: ReportsClient<tonic::transport::Channel>,
        key: Option<String>,
    },
}

/// Runs `tierd report`.
///
/// # Errors
/// A report that cannot be made (an option out of range, a directory in
/// use, a refused key), with what to do about it.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut source = match &args.remote.server {
            Some(server) => Source::Server {
                client: ReportsClient::connect(server.clone())
                    .await
                    .with_context(|| format!("connecting to {server}"))?,
                key: args.remote.key.clone(),
            },
            None => {
                let store = open_stopped(args.store.location())?;
                let rules = rules_for(&store, args.rules.as_ref())?;
                Source::Data(Program::new(store, Arc::new(rules), system_clock()))
            }
        };
        if args.kind == ReportKind::Html {
            return write_page(&mut source, &args).await;
        }
        let report = source.report(&args, args.kind).await?;
        let mut out = std::io::stdout().lock();
        match args.format {
            ReportFormat::Table => table::write_text(report.tabular(), &mut out)?,
            ReportFormat::Csv => table::write_csv(report.tabular(), &mut out)?,
            ReportFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
            ReportFormat::Xlsx => xlsx::write_xlsx(report.tabular(), &mut out)?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Makes every report on the page and writes it to `--out`.
async fn write_page(source: &mut Source, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let mut made = source.page_reports(args).await?;
    let prediction = match made.pop() {
        Some(Ok(Report::Prediction(prediction))) => Ok(prediction),
        Some(Err(err)) => Err(format!("No predictions: {err:#}")),
        _ => anyhow::bail!("a report of the wrong kind came back"),
    };
    let reports = made.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let page = page_of(reports, prediction).context("a report of the wrong kind came back")?;
    let out = args
        .out
        .as_ref()
        .context("--out FILE: where to write the page")?;
    std::fs::write(out, html::render(&page))
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The page, from the reports made in the order of [`wire::page_queries`] and the
/// prediction (or why there is none).
fn page_of(
    reports: Vec<Report>,
    prediction: Result<crate::report::predict::Prediction, String>,
) -> Option<html::Page> {
    let [
        Report::Distribution(distribution),
        Report::Migration(migration),
        Report::ValueRanks(value_ranks),
        Report::ValueBands(value_bands),
        Report::Rfm(rfm),
        Report::Segments(segments),
        Report::Clusters(clusters),
        Report::Liability(liability),
    ] = <[Report; 8]>::try_from(reports).ok()?
    else {
        return None;
    };
    Some(html::Page {
        distribution,
        migration,
        value_ranks,
        value_bands,
        rfm,
        segments,
        clusters,
        liability,
        prediction,
    })
}

impl Source {
    async fn report(&mut self, args: &ReportArgs, kind: ReportKind) -> anyhow::Result<Report> {
        match self {
            Source::Data(program) => Ok(program.report(args.query(kind, program.today())?)?),
            Source::Server { client, key } => from_server(client, key.as_deref(), args, kind).await,
        }
    }

    /// The reports of the page, in the order of [`wire::page_queries`], then the
    /// prediction: from a data directory in one scan of the members.
    async fn page_reports(
        &mut self,
        args: &ReportArgs,
    ) -> anyhow::Result<Vec<anyhow::Result<Report>>> {
        match self {
            // The same request as the service is sent, read the same way:
            // the page is the same from either.
            Source::Data(program) => {
                let queries = wire::page_queries(args.page_request(), program.today())?;
                let made = program.reports(queries)?;
                Ok(made.into_iter().map(|r| r.map_err(Into::into)).collect())
            }
            Source::Server { client, key } => {
                let request = authorized(args.page_request(), key.as_deref())?;
                Ok(reports_of_page(client.page(request).await?.into_inner()))
            }
        }
    }
}

/// The reports of a page received, in the order of [`wire::page_queries`], then
/// the prediction or why there is none.
fn reports_of_page(page: pb::PageReport) -> Vec<anyhow::Result<Report>> {
    fn made<P, R>(message: Option<P>, report: fn(R) -> Report) -> anyhow::Result<Report>
    where
        R: From<P>,
    {
        let message = message.context("a report of the page is missing")?;
        Ok(report(R::from(message)))
    }
    let prediction = if page.no_prediction.is_empty() {
        made(page.prediction, Report::Prediction)
    } else {
        Err(anyhow::anyhow!(page.no_prediction))
    };
    vec![
        made(page.distribution, Report::Distribution),
        made(page.migration, Report::Migration),
        made(page.value_ranks, Report::ValueRanks),
        made(page.value_bands, Report::ValueBands),
        made(page.rfm, Report::Rfm),
        made(page.segments, Report::Segments),
        made(page.clusters, Report::Clusters),
        made(page.liability, Report::Liability),
        prediction,
    ]
}

/// The rules given, or those last live in `store`, or the default file.
fn rules_for(store: &Store, given: Option<&PathBuf>) -> anyhow::Result<RuleSet> {
    let loaded = match (given, store.last_rules_version()?) {
        (Some(path), _) => rules::load(path),
        (None, Some(version)) => rules::load(&version),
        (None, None) => rules::load(&config::rules_file(config::DEFAULT_RULES.as_ref())?),
    };
    loaded.map_err(|rejected| anyhow::anyhow!("{rejected}"))
}

async fn from_server(
    client: &mut ReportsClient<tonic::transport::Channel>,
    key: Option<&str>,
    args: &ReportArgs,
    kind: ReportKind,
) -> anyhow::Result<Report> {
    Ok(match kind {
        ReportKind::Distribution => {
            let request = authorized(args.as_of_request(), key)?;
            Report::Distribution(client.tier_distribution(request).await?.into_inner().into())
        }
        ReportKind::ValueBands => {
            let request = authorized(args.as_of_request(), key)?;
            Report::ValueBands(client.value_bands(request).await?.into_inner().into())
        }
        ReportKind::Migration => {
            let request = authorized(args.period_request(), key)?;
            Report::Migration(client.tier_migration(request).await?.into_inner().into())
        }
        ReportKind::Rfm if args.members => {
            let request = authorized(args.period_request(), key)?;
            let stream = client.rfm_members(request).await?.into_inner();
            Report::Rfm(wire::rfm_of_messages(every_message(stream).await?))
        }
        ReportKind::Rfm => {
            let request = authorized(args.period_request(), key)?;
            Report::Rfm(client.rfm(request).await?.into_inner().into())
        }
        ReportKind::ValueRanks => {
            let request = authorized(args.ranks_request(), key)?;
            Report::ValueRanks(client.value_ranks(request).await?.into_inner().into())
        }
        ReportKind::Segments => match &args.by {
            Some(by) => {
                let request = authorized(args.groups_request(by), key)?;
                Report::Groups(client.groups(request).await?.into_inner().into())
            }
            None => {
                let request = authorized(args.period_request(), key)?;
                Report::Segments(client.segments(request).await?.into_inner().into())
            }
        },
        ReportKind::Clusters => {
            let request = authorized(args.clusters_request(), key)?;
            Report::Clusters(client.clusters(request).await?.into_inner().into())
        }
        ReportKind::Liability => {
            let request = authorized(pb::LiabilityRequest {}, key)?;
            Report::Liability(client.points_liability(request).await?.into_inner().into())
        }
        ReportKind::Predict if args.members => {
            let request = authorized(args.predict_request(), key)?;
            let stream = client.predict_members(request).await?.into_inner();
            Report::Prediction(wire::prediction_of_messages(every_message(stream).await?))
        }
        ReportKind::Predict => {
            let request = authorized(args.predict_request(), key)?;
            Report::Prediction(client.predict(request).await?.into_inner().into())
        }
        ReportKind::Html => anyhow::bail!("the page is made of the other reports"),
    })
}

/// Every message of a report's stream, in order.
async fn every_message<M>(mut stream: tonic::Streaming<M>) -> Result<Vec<M>, tonic::Status> {
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await? {
        messages.push(message);
    }
    Ok(messages)
}
