//! Every report on one self-contained HTML page, for people: a chart for
//! each (inline SVG, drawn here: bars, a heat map, lines) with the report's
//! tables under it. Nothing is fetched to view it (no scripts, fonts or
//! images from elsewhere), and it prints: charts keep to the page width and
//! tables do not break inside a row.
//!
//! The figures are the reports' own; the page only draws and formats them
//! (money in major units, as in the terminal tables).

use std::fmt::Write as _;

use super::{
    Header,
    clusters::Clusters,
    liability::Liability,
    predict::Prediction,
    segments::Segments,
    table::{self, Tabular},
    tier::{Distribution, Migration},
    value::{Rfm, ValueBands, ValueRanks},
};
use crate::money::Currency;

/// The reports the page shows, each made for the same period (or its last
/// day).
#[derive(Debug, Clone)]
pub struct Page {
    /// Members per tier.
    pub distribution: Distribution,
    /// Moves between tiers.
    pub migration: Migration,
    /// The Pareto view.
    pub value_ranks: ValueRanks,
    /// Lifetime-value bands.
    pub value_bands: ValueBands,
    /// RFM segments.
    pub rfm: Rfm,
    /// The rules' segments over time.
    pub segments: Segments,
    /// Behavioural clusters.
    pub clusters: Clusters,
    /// Outstanding points.
    pub liability: Liability,
    /// Predictions by the models of repeat buying, or why there are none
    /// (too few members, a fit that did not converge).
    pub prediction: Result<Prediction, String>,
}

