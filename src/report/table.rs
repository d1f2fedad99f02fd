//! Every report as tables of typed cells, rendered for people (aligned
//! columns, money in major units) or for spreadsheets (CSV, money in minor
//! units). JSON is the report structs themselves (serde).
//!
//! A CSV row starts with what the figures are for (report, as_of, from,
//! to, rules_version, currency), so that a row pasted elsewhere still says
//! so. A report with several tables writes them one after another, each
//! with its own header row, a blank line between.

use std::io::Write;

use super::{
    Header,
    liability::Liability,
    predict::{MemberPrediction, Prediction, PredictionGroup},
    tier::{Distribution, Migration},
    value::{Rfm, ValueBands, ValueRanks},
};
use crate::money::Currency;

/// One cell, typed so that each format can render it its way.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Words.
    Text(String),
    /// A count or points.
    Number(i64),
    /// Money, minor units.
    Money(i64),
    /// A percentage derived from integers beside it.
    Percent(f64),
    /// A model's figure (a probability, expected purchases, a parameter),
    /// with the decimals it is shown with.
    Decimal(f64, usize),
    /// No value (an open bound, no purchase).
    Empty,
}

/// A titled table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// What it shows.
    pub title: String,
    /// Column names as in JSON (`*_minor` for money).
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these columns.
    pub(super) fn new(title: &str, columns: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// The table with one row more.
    pub(super) fn row(mut self, cells: Vec<Cell>) -> Self {
        self.rows.push(cells);
        self
    }
}

/// A report that can be shown as tables.
pub trait Tabular {
    /// What the figures are for.
    fn header(&self) -> &Header;
    /// Its tables, the main one first.
    fn tables(&self) -> Vec<Table>;
    /// Lines said plainly above the tables (the Pareto figures).
    fn summary(&self) -> Vec<String> {
        Vec::new()
    }
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

/// Writes `report` as aligned text.
///
/// # Errors
/// On a failed write.
pub fn write_text(report: &dyn Tabular, out: &mut dyn Write) -> std::io::Result<()> {
    let header = report.header();
    let currency = Currency::parse(&header.currency).unwrap_or_default();
    writeln!(out, "{}", describe(header))?;
    for line in report.summary() {
        writeln!(out, "{line}")?;
    }
    for table in report.tables() {
        writeln!(out, "\n{}", table.title)?;
        let names: Vec<String> = table.columns.iter().map(|c| column_title(c)).collect();
        let rows: Vec<Vec<String>> = table
            .rows
            .iter()
            .map(|row| row.iter().map(|cell| shown(cell, currency)).collect())
            .collect();
        let widths: Vec<usize> = (0..names.len())
            .map(|i| {
                rows.iter()
                    .filter_map(|r| r.get(i))
                    .chain([&names[i]])
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == 0 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        writeln!(out, "{}", line(&names))?;
        for row in &rows {
            writeln!(out, "{}", line(row))?;
        }
    }
    Ok(())
}

/// One line saying what a report is for.
pub fn describe(header: &Header) -> String {
    let when = match (header.as_of, header.from, header.to) {
        (Some(day), _, _) => format!("as of {day}"),
        (None, Some(from), Some(to)) => format!("from {from} to {to}"),
        _ => String::new(),
    };
    let basis = header
        .spend_basis
        .as_ref()
        .map_or_else(String::new, |basis| format!("; {basis}"));
    format!(
        "{} {when} (rules {}, {}{basis})",
        header.report, header.rules_version, header.currency
    )
}

/// A column's name as people read it: `value_minor` is "value".
pub(super) fn column_title(name: &str) -> String {
    name.strip_suffix("_minor")
        .unwrap_or(name)
        .replace('_', " ")
}

/// A cell as people read it: money in major units, percentages with two
/// decimals.
pub(super) fn shown(cell: &Cell, currency: Currency) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        Cell::Number(n) => n.to_string(),
        Cell::Money(m) => currency.format_minor(*m),
        Cell::Percent(p) => format!("{p:.2}%"),
        Cell::Decimal(d, places) => format!("{d:.places$}"),
        Cell::Empty => "-".to_owned(),
    }
}

/// Writes `report` as CSV (see the module comment).
///
/// # Errors
/// On a failed write.
pub fn write_csv(report: &dyn Tabular, out: &mut dyn Write) -> std::io::Result<()> {
    let header = report.header();
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let context = [
        header.report.clone(),
        day(header.as_of),
        day(header.from),
        day(header.to),
        header.rules_version.clone(),
        header.currency.clone(),
    ];
    for (i, table) in report.tables().into_iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let mut csv = csv::Writer::from_writer(&mut *out);
        let names = ["report", "as_of", "from", "to", "rules_version", "currency"]
            .into_iter()
            .map(str::to_owned)
            .chain(table.columns.iter().cloned());
        csv.write_record(names).map_err(io_of)?;
        for row in &table.rows {
            let cells = row.iter().map(|cell| match cell {
                Cell::Text(s) => s.clone(),
                Cell::Number(n) | Cell::Money(n) => n.to_string(),
                Cell::Percent(p) => format!("{p:.2}"),
                Cell::Decimal(d, places) => format!("{d:.places$}"),
                Cell::Empty => String::new(),
            });
            csv.write_record(context.iter().cloned().chain(cells))
                .map_err(io_of)?;
        }
        csv.flush()?;
    }
    Ok(())
}

