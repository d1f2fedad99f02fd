//! Money and decimal amounts without floats.
//!
//! tierd holds every amount as an `i64` in minor units (cents) next to an ISO
//! 4217 currency code. Marketing staff write amounts in major units
//! ("500.00"), so this module converts both ways, exactly: a value with more
//! decimals than the currency has is an error, never silently rounded.

use std::fmt;

/// An ISO 4217 currency code and the number of decimals its minor unit has.
///
/// Promises: `code` is three upper-case ASCII letters that ISO 4217 lists
/// (for the codes this table knows; see [`Currency::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    code: [u8; 3],
    exponent: u32,
}

/// Currencies whose minor unit is not 1/100. Every other known code has two
/// decimals.
const EXPONENTS: &[(&str, u32)] = &[
    ("BHD", 3),
    ("CLP", 0),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("PYG", 0),
    ("TND", 3),
    ("UGX", 0),
    ("VND", 0),
    ("XAF", 0),
    ("XOF", 0),
];

/// The ISO 4217 codes tierd accepts as a program currency.
const KNOWN_CODES: &[&str] = &[
    "AED", "ARS", "AUD", "BGN", "BHD", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK",
    "EGP", "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "IQD", "ISK", "JOD", "JPY", "KES",
    "KRW", "KWD", "LYD", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD", "OMR", "PEN", "PHP", "PKR",
    "PLN", "PYG", "QAR", "RON", "RSD", "SAR", "SEK", "SGD", "THB", "TND", "TRY", "TWD", "UAH",
    "UGX", "USD", "VND", "XAF", "XOF", "ZAR",
];

/// Why a currency code or an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency code {0:?} (expected an ISO 4217 code such as EUR or USD)")]
    /// A code outside the built-in ISO 4217 table.
    UnknownCurrency(String),
    #[error("{0:?} is not an amount (expected digits with an optional decimal point, e.g. 500.00)")]
    /// Text that is not a plain decimal.
    NotAnAmount(String),
    #[error("{value:?} has more than {exponent} decimals, which {currency} does not have")]
    /// More decimals than the currency's minor unit.
    TooPrecise {
        /// The text as written.
        value: String,
        /// Decimals the currency allows.
        exponent: u32,
        /// The currency code.
        currency: String,
    },
    #[error("{0:?} is too large")]
    /// A value beyond `i64` minor units.
    Overflow(String),
}

impl Currency {
    /// Looks up an ISO 4217 code (case-sensitive: "EUR", not "eur").
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] for a code this table does not know.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        if !KNOWN_CODES.contains(&code) {
            return Err(MoneyError::UnknownCurrency(code.to_owned()));
        }
        let exponent = EXPONENTS
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(2, |(_, e)| *e);
        let bytes = code.as_bytes();
        Ok(Self {
            code: [bytes[0], bytes[1], bytes[2]],
            exponent,
        })
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // Only ASCII letters from KNOWN_CODES are ever stored.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Decimals of the minor unit: 2 for EUR, 0 for JPY, 3 for KWD.
    pub fn exponent(&self) -> u32 {
        self.exponent
    }

    /// Minor units in one major unit (100 for EUR).
    pub fn minor_per_major(&self) -> i64 {
        10_i64.pow(self.exponent)
    }

    /// Parses a major-unit amount ("500.00", "500", "12.5") into minor units.
    ///
    /// # Errors
    /// When the text is not a plain decimal, has more decimals than the
    /// currency, or does not fit an `i64`.
    pub fn parse_major(&self, text: &str) -> Result<i64, MoneyError> {
        let scaled = Decimal::parse(text)?;
        scaled
            .scale_to(self.exponent)
            .ok_or_else(|| MoneyError::TooPrecise {
                value: text.to_owned(),
                exponent: self.exponent,
                currency: self.code().to_owned(),
            })?
            .ok_or_else(|| MoneyError::Overflow(text.to_owned()))
    }

    /// Formats minor units as major units with the currency's decimals:
    /// `12050` in EUR is "120.50".
    pub fn format_minor(&self, minor: i64) -> String {
        let per = self.minor_per_major();
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        let per = per.unsigned_abs();
        if self.exponent == 0 {
            return format!("{sign}{abs}");
        }
        format!(
            "{sign}{}.{:0width$}",
            abs / per,
            abs % per,
            width = self.exponent as usize
        )
    }
}

/// EUR: two decimals, the most common minor unit.
impl Default for Currency {
    fn default() -> Self {
        Self {
            code: *b"EUR",
            exponent: 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A non-negative decimal read from text without going through a float:
/// `digits` scaled by `10^-decimals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    digits: i64,
    decimals: u32,
}

impl Decimal {
    /// Parses "12", "12.5" or "0.25" (no sign, no exponent).
    ///
    /// # Errors
    /// [`MoneyError::NotAnAmount`] or [`MoneyError::Overflow`].
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let not_an_amount = || MoneyError::NotAnAmount(text.to_owned());
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(not_an_amount());
        }
        if text.contains('.') && fraction.is_empty() {
            return Err(not_an_amount());
        }
        let joined = format!("{whole}{fraction}");
        let digits = joined
            .parse::<i64>()
            .map_err(|_| MoneyError::Overflow(text.to_owned()))?;
        let decimals = u32::try_from(fraction.len()).map_err(|_| not_an_amount())?;
        Ok(Self { digits, decimals })
    }

    /// The value in units of `10^-exponent`: `Some(None)` on overflow, `None`
    /// when the value has more decimals than `exponent` (after dropping
    /// trailing zeros).
    pub fn scale_to(self, exponent: u32) -> Option<Option<i64>> {
        let mut digits = self.digits;
        let mut decimals = self.decimals;
        while decimals > exponent {
            if digits % 10 != 0 {
                return None;
            }
            digits /= 10;
            decimals -= 1;
        }
        let factor = 10_i64.checked_pow(exponent - decimals);
        Some(factor.and_then(|f| digits.checked_mul(f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").expect("EUR is known")
    }

    #[test]
    fn parses_major_units_exactly() {
        assert_eq!(eur().parse_major("500.00"), Ok(50_000));
        assert_eq!(eur().parse_major("500"), Ok(50_000));
        assert_eq!(eur().parse_major("12.5"), Ok(1_250));
        assert_eq!(eur().parse_major("0.01"), Ok(1));
        assert_eq!(eur().parse_major("1.500"), Ok(150));
    }

    #[test]
    fn refuses_what_is_not_money() {
        assert!(matches!(
            eur().parse_major("1.005"),
            Err(MoneyError::TooPrecise { .. })
        ));
        for bad in ["", "-5", "1e3", "abc", "1.", ".5", "1,00"] {
            assert!(
                matches!(eur().parse_major(bad), Err(MoneyError::NotAnAmount(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            eur().parse_major("99999999999999999999"),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn knows_exponents() {
        let jpy = Currency::parse("JPY").expect("JPY is known");
        assert_eq!(jpy.parse_major("500"), Ok(500));
        assert!(jpy.parse_major("1.5").is_err());
        assert_eq!(jpy.format_minor(1234), "1234");
        assert_eq!(eur().format_minor(12_050), "120.50");
        assert_eq!(eur().format_minor(-5), "-0.05");
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("eur").is_err());
    }
}