const WIDTH: i64 = 720;
const PALETTE: [&str; 8] = [
    "#2f6db5", "#e07b39", "#3a9e5c", "#c8463d", "#8a63b8", "#8c6d4f", "#d26fb0", "#6f7c87",
];
const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;\
max-width:60rem;color:#222;padding:0 1rem}h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.5rem;\
border-bottom:1px solid #ccc;padding-bottom:.2rem}p.what{color:#555;margin:.2rem 0 .8rem}\
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.85rem}caption{text-align:left;\
font-weight:600;padding:.3rem 0}th,td{border:1px solid #ddd;padding:.2rem .5rem}td.n{text-align:right;\
font-variant-numeric:tabular-nums}th{background:#f3f3f3}tr{break-inside:avoid}\
svg{max-width:100%;height:auto}svg text{font-family:inherit;font-size:12px;fill:#222}svg text.title{font-size:14px;font-weight:600}\
svg text.axis{font-style:italic;fill:#555}\
section{break-inside:avoid-page}@media print{body{margin:0}h2{break-after:avoid}}";

/// The page as one HTML document.
pub fn render(page: &Page) -> String {
    let header = &page.segments.header;
    let currency = Currency::parse(&header.currency).unwrap_or_default();
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Loyalty programme report</title><style>{STYLE}</style></head><body>\n\
         <h1>Loyalty programme report</h1>\n<p class=\"what\">{} to {}, rules {}, amounts in {}. \
         Every figure is an exact integer total; percentages are derived from them.{}</p>\n",
        day(header.from),
        day(header.to),
        escape(&header.rules_version),
        escape(&header.currency),
        header
            .spend_basis
            .as_ref()
            .map_or_else(String::new, |basis| format!(" Spend: {}.", escape(basis)))
    );
    section(
        &mut html,
        "Members per tier",
        &page.distribution,
        &distribution_chart(&page.distribution),
    );
    section(
        &mut html,
        "Tier migration",
        &page.migration,
        &migration_chart(&page.migration),
    );
    section(
        &mut html,
        "Value ranks (Pareto)",
        &page.value_ranks,
        &pareto_chart(&page.value_ranks),
    );
    section(
        &mut html,
        "Lifetime-value bands",
        &page.value_bands,
        &member_bars(
            &Titles {
                chart: "Members in each lifetime-value band",
                x: "Members",
                y: "Lifetime-value band",
            },
            page.value_bands
                .bands
                .iter()
                .map(|b| (&b.band, b.members, b.share_percent)),
        ),
    );
    section(
        &mut html,
        "RFM segments",
        &page.rfm,
        &member_bars(
            &Titles {
                chart: "Members in each RFM segment",
                x: "Members",
                y: "RFM segment",
            },
            page.rfm
                .segments
                .iter()
                .map(|s| (&s.segment, s.members, s.share_percent)),
        ),
    );
    section(
        &mut html,
        "Segments over time",
        &page.segments,
        &segments_chart(&page.segments),
    );
    section(
        &mut html,
        "Clusters",
        &page.clusters,
        &clusters_chart(&page.clusters),
    );
    section(
        &mut html,
        "Points liability",
        &page.liability,
        &liability_chart(&page.liability, currency),
    );
    match &page.prediction {
        Ok(prediction) => section(
            &mut html,
            "Predictions: who is slipping away, what each member will be worth",
            prediction,
            &prediction_chart(prediction, currency),
        ),
        Err(why) => {
            let _ = write!(
                html,
                "<section><h2>Predictions</h2>\n<p class=\"what\">{}</p></section>\n",
                escape(why)
            );
        }
    }
    html.push_str("</body></html>\n");
    html
}

fn day(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn count_label(members: i64, share: f64) -> String {
    format!("{members} ({share:.2}%)")
}

/// Escapes text for HTML and SVG.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A titled section: the chart, the summary lines, then every table.
fn section(html: &mut String, title: &str, report: &dyn Tabular, chart: &str) {
    let header = report.header();
    let _ = write!(
        html,
        "<section><h2>{}</h2>\n<p class=\"what\">{}</p>\n{chart}\n",
        escape(title),
        escape(&table::describe(header))
    );
    for line in report.summary() {
        let _ = writeln!(html, "<p>{}</p>", escape(&line));
    }
    tables(html, report, header);
    html.push_str("</section>\n");
}

fn tables(html: &mut String, report: &dyn Tabular, header: &Header) {
    let currency = Currency::parse(&header.currency).unwrap_or_default();
    for t in report.tables() {
        let _ = write!(html, "<table><caption>{}</caption><tr>", escape(&t.title));
        for name in &t.columns {
            let _ = write!(html, "<th>{}</th>", escape(&table::column_title(name)));
        }
        html.push_str("</tr>\n");
        for row in &t.rows {
            html.push_str("<tr>");
            for cell in row {
                let shown = table::shown(cell, currency);
                let numeric = match cell {
                    table::Cell::Text(text) => text.parse::<f64>().is_ok(),
                    _ => true,
                };
                let class = if numeric { " class=\"n\"" } else { "" };
                let _ = write!(html, "<td{class}>{}</td>", escape(&shown));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</table>\n");
    }
}

/// What a chart is called and what its axes measure: shown on the chart,
/// and its title is the chart's accessible name (a screen reader says it).
struct Titles<'a> {
    chart: &'a str,
    /// The horizontal axis.
    x: &'a str,
    /// The vertical axis.
    y: &'a str,
}

/// Room above a chart for its title.
const TITLE_ROW: i64 = 28;

/// An SVG element of the page width, `height` plus its title row, named
/// by its title for assistive technology; `body` is drawn below the title.
fn svg(titles: &Titles<'_>, height: i64, body: &str) -> String {
    let id = format!(
        "chart-{}",
        titles
            .chart
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            })
            .collect::<String>()
    );
    let title = escape(titles.chart);
    let height = height + TITLE_ROW;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-labelledby=\"{id}\">\
         <title id=\"{id}\">{title}</title>\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" class=\"title\">{title}</text>\
         <g transform=\"translate(0,{TITLE_ROW})\">{body}</g></svg>",
        WIDTH / 2
    )
}

/// An axis title along the bottom, centred on `centre`.
fn x_title(text: &str, centre: i64, y: i64) -> String {
    format!(
        "<text x=\"{centre}\" y=\"{y}\" text-anchor=\"middle\" class=\"axis\">{}</text>",
        escape(text)
    )
}

/// An axis title up the left side, centred on `middle`.
fn y_title(text: &str, middle: i64) -> String {
    format!(
        "<text x=\"14\" y=\"{middle}\" text-anchor=\"middle\" class=\"axis\" \
         transform=\"rotate(-90 14 {middle})\">{}</text>",
        escape(text)
    )
}

/// A tick step of 1, 2 or 5 times a power of ten that cuts `0..=max` into
/// at most five or so parts: ticks a reader can add up in their head.
fn tick_step(max: i64) -> i64 {
    let rough = (max / 5).max(1);
    let mut magnitude = 1_i64;
    while magnitude.saturating_mul(10) <= rough {
        magnitude *= 10;
    }
    [1, 2, 5]
        .into_iter()
        .map(|m| magnitude.saturating_mul(m))
        .find(|step| *step >= rough)
        .unwrap_or(magnitude.saturating_mul(10))
}

/// `value` of `max` as a length of `span` pixels.
fn scaled(value: i64, max: i64, span: i64) -> i64 {
    if max <= 0 {
        return 0;
    }
    let length = i128::from(value.max(0)) * i128::from(span) / i128::from(max);
    i64::try_from(length).unwrap_or(span)
}

/// Horizontal bars: a label, a bar as long as the value, the value's text;
/// the labels' axis is titled above them, the values' below the bars.
fn bars(titles: &Titles<'_>, items: &[(String, i64, String)]) -> String {
    const LABEL: i64 = 150;
    const ROW: i64 = 24;
    const HEAD: i64 = 20;
    let span = WIDTH - LABEL - 220;
    let max = items.iter().map(|i| i.1).max().unwrap_or(0);
    let mut body = format!(
        "<text x=\"{}\" y=\"12\" text-anchor=\"end\" class=\"axis\">{}</text>",
        LABEL - 6,
        escape(titles.y)
    );
    for (i, (label, value, text)) in items.iter().enumerate() {
        let y = HEAD + i64::try_from(i).unwrap_or(0) * ROW + 4;
        let length = scaled(*value, max, span);
        let colour = PALETTE[i % PALETTE.len()];
        let _ = write!(
            body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{length}\" height=\"{}\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            LABEL - 6,
            y + 14,
            escape(label),
            ROW - 6,
            LABEL + length + 6,
            y + 14,
            escape(text)
        );
    }
    let bottom = HEAD + i64::try_from(items.len()).unwrap_or(0) * ROW + 8;
    body.push_str(&x_title(titles.x, LABEL + span / 2, bottom + 14));
    svg(titles, bottom + 22, &body)
}

/// A grid of numbers shaded by size: by the largest cell, or by the
/// largest of each column when the columns are in different units.
fn heat_map(
    titles: &Titles<'_>,
    rows: &[String],
    columns: &[String],
    cells: &[Vec<(i64, String)>],
    per_column: bool,
) -> String {
    const LABEL: i64 = 150;
    const HEIGHT: i64 = 28;
    let width = (WIDTH - LABEL) / i64::try_from(columns.len().max(1)).unwrap_or(1);
    let column_max: Vec<i64> = (0..columns.len())
        .map(|c| {
            let column = cells.iter().filter_map(|r| r.get(c));
            column.map(|v| v.0).max().unwrap_or(0)
        })
        .collect();
    let overall = column_max.iter().copied().max().unwrap_or(0);
    // The columns' title, then their names; the rows' title above their
    // names.
    let mut body = x_title(titles.x, LABEL + (WIDTH - LABEL) / 2, 14);
    let _ = write!(
        body,
        "<text x=\"{}\" y=\"38\" text-anchor=\"end\" class=\"axis\">{}</text>",
        LABEL - 6,
        escape(titles.y)
    );
    for (c, name) in columns.iter().enumerate() {
        let x = LABEL + i64::try_from(c).unwrap_or(0) * width + width / 2;
        let _ = write!(
            body,
            "<text x=\"{x}\" y=\"38\" text-anchor=\"middle\">{}</text>",
            escape(name)
        );
    }
    for (r, (name, row)) in rows.iter().zip(cells).enumerate() {
        let y = 46 + i64::try_from(r).unwrap_or(0) * HEIGHT;
        let _ = write!(
            body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LABEL - 6,
            y + 18,
            escape(name)
        );
        for (c, (value, text)) in row.iter().enumerate() {
            let max = match column_max.get(c) {
                Some(own) if per_column => *own,
                _ => overall,
            };
            let strength = scaled(*value, max, 100);
            let x = LABEL + i64::try_from(c).unwrap_or(0) * width;
            let ink = if strength > 55 { "#fff" } else { "#222" };
            let _ = write!(
                body,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"#2f6db5\" \
                 fill-opacity=\"{:.2}\" stroke=\"#fff\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" style=\"fill:{ink}\">{}</text>",
                width,
                HEIGHT,
                0.06 + 0.94 * f64::from(u8::try_from(strength).unwrap_or(100)) / 100.0,
                x + width / 2,
                y + 18,
                escape(text)
            );
        }
    }
    svg(
        titles,
        46 + i64::try_from(rows.len()).unwrap_or(0) * HEIGHT + 4,
        &body,
    )
}

/// Lines over labelled points, one per series, with a legend; the value
/// axis runs from 0 to a round number at or above the largest value, with
/// ticks on 1-2-5 steps.
fn lines(
    titles: &Titles<'_>,
    x_labels: &[String],
    series: &[(String, Vec<i64>)],
    axis: &dyn Fn(i64) -> String,
) -> String {
    const LEFT: i64 = 90;
    const TOP: i64 = 10;
    const PLOT: i64 = 220;
    let right = WIDTH - 20;
    let largest = series.iter().flat_map(|s| &s.1).copied().max().unwrap_or(0);
    let step = tick_step(largest);
    let top = ((largest.max(1) - 1) / step + 1).saturating_mul(step);
    let steps = i64::try_from(x_labels.len().saturating_sub(1).max(1)).unwrap_or(1);
    let x_of = |i: usize| LEFT + i64::try_from(i).unwrap_or(0) * (right - LEFT) / steps;
    let y_of = |v: i64| TOP + PLOT - scaled(v, top, PLOT);
    let mut body = format!(
        "<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{right}\" y2=\"{}\" stroke=\"#888\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#888\"/>",
        TOP + PLOT,
        TOP + PLOT,
        TOP + PLOT
    );
    for value in (0..=top).step_by(usize::try_from(step).unwrap_or(1)) {
        let _ = write!(
            body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"tick\">{}</text>",
            LEFT - 6,
            y_of(value) + 4,
            escape(&axis(value))
        );
    }
    let every = x_labels.len().div_ceil(12).max(1);
    for (i, label) in x_labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x_of(i),
            TOP + PLOT + 18,
            escape(label)
        );
    }
    body.push_str(&x_title(titles.x, (LEFT + right) / 2, TOP + PLOT + 38));
    body.push_str(&y_title(titles.y, TOP + PLOT / 2));
    for (n, (name, values)) in series.iter().enumerate() {
        let colour = PALETTE[n % PALETTE.len()];
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{},{}", x_of(i), y_of(*v)))
            .collect();
        let _ = write!(
            body,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            points.join(" ")
        );
        let legend_y = TOP + PLOT + 62 + i64::try_from(n / 4).unwrap_or(0) * 18;
        let legend_x = LEFT + i64::try_from(n % 4).unwrap_or(0) * 150;
        let _ = write!(
            body,
            "<rect x=\"{legend_x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{legend_y}\">{}</text>",
            legend_y - 10,
            legend_x + 16,
            escape(name)
        );
    }
    let legend_rows = i64::try_from(series.len().div_ceil(4)).unwrap_or(0);
    svg(titles, TOP + PLOT + 52 + legend_rows * 18 + 6, &body)
}

