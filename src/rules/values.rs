//! Typed values of the rules file that validate while they are read, so that
//! a wrong value is reported at its own line and column by serde_yaml.
//!
//! Money amounts need the program currency to know how many decimals are
//! allowed. Since serde gives a value no access to its siblings, the loader
//! reads the currency first and puts it in a thread-local [`LoadContext`] for
//! the duration of the full parse.

use std::{
    cell::{Cell, RefCell},
    fmt,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};

use serde::de::{self, Deserializer, Visitor};

use super::{Diagnostic, Severity};
use crate::{
    money::{Currency, Decimal},
    script::{Script, ScriptError, ScriptKind},
};

thread_local! {
    static CURRENCY: Cell<Option<Currency>> = const { Cell::new(None) };
    /// Where `script_file` / `bonus_file` names are looked up.
    static SCRIPT_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    /// The `.rhai` files read so far, with their text.
    static SCRIPT_FILES: RefCell<Vec<(PathBuf, String)>> = const { RefCell::new(Vec::new()) };
    /// A compile error inside a `.rhai` file, located in that file.
    static SCRIPT_ERROR: RefCell<Option<Diagnostic>> = const { RefCell::new(None) };
}

/// Makes the program currency (and the directory of `.rhai` files) known
/// to the values being read while it lives.
pub(crate) struct LoadContext(());

impl LoadContext {
    pub(crate) fn enter(currency: Option<Currency>) -> Self {
        CURRENCY.with(|c| c.set(currency));
        Self(())
    }

    pub(crate) fn with_script_dir(self, dir: Option<PathBuf>) -> Self {
        SCRIPT_DIR.with(|d| *d.borrow_mut() = dir);
        self
    }

    /// The `.rhai` files read during this load.
    pub(crate) fn script_files(&self) -> Vec<(PathBuf, String)> {
        SCRIPT_FILES.with(|f| f.borrow().clone())
    }

    /// The located error of a `.rhai` file that did not compile, if any.
    pub(crate) fn take_script_error(&self) -> Option<Diagnostic> {
        SCRIPT_ERROR.with(|e| e.borrow_mut().take())
    }
}

/// Reads and compiles a `.rhai` file named in the rules; a compile error
/// is also kept, located in the script file itself.
pub(crate) fn load_script_file(name: &str, kind: ScriptKind) -> Result<Script, String> {
    let Some(dir) = SCRIPT_DIR.with(|d| d.borrow().clone()) else {
        return Err(format!(
            "{name}: these rules are not read from a file, so they cannot name a script file; put the script inline"
        ));
    };
    if Path::new(name).components().count() != 1 || name == ".." {
        return Err(format!(
            "{name:?}: name a .rhai file in the rules' own directory, without a path"
        ));
    }
    let path = dir.join(name);
    let text = super::source::read_capped(&path)
        .map_err(|e| format!("cannot read script {}: {e}", path.display()))?;
    SCRIPT_FILES.with(|f| f.borrow_mut().push((path.clone(), text.clone())));
    Script::compile(&text, kind).map_err(|err| {
        let message = err.to_string();
        if let ScriptError::Compile {
            line,
            column,
            message: inner,
        } = err
        {
            SCRIPT_ERROR.with(|e| {
                *e.borrow_mut() = Some(Diagnostic {
                    file: path.clone(),
                    line,
                    column,
                    severity: Severity::Error,
                    message: inner,
                })
            });
        }
        format!("in {name}: {message}")
    })
}

impl Drop for LoadContext {
    fn drop(&mut self) {
        CURRENCY.with(|c| c.set(None));
        SCRIPT_DIR.with(|d| *d.borrow_mut() = None);
        SCRIPT_FILES.with(|f| f.borrow_mut().clear());
        SCRIPT_ERROR.with(|e| *e.borrow_mut() = None);
    }
}

fn context_currency() -> Currency {
    // Without a valid currency the parse fails on the currency field anyway;
    // two decimals (the default) keep the other messages meaningful meanwhile.
    CURRENCY.with(Cell::get).unwrap_or_default()
}

/// Reads a scalar as text and converts it inside the visitor, so that a
/// conversion error carries the scalar's own line and column (serde_yaml
/// marks an error with the position of the value being visited).
///
/// YAML reads `1.5` as a float: the float is turned back into its shortest
/// decimal text, which is what the author typed for any value a person
/// writes. Negative numbers are refused: no threshold or rate is negative.
struct Scalar<F> {
    convert: F,
    expecting: &'static str,
}

pub(crate) fn read_scalar<'de, D, T, F>(
    deserializer: D,
    expecting: &'static str,
    convert: F,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    deserializer.deserialize_any(Scalar { convert, expecting })
}