/// A csv error as the io error it wraps (a closed pipe stays a closed
/// pipe, which the CLI ends on quietly), or as an error of its own.
fn io_of(err: csv::Error) -> std::io::Error {
    match err.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("writing CSV: {other:?}")),
    }
}

fn count(n: i64) -> Cell {
    Cell::Number(n)
}

impl Tabular for Distribution {
    fn header(&self) -> &Header {
        &self.header
    }

    fn tables(&self) -> Vec<Table> {
        let columns = [
            "tier",
            "members",
            "share_percent",
            "spend_in_window_minor",
            "qualifying_points",
            "points_outstanding",
        ];
        let table = Table::new("Members per tier", &columns);
        let table = self
            .tiers
            .iter()
            .chain([&self.total])
            .fold(table, |table, t| {
                table.row(vec![
                    text(&t.tier),
                    count(t.members),
                    Cell::Percent(t.share_percent),
                    Cell::Money(t.spend_in_window_minor),
                    count(t.qualifying_points),
                    count(t.points_outstanding),
                ])
            });
        vec![table]
    }
}

impl Tabular for Migration {
    fn header(&self) -> &Header {
        &self.header
    }

    fn tables(&self) -> Vec<Table> {
        let columns: Vec<String> = ["from_tier".to_owned()]
            .into_iter()
            .chain(self.tiers.iter().cloned())
            .chain(["members".to_owned()])
            .collect();
        let mut matrix = Table {
            title: "Members by tier at the start (rows) and at the end (columns)".into(),
            columns,
            rows: Vec::new(),
        };
        for row in self.rows.iter().chain([&self.joined]) {
            matrix.rows.push(
                [text(&row.from_tier)]
                    .into_iter()
                    .chain(row.to.iter().map(|n| count(*n)))
                    .chain([count(row.members)])
                    .collect(),
            );
        }
        let moves = Table::new("Moves during the period", &["kind", "members"])
            .row(vec![text("promotions"), count(self.promotions)])
            .row(vec![text("demotions"), count(self.demotions)])
            .row(vec![text("manual"), count(self.manual_moves)]);
        vec![matrix, moves]
    }

    fn summary(&self) -> Vec<String> {
        vec![format!(
            "{} members at the start, {} at the end ({} joined)",
            self.members_at_start, self.members_at_end, self.joined.members
        )]
    }
}

impl Tabular for ValueRanks {
    fn header(&self) -> &Header {
        &self.header
    }

    fn tables(&self) -> Vec<Table> {
        let columns = [
            "rank",
            "members",
            "value_minor",
            "share_percent",
            "cumulative_share_percent",
            "average_minor",
        ];
        let ranks = self
            .ranks
            .iter()
            .fold(Table::new("Value ranks", &columns), |table, r| {
                table.row(vec![
                    count(i64::from(r.rank)),
                    count(r.members),
                    Cell::Money(r.value_minor),
                    Cell::Percent(r.share_percent),
                    Cell::Percent(r.cumulative_share_percent),
                    Cell::Money(r.average_minor),
                ])
            });
        let columns = ["top_percent", "members", "value_minor", "share_percent"];
        let pareto = self
            .pareto
            .iter()
            .fold(Table::new("Pareto", &columns), |table, p| {
                table.row(vec![
                    count(i64::from(p.top_percent)),
                    count(p.members),
                    Cell::Money(p.value_minor),
                    Cell::Percent(p.share_percent),
                ])
            });
        vec![ranks, pareto]
    }

    fn summary(&self) -> Vec<String> {
        self.pareto
            .iter()
            .map(|p| {
                format!(
                    "The top {}% of contributing members ({} of {}) bring {:.2}% of the value.",
                    p.top_percent, p.members, self.contributing_members, p.share_percent
                )
            })
            .collect()
    }
}

impl Tabular for ValueBands {
    fn header(&self) -> &Header {
        &self.header
    }