/// Bars of members per group, labelled with the count and the share.
fn member_bars<'a>(
    titles: &Titles<'_>,
    groups: impl Iterator<Item = (&'a String, i64, f64)>,
) -> String {
    let items: Vec<(String, i64, String)> = groups
        .map(|(name, members, share)| (name.clone(), members, count_label(members, share)))
        .collect();
    bars(titles, &items)
}

fn distribution_chart(r: &Distribution) -> String {
    member_bars(
        &Titles {
            chart: "Members in each tier",
            x: "Members",
            y: "Tier",
        },
        r.tiers
            .iter()
            .map(|t| (&t.tier, t.members, t.share_percent)),
    )
}

fn migration_chart(r: &Migration) -> String {
    let rows: Vec<String> = r
        .rows
        .iter()
        .chain([&r.joined])
        .map(|row| row.from_tier.clone())
        .collect();
    let cells: Vec<Vec<(i64, String)>> = r
        .rows
        .iter()
        .chain([&r.joined])
        .map(|row| row.to.iter().map(|n| (*n, n.to_string())).collect())
        .collect();
    let titles = Titles {
        chart: "Moves between tiers over the period",
        x: "To tier (end of period)",
        y: "From tier (start)",
    };
    heat_map(&titles, &rows, &r.tiers, &cells, false)
}