fn negative<E: de::Error>(shown: impl fmt::Display) -> E {
    E::custom(format!(
        "{shown} is negative; thresholds and rates must be >= 0"
    ))
}

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for Scalar<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        if v < 0 {
            return Err(negative(v));
        }
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v < 0.0 {
            return Err(negative(v));
        }
        self.visit_str(&format!("{v}"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        let text = v.trim();
        if text.starts_with('-') {
            return Err(negative(text));
        }
        (self.convert)(text).map_err(E::custom)
    }
}

const AMOUNT: &str = "an amount such as 500 or \"500.00\"";

/// An amount of money in the program currency, held in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money(pub i64);

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_scalar(deserializer, AMOUNT, |text| {
            context_currency()
                .parse_major(text)
                .map(Money)
                .map_err(|e| e.to_string())
        })
    }
}

/// A non-negative whole number (a count or a points threshold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub i64);

impl<'de> serde::Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_scalar(deserializer, "a whole number", |text| {
            text.parse::<i64>()
                .map(Count)
                .map_err(|_| format!("{text:?} is not a whole number"))
        })
    }
}

/// The most points one event (a purchase, an activity) may earn:
/// `earning.max_points_per_event`, from 1 to [`PointsCeiling::HIGHEST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointsCeiling(pub i64);

impl PointsCeiling {
    /// The default: a billion points, thousands of times what any real
    /// purchase earns, yet far enough below `i64::MAX` that no sum of a
    /// member's events can overflow.
    pub const DEFAULT: Self = Self(1_000_000_000);
    /// The highest ceiling a rules file may set (10^12): millions of events
    /// at it still fit every sum exactly.
    pub const HIGHEST: i64 = 1_000_000_000_000;
}

impl<'de> serde::Deserialize<'de> for PointsCeiling {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_scalar(
            deserializer,
            "a whole number of points",
            |text| match text.parse::<i64>() {
                Ok(points) if (1..=Self::HIGHEST).contains(&points) => Ok(Self(points)),
                _ => Err(format!(
                    "{text:?} is not a whole number of points from 1 to {}",
                    Self::HIGHEST
                )),
            },
        )
    }
}

/// How long one evaluation of a script may take (`script_time_limit`, e.g.
/// `5ms`), from 1 ms to [`crate::script::MAX_TIME_BUDGET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptTimeLimit(pub std::time::Duration);

impl<'de> serde::Deserialize<'de> for ScriptTimeLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let highest = crate::script::MAX_TIME_BUDGET;
        read_scalar(
            deserializer,
            "a duration such as 5ms",
            |text| match humantime::parse_duration(text) {
                Ok(limit) if (std::time::Duration::from_millis(1)..=highest).contains(&limit) => {
                    Ok(Self(limit))
                }
                _ => Err(format!(
                    "{text:?} is not a duration from 1ms to {}",
                    humantime::format_duration(highest)
                )),
            },
        )
    }
}

/// An exact non-negative rate such as 1, 1.5 or 0.25: `numerator /
/// denominator`, with the denominator a power of ten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Rate x denominator.
    pub numerator: i64,
    /// A power of ten.
    pub denominator: i64,
}

impl Rate {
    /// The rate 1.
    pub const ONE: Rate = Rate {
        numerator: 1,
        denominator: 1,
    };

    /// Most decimals a rate may have.
    const MAX_DECIMALS: u32 = 4;

    /// The largest of some rates, compared exactly; 1 when there are none.
    pub fn largest(rates: impl Iterator<Item = Rate>) -> Rate {
        rates
            .max_by(|a, b| {
                (i128::from(a.numerator) * i128::from(b.denominator))
                    .cmp(&(i128::from(b.numerator) * i128::from(a.denominator)))
            })
            .unwrap_or(Rate::ONE)
    }

    /// The product of some rates, 1 when there are none. A rate has at most
    /// 4 decimals, so the product is kept to 4 decimals after each factor,
    /// rounded down (1.5 x 1.5 = 2.25 exactly; 1.0001 x 1.0001 = 1.0002),
    /// and saturates instead of overflowing.
    pub fn product(rates: impl Iterator<Item = Rate>) -> Rate {
        let scale = 10_i128.pow(Rate::MAX_DECIMALS);
        let scaled = rates.fold(scale, |product, rate| {
            product.saturating_mul(i128::from(rate.numerator)) / i128::from(rate.denominator.max(1))
        });
        Rate {
            numerator: i64::try_from(scaled).unwrap_or(i64::MAX),
            denominator: 10_i64.pow(Rate::MAX_DECIMALS),
        }
    }