    fn tables(&self) -> Vec<Table> {
        let columns = [
            "band",
            "up_to_minor",
            "members",
            "share_percent",
            "value_minor",
        ];
        let table = Table::new("Members per lifetime-value band", &columns);
        let table = self.bands.iter().fold(table, |table, b| {
            table.row(vec![
                text(&b.band),
                b.up_to_minor.map_or(Cell::Empty, Cell::Money),
                count(b.members),
                Cell::Percent(b.share_percent),
                Cell::Money(b.value_minor),
            ])
        });
        vec![table.row(vec![
            text("total"),
            Cell::Empty,
            count(self.members),
            Cell::Percent(100.0),
            Cell::Money(self.value_minor),
        ])]
    }
}

impl Tabular for Rfm {
    fn header(&self) -> &Header {
        &self.header
    }

    fn tables(&self) -> Vec<Table> {
        let columns = ["segment", "members", "share_percent", "monetary_minor"];
        let segments =
            self.segments
                .iter()
                .fold(Table::new("RFM segments", &columns), |table, s| {
                    table.row(vec![
                        text(&s.segment),
                        count(s.members),
                        Cell::Percent(s.share_percent),
                        Cell::Money(s.monetary_minor),
                    ])
                });
        let mut tables = vec![segments];
        if !self.scores.is_empty() {
            let columns = [
                "member_id",
                "recency_days",
                "frequency",
                "monetary_minor",
                "r",
                "f",
                "m",
                "segment",
            ];
            tables.push(
                self.scores
                    .iter()
                    .fold(Table::new("Members", &columns), |table, s| {
                        table.row(vec![
                            text(&s.member_id),
                            s.recency_days.map_or(Cell::Empty, count),
                            count(s.frequency),
                            Cell::Money(s.monetary_minor),
                            count(i64::from(s.r)),
                            count(i64::from(s.f)),
                            count(i64::from(s.m)),
                            text(&s.segment),
                        ])
                    }),
            );
        }
        tables
    }
}

impl Tabular for Liability {
    fn header(&self) -> &Header {
        &self.header
    }

    fn tables(&self) -> Vec<Table> {
        let columns = ["tier", "members", "points_outstanding", "value_minor"];
        let tiers = self.tiers.iter().chain([&self.total]).fold(
            Table::new("Outstanding points", &columns),
            |table, t| {
                table.row(vec![
                    text(&t.tier),
                    count(t.members),
                    count(t.points_outstanding),
                    Cell::Money(t.value_minor),
                ])
            },
        );
        let columns = ["month", "points", "value_minor"];
        let expiring = self.expiring.iter().fold(
            Table::new("Points lapsing in the next 12 months", &columns),
            |table, e| {
                table.row(vec![
                    text(&e.month),
                    count(e.points),
                    Cell::Money(e.value_minor),
                ])
            },
        );
        let columns = [
            "month",
            "points_redeemed",
            "redeemed_value_minor",
            "points_lapsed",
            "lapsed_value_minor",
        ];
        let past = self.past.iter().fold(
            Table::new("Redemptions and breakage, past 12 months", &columns),
            |table, p| {
                table.row(vec![
                    text(&p.month),
                    count(p.points_redeemed),
                    Cell::Money(p.redeemed_value_minor),
                    count(p.points_lapsed),
                    Cell::Money(p.lapsed_value_minor),
                ])
            },
        );
        let columns = ["reward_id", "name", "redemptions", "points", "value_minor"];
        let rewards = self.rewards.iter().fold(
            Table::new("Redemptions by reward, past 12 months", &columns),
            |table, r| {
                table.row(vec![
                    text(&r.reward_id),
                    text(&r.name),
                    count(r.redemptions),
                    count(r.points),
                    Cell::Money(r.value_minor),
                ])
            },
        );
        vec![tiers, expiring, past, rewards]
    }
}

impl Tabular for Prediction {
    fn header(&self) -> &Header {
        &self.header
    }

    fn summary(&self) -> Vec<String> {
        let (bg, gg) = (&self.bg_nbd, &self.gamma_gamma);
        vec![
            format!(
                "BG/NBD over {} members (weeks): r {:.4}, alpha {:.4}, a {:.4}, b {:.4}",
                bg.members, bg.r, bg.alpha, bg.a, bg.b
            ),
            format!(
                "Gamma-Gamma over {} members with repeat purchases (minor units): p {:.4}, q {:.4}, gamma {:.4}",
                gg.members, gg.p, gg.q, gg.gamma
            ),
            format!(
                "expected purchases over the next {} days; value over {} months at {} basis points a month; at risk below P(alive) {}%; {} members without purchases not scored",
                self.days,
                self.months,
                self.discount_bp,
                self.alive_below_percent,
                self.members_without_purchases
            ),
        ]
    }