/// The cumulative share of value by rank, in hundredths of a percent.
fn pareto_chart(r: &ValueRanks) -> String {
    let mut labels = vec![String::from("0")];
    let mut cumulative = vec![0];
    for rank in &r.ranks {
        labels.push(rank.rank.to_string());
        cumulative.push(basis_points(rank.cumulative_share_percent));
    }
    let series = [(String::from("cumulative share of value"), cumulative)];
    let titles = Titles {
        chart: "Cumulative share of value by rank",
        x: "Value rank (1 = the most valuable members)",
        y: "Share of value",
    };
    lines(&titles, &labels, &series, &|v| format!("{}%", v / 100))
}

#[allow(clippy::cast_possible_truncation)] // a percentage, 0 to 100 or so
fn basis_points(percent: f64) -> i64 {
    (percent * 100.0).round() as i64
}

fn segments_chart(r: &Segments) -> String {
    let labels: Vec<String> = r.months.iter().map(|m| m.month.clone()).collect();
    let series: Vec<(String, Vec<i64>)> = r
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let sizes = r
                .months
                .iter()
                .map(|m| m.segments.get(i).map_or(0, |p| p.members))
                .collect();
            (s.segment.clone(), sizes)
        })
        .collect();
    let titles = Titles {
        chart: "Segment sizes month by month",
        x: "Month",
        y: "Members",
    };
    lines(&titles, &labels, &series, &|v| v.to_string())
}

