//! Every report as an Excel workbook, where analysts open reports most:
//! a sheet saying what the figures are for, then one sheet per table, each
//! with its header row frozen; counts and points as numbers, money as
//! numbers in major units shown with the currency's decimals, percentages
//! as Excel percentages, the models' figures with their decimals.
//!
//! The workbook's creation time is the report's own day, so that the same
//! report gives the same bytes from the service and from its data.

use std::io::Write;

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::{
    Header,
    table::{self, Cell, Table, Tabular},
};
use crate::money::Currency;

/// Excel's longest sheet name.
const SHEET_NAME_CHARS: usize = 31;

/// Writes `report` as an `.xlsx` workbook.
///
/// # Errors
/// On a failed write (or a workbook the library refuses, as an I/O error).
pub fn write_xlsx(report: &dyn Tabular, out: &mut dyn Write) -> std::io::Result<()> {
    let bytes = workbook(report).map_err(std::io::Error::other)?;
    out.write_all(&bytes)
}

fn workbook(report: &dyn Tabular) -> Result<Vec<u8>, XlsxError> {
    let header = report.header();
    let currency = Currency::parse(&header.currency).unwrap_or_default();
    let mut book = Workbook::new();
    let day = header.as_of.or(header.to).unwrap_or_default();
    let created = ExcelDateTime::parse_from_str(&day.to_string())?;
    book.set_properties(
        &DocProperties::new()
            .set_title(format!("tierd report {}", header.report))
            .set_creation_datetime(&created),
    );
    about(book.add_worksheet(), report, header)?;
    let mut names: Vec<String> = Vec::new();
    for t in report.tables() {
        let name = sheet_name(&t.title, &names);
        sheet(book.add_worksheet(), &name, &t, currency)?;
        names.push(name);
    }
    book.save_to_buffer()
}

/// The first sheet: what the figures are for, and the report's summary.
fn about(sheet: &mut Worksheet, report: &dyn Tabular, header: &Header) -> Result<(), XlsxError> {
    sheet.set_name("About")?;
    let bold = Format::new().set_bold();
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let rows = [
        ("report", header.report.clone()),
        ("as_of", day(header.as_of)),
        ("from", day(header.from)),
        ("to", day(header.to)),
        ("rules_version", header.rules_version.clone()),
        ("currency", header.currency.clone()),
        ("what", table::describe(header)),
    ];
    let mut row = 0;
    for (name, value) in rows {
        sheet.write_string_with_format(row, 0, name, &bold)?;
        sheet.write_string(row, 1, value)?;
        row += 1;
    }
    for line in report.summary() {
        row += 1;
        sheet.write_string(row, 0, line)?;
    }
    sheet.set_column_width(0, 16)?;
    Ok(())
}

/// One table on its own sheet, its header row frozen.
fn sheet(
    sheet: &mut Worksheet,
    name: &str,
    t: &Table,
    currency: Currency,
) -> Result<(), XlsxError> {
    sheet.set_name(name)?;
    let bold = Format::new().set_bold();
    for (col, column) in (0_u16..).zip(&t.columns) {
        sheet.write_string_with_format(0, col, table::column_title(column), &bold)?;
        sheet.set_column_width(col, 14)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    let money = Format::new().set_num_format(money_format(currency));
    let percent = Format::new().set_num_format("0.00%");
    for (row, cells) in (1_u32..).zip(&t.rows) {
        for (col, cell) in (0_u16..).zip(cells) {
            match cell {
                Cell::Text(text) => {
                    sheet.write_string(row, col, text)?;
                }
                Cell::Number(n) => {
                    sheet.write_number(row, col, *n as f64)?;
                }
                Cell::Money(minor) => {
                    let major = *minor as f64 / currency.minor_per_major() as f64;
                    sheet.write_number_with_format(row, col, major, &money)?;
                }
                Cell::Percent(p) => {
                    sheet.write_number_with_format(row, col, p / 100.0, &percent)?;
                }
                Cell::Decimal(d, places) => {
                    let format = Format::new().set_num_format(decimals_format(*places));
                    sheet.write_number_with_format(row, col, *d, &format)?;
                }
                Cell::Empty => {}
            }
        }
    }
    Ok(())
}

/// Money's number format: thousands grouped, the currency's decimals.
fn money_format(currency: Currency) -> String {
    let exponent = currency.exponent() as usize;
    if exponent == 0 {
        "#,##0".to_owned()
    } else {
        format!("#,##0.{}", "0".repeat(exponent))
    }
}

/// A number format with `places` decimals.
fn decimals_format(places: usize) -> String {
    if places == 0 {
        "0".to_owned()
    } else {
        format!("0.{}", "0".repeat(places))
    }
}

/// A sheet name from a table's title: Excel's forbidden characters left
/// out, at most 31 characters, unique among `taken` (a number added).
fn sheet_name(title: &str, taken: &[String]) -> String {
    let clean: String = title
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
        .take(SHEET_NAME_CHARS)
        .collect();
    let base = if clean.trim().is_empty() || clean == "About" {
        "Table".to_owned()
    } else {
        clean.trim().to_owned()
    };
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        let suffix = format!(" {n}");
        let keep = SHEET_NAME_CHARS.saturating_sub(suffix.len());
        name = format!("{}{suffix}", base.chars().take(keep).collect::<String>());
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Titles become names Excel takes: no forbidden characters, at most
    /// 31 characters, each once.
    #[test]
    fn sheet_names_are_ones_excel_takes() {
        let long = "Holdout: purchase days after the calibration end";
        let first = sheet_name(long, &[]);
        assert_eq!(first, "Holdout purchase days after the");
        assert_eq!(first.chars().count(), 31);
        let second = sheet_name(long, std::slice::from_ref(&first));
        assert_eq!(second, "Holdout purchase days after t 2");
        assert_eq!(sheet_name("About", &[]), "Table");
    }

    #[test]
    fn money_shows_the_currency_s_decimals() {
        assert_eq!(
            money_format(Currency::parse("EUR").expect("a code")),
            "#,##0.00"
        );
        assert_eq!(
            money_format(Currency::parse("JPY").expect("a code")),
            "#,##0"
        );
        assert_eq!(decimals_format(3), "0.000");
    }
}