    fn tables(&self) -> Vec<Table> {
        let mut tables = vec![groups_table(
            "By tier",
            "tier",
            self.tiers.iter().chain([&self.total]),
        )];
        if !self.groups.is_empty() {
            tables.push(groups_table("By attribute", "group", self.groups.iter()));
        }
        tables.push(groups_table(
            "By RFM segment",
            "segment",
            self.rfm_segments.iter(),
        ));
        tables.push(groups_table(
            "By named segment",
            "segment",
            self.segments.iter(),
        ));
        tables.push(members_table("At risk, worth most first", &self.at_risk));
        if !self.holdout.is_empty() {
            let columns = ["group", "members", "expected_purchases", "actual_purchases"];
            tables.push(self.holdout.iter().fold(
                Table::new("Holdout: purchase days after the calibration end", &columns),
                |table, h| {
                    table.row(vec![
                        text(&h.group),
                        count(h.members),
                        Cell::Decimal(h.expected_purchases, 1),
                        count(h.actual_purchases),
                    ])
                },
            ));
        }
        if !self.members.is_empty() {
            tables.push(members_table("Members", &self.members));
        }
        tables
    }
}

fn groups_table<'g>(
    title: &str,
    first: &str,
    rows: impl Iterator<Item = &'g PredictionGroup>,
) -> Table {
    let columns = [
        first,
        "members",
        "p_alive_mean",
        "expected_purchases",
        "predicted_value_minor",
        "past_value_minor",
    ];
    rows.fold(Table::new(title, &columns), |table, g| {
        table.row(vec![
            text(&g.group),
            count(g.members),
            Cell::Decimal(g.p_alive_mean, 4),
            Cell::Decimal(g.expected_purchases, 2),
            Cell::Money(g.predicted_value_minor),
            Cell::Money(g.past_value_minor),
        ])
    })
}

fn members_table(title: &str, members: &[MemberPrediction]) -> Table {
    let columns = [
        "member_id",
        "tier",
        "purchase_days",
        "p_alive",
        "expected_purchases",
        "expected_spend_minor",
        "predicted_value_minor",
        "past_value_minor",
    ];
    members
        .iter()
        .fold(Table::new(title, &columns), |table, m| {
            table.row(vec![
                text(&m.member_id),
                text(&m.tier),
                count(m.purchase_days),
                Cell::Decimal(m.p_alive, 4),
                Cell::Decimal(m.expected_purchases, 3),
                Cell::Money(m.expected_spend_minor),
                Cell::Money(m.predicted_value_minor),
                Cell::Money(m.past_value_minor),
            ])
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::liability::{LiabilityRow, RewardRedemptions};

    /// The header of `report` as of 2026-12-01 under rules v1.
    fn header(report: &str) -> Header {
        Header {
            report: report.into(),
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 12, 1),
            from: None,
            to: None,
            rules_version: "v1".into(),
            currency: "EUR".into(),
            spend_basis: None,
        }
    }

    #[test]
    fn the_liability_s_csv_ends_with_its_redemptions_by_reward() {
        let row = |reward_id: &str, name: &str, redemptions, points| RewardRedemptions {
            reward_id: reward_id.into(),
            name: name.into(),
            redemptions,
            points,
            value_minor: points,
        };
        let liability = Liability {
            header: header("liability"),
            point_value_minor: 1,
            tiers: Vec::new(),
            total: LiabilityRow::default(),
            expiring: Vec::new(),
            past: Vec::new(),
            rewards: vec![
                row("tote", "A tote bag", 1, 5),
                row("", "given back by returns", 0, -30),
            ],
        };
        let mut out = Vec::new();
        write_csv(&liability, &mut out).expect("written");
        let csv = String::from_utf8(out).expect("text");
        assert!(
            csv.ends_with(
                "\n\nreport,as_of,from,to,rules_version,currency,reward_id,name,redemptions,points,value_minor\n\
                 liability,2026-12-01,,,v1,EUR,tote,A tote bag,1,5,5\n\
                 liability,2026-12-01,,,v1,EUR,,given back by returns,0,-30,-30\n"
            ),
            "{csv}"
        );
    }

    #[test]
    fn a_report_says_what_its_spend_leaves_out() {
        let mut header = header("distribution");
        assert_eq!(
            describe(&header),
            "distribution as of 2026-12-01 (rules v1, EUR)"
        );
        header.spend_basis = Some("lines of category delivery do not count".into());
        assert_eq!(
            describe(&header),
            "distribution as of 2026-12-01 (rules v1, EUR; lines of category delivery do not count)"
        );
        let json = serde_json::to_string(&header).expect("json");
        assert!(
            json.contains("\"spend_basis\":\"lines of category delivery"),
            "{json}"
        );
    }
}