/// The clusters' centres, each feature shaded against its largest centre.
fn clusters_chart(r: &Clusters) -> String {
    let columns: Vec<String> = [
        "members",
        "recency days",
        "purchases",
        "avg spend",
        "points",
        "activities",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let currency = Currency::parse(&r.header.currency).unwrap_or_default();
    let tenths = |x: f64| basis_points(x) / 10;
    let rows: Vec<String> = r
        .clusters
        .iter()
        .map(|c| format!("cluster {}", c.cluster))
        .collect();
    let cells: Vec<Vec<(i64, String)>> = r
        .clusters
        .iter()
        .map(|c| {
            vec![
                (c.members, c.members.to_string()),
                (tenths(c.recency_days), format!("{:.1}", c.recency_days)),
                (tenths(c.frequency), format!("{:.1}", c.frequency)),
                (
                    c.average_monetary_minor,
                    currency.format_minor(c.average_monetary_minor),
                ),
                (tenths(c.points), format!("{:.0}", c.points)),
                (tenths(c.engagement), format!("{:.1}", c.engagement)),
            ]
        })
        .collect();
    let titles = Titles {
        chart: "Cluster centres, each measure shaded against its largest",
        x: "Measure (the cluster's average)",
        y: "Cluster",
    };
    heat_map(&titles, &rows, &columns, &cells, true)
}

fn liability_chart(r: &Liability, currency: Currency) -> String {
    let items: Vec<(String, i64, String)> = r
        .expiring
        .iter()
        .map(|m| {
            let text = format!(
                "{} points ({})",
                m.points,
                currency.format_minor(m.value_minor)
            );
            (m.month.clone(), m.points, text)
        })
        .collect();
    let titles = Titles {
        chart: "Points expiring month by month",
        x: "Points (their value)",
        y: "Month",
    };
    bars(&titles, &items)
}

/// The value each tier's members are predicted to bring, with their mean
/// P(alive).
fn prediction_chart(r: &Prediction, currency: Currency) -> String {
    let items: Vec<(String, i64, String)> = r
        .tiers
        .iter()
        .map(|t| {
            let text = format!(
                "{} (mean P(alive) {:.2})",
                currency.format_minor(t.predicted_value_minor),
                t.p_alive_mean
            );
            (t.group.clone(), t.predicted_value_minor, text)
        })
        .collect();
    let titles = Titles {
        chart: "Value predicted over the coming months, by tier",
        x: "Predicted value (members' mean probability of still buying)",
        y: "Tier",
    };
    bars(&titles, &items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<b>\"a&b\"</b>"),
            "&lt;b&gt;&quot;a&amp;b&quot;&lt;/b&gt;"
        );
    }

    #[test]
    fn bars_scale_to_the_largest_value() {
        let titles = Titles {
            chart: "t",
            x: "x",
            y: "y",
        };
        let chart = bars(
            &titles,
            &[
                ("a".into(), 10, "10".into()),
                ("b".into(), 5, "5".into()),
                ("c".into(), 0, "0".into()),
            ],
        );
        let span = WIDTH - 150 - 220;
        assert!(chart.contains(&format!("width=\"{span}\"")), "{chart}");
        assert!(
            chart.contains(&format!("width=\"{}\"", span / 2)),
            "{chart}"
        );
        assert!(chart.contains("width=\"0\""), "{chart}");
        assert_eq!(scaled(5, 0, 100), 0);
        assert_eq!(scaled(-5, 10, 100), 0);
    }

    #[test]
    fn ticks_fall_on_one_two_five_steps() {
        assert_eq!(tick_step(7592), 2000);
        assert_eq!(tick_step(10_000), 2000);
        assert_eq!(tick_step(3796), 1000);
        assert_eq!(tick_step(240), 50);
        assert_eq!(tick_step(0), 1);
        assert_eq!(tick_step(i64::MAX) % 10, 0);
    }

    #[test]
    fn a_chart_is_named_by_its_title_and_its_axes_are_titled() {
        let titles = Titles {
            chart: "Segment sizes <by> month",
            x: "Month",
            y: "Members",
        };
        let chart = lines(
            &titles,
            &["2026-01".into(), "2026-02".into()],
            &[("a".into(), vec![3796, 7592])],
            &|v| v.to_string(),
        );
        let id = "chart-segment-sizes--by--month";
        assert!(
            chart.contains(&format!("aria-labelledby=\"{id}\"")),
            "{chart}"
        );
        assert!(
            chart.contains(&format!(
                "<title id=\"{id}\">Segment sizes &lt;by&gt; month</title>"
            )),
            "{chart}"
        );
        assert!(chart.contains(">Month</text>") && chart.contains(">Members</text>"));
        let ticks: Vec<&str> = chart
            .split("class=\"tick\">")
            .skip(1)
            .filter_map(|t| t.split('<').next())
            .collect();
        assert_eq!(ticks, ["0", "2000", "4000", "6000", "8000"]);
    }
}