    /// The rate as people write it: "2", "1.5", "0.25".
    pub fn to_decimal_string(self) -> String {
        let whole = self.numerator / self.denominator.max(1);
        let fraction = self.numerator % self.denominator.max(1);
        if fraction == 0 {
            return whole.to_string();
        }
        let width = self.denominator.max(1).to_string().len() - 1;
        let digits = format!("{fraction:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let decimal = Decimal::parse(text).map_err(|e| e.to_string())?;
        let numerator = decimal
            .scale_to(Rate::MAX_DECIMALS)
            .ok_or_else(|| format!("{text:?} has more than 4 decimals"))?
            .ok_or_else(|| format!("{text:?} is too large"))?;
        Ok(Rate {
            numerator,
            denominator: 10_i64.pow(Rate::MAX_DECIMALS),
        })
    }
}

impl<'de> serde::Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_scalar(deserializer, "a rate such as 1 or 1.5", Rate::parse)
    }
}

/// A date (`2026-03-02`, midnight UTC) or a moment (`2026-03-02T10:00:00Z`),
/// as marketers write them in test cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moment(pub DateTime<Utc>);

impl<'de> serde::Deserialize<'de> for Moment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_scalar(deserializer, "a date such as 2026-03-02", |text| {
            DateTime::parse_from_rfc3339(text)
                .map(|at| Moment(at.with_timezone(&Utc)))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .map(|day| Moment(day.and_time(chrono::NaiveTime::MIN).and_utc()))
                })
                .map_err(|_| {
                    format!(
                        "{text:?} is not a date (2026-03-02) or a moment (2026-03-02T10:00:00Z)"
                    )
                })
        })
    }
}

/// The ISO 4217 code of the program currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyCode(pub Currency);

impl<'de> serde::Deserialize<'de> for CurrencyCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_scalar(deserializer, "a currency code such as EUR", |text| {
            Currency::parse(text)
                .map(CurrencyCode)
                .map_err(|e| e.to_string())
        })
    }
}

/// The period tier criteria look back over, measured from the evaluation
/// time. Written in words: `rolling 12 months`, `calendar year`,
/// `anniversary year`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last N months up to the evaluation day (1 to 24).
    RollingMonths(u32),
    /// Since 1 January (UTC) of the evaluation year.
    CalendarYear,
    /// Since the member's last enrolment anniversary.
    AnniversaryYear,
}

impl Window {
    /// Longest rolling window accepted; day totals are kept this long.
    pub const MAX_MONTHS: u32 = 24;

    fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["calendar", "year"] => Ok(Window::CalendarYear),
            ["anniversary", "year"] => Ok(Window::AnniversaryYear),
            ["rolling", n, "months" | "month"] => match n.parse::<u32>() {
                Ok(m) if (1..=Self::MAX_MONTHS).contains(&m) => Ok(Window::RollingMonths(m)),
                _ => Err(format!(
                    "{n:?} months: a rolling window is 1 to {} months",
                    Self::MAX_MONTHS
                )),
            },
            _ => Err(format!(
                "unknown window {text:?}: write `rolling 12 months`, `calendar year` or `anniversary year`"
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_scalar(
            deserializer,
            "a window such as `rolling 12 months`",
            Window::parse,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_as_words() {
        assert_eq!(
            Window::parse("rolling 12 months"),
            Ok(Window::RollingMonths(12))
        );
        assert_eq!(Window::parse("calendar  year"), Ok(Window::CalendarYear));
        assert_eq!(
            Window::parse("anniversary year"),
            Ok(Window::AnniversaryYear)
        );
        assert!(Window::parse("rolling 25 months").is_err());
        assert!(Window::parse("fiscal year").is_err());
    }

    #[test]
    fn rates_are_exact() {
        let rate: Rate = serde_yaml::from_str("1.5").expect("a rate");
        assert_eq!(rate.numerator * 2, rate.denominator * 3);
        let rate: Rate = serde_yaml::from_str("\"0.25\"").expect("a rate");
        assert_eq!(rate.numerator * 4, rate.denominator);
        assert_eq!(rate.to_decimal_string(), "0.25");
        let two: Rate = serde_yaml::from_str("2").expect("a rate");
        assert_eq!(two.to_decimal_string(), "2");
        assert!(serde_yaml::from_str::<Rate>("-1").is_err());
    }

    #[test]
    fn a_product_of_rates_keeps_four_decimals_rounded_down() {
        let rate = |text: &str| serde_yaml::from_str::<Rate>(text).expect("a rate");
        let product =
            |rates: &[&str]| Rate::product(rates.iter().map(|r| rate(r))).to_decimal_string();
        assert_eq!(product(&["2", "2"]), "4");
        assert_eq!(product(&["1.5", "1.5"]), "2.25");
        assert_eq!(product(&["1.0001", "1.0001"]), "1.0002");
        assert_eq!(product(&[]), "1");
        assert_eq!(
            Rate::product([Rate::ONE, rate("3")].into_iter()).to_decimal_string(),
            "3"
        );
        let huge = ["1000000000"; 4];
        assert_eq!(
            Rate::product(huge.iter().map(|r| rate(r))).numerator,
            i64::MAX,
            "saturates"
        );
    }
}
