//! Validated values: what a request field becomes once it has been checked.
//!
//! Each type can only be made by its `parse`, which enforces the limits
//! below and names the request field at fault; a command built from these
//! types cannot hold an unchecked value. Checks that need the rules or the
//! clock (the program currency, a known activity kind, a time not too far
//! in the future) are made by the service, under the rules version the
//! request is applied with.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};

use super::ProgramError;
use crate::domain::{
    earn::Line,
    member::DAY_RETENTION,
    receipt::{LineSize, ReturnLine},
};

/// Limits on what clients may send. Defaults documented on each field.
#[derive(Debug, Clone, Copy)]
pub struct InputLimits {
    /// Longest member or transaction id, in bytes (128).
    pub max_id_bytes: usize,
    /// Largest amount or points in one request (10^12).
    pub max_amount: i64,
    /// How far in the future `occurred_at` may lie (5 minutes).
    pub max_clock_skew: TimeDelta,
    /// Tags per purchase (32).
    pub max_tags: usize,
    /// Attributes per member, and details per activity (64).
    pub max_attributes: usize,
    /// Longest tag, channel, store id, activity kind, attribute key or
    /// value, reason (1024 bytes).
    pub max_text_bytes: usize,
}

/// The limits tierd enforces.
pub const LIMITS: InputLimits = InputLimits {
    max_id_bytes: 128,
    max_amount: 1_000_000_000_000,
    max_clock_skew: TimeDelta::minutes(5),
    max_tags: 32,
    max_attributes: 64,
    max_text_bytes: 1024,
};

type Checked<T> = Result<T, ProgramError>;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Checks `id` (1 to 128 bytes, not only whitespace, no control or format characters), as
            /// request field `field`.
            ///
            /// # Errors
            /// `InvalidArgument` naming `field`.
            pub fn parse(field: &'static str, id: String) -> Checked<Self> {
                check_id(field, &id)?;
                Ok(Self(id))
            }

            /// The id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A member id as the till sends it.
    MemberId
);
id_type!(
    /// A transaction id: the idempotency key of a write.
    TransactionId
);

fn check_id(field: &'static str, id: &str) -> Checked<()> {
    if id.is_empty() {
        return Err(ProgramError::invalid(field, "required"));
    }
    if id.len() > LIMITS.max_id_bytes {
        return Err(ProgramError::invalid(
            field,
            format!(
                "{} bytes is longer than the {} allowed",
                id.len(),
                LIMITS.max_id_bytes
            ),
        ));
    }
    if id.trim().is_empty() {
        return Err(ProgramError::invalid(field, "must not be only whitespace"));
    }
    if let Some((position, c)) = id.chars().enumerate().find(|(_, c)| invisible(*c)) {
        return Err(ProgramError::invalid(
            field,
            format!(
                "character {} is U+{:04X}, a control or format character (such as a zero-width \
                 space or a direction mark): ids may not hold them, since they make ids that \
                 look the same differ",
                position + 1,
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// A control (Unicode Cc) or format (Cf) character: invisible, so `tx`
/// and `tx` followed by U+200B would be different transactions that look
/// alike.
fn invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};
    // Nearly every id is ASCII, whose only Cc/Cf characters are the
    // controls: no table lookup for those.
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    matches!(
        c.general_category(),
        GeneralCategory::Control | GeneralCategory::Format
    )
}

/// A positive amount of money (minor units) or points, at most 10^12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(i64);

impl Amount {
    /// Checks `amount` as request field `field`.
    ///
    /// # Errors
    /// `InvalidArgument` naming `field` for 0, negatives, or too much.
    pub fn parse(field: &'static str, amount: i64) -> Checked<Self> {
        if amount <= 0 {
            return Err(ProgramError::invalid(
                field,
                format!("must be greater than 0, got {amount}"),
            ));
        }
        check_size(field, amount)?;
        Ok(Self(amount))
    }

    /// The amount.
    pub fn get(self) -> i64 {
        self.0
    }
}

fn check_size(field: &'static str, amount: i64) -> Checked<()> {
    if amount.saturating_abs() > LIMITS.max_amount {
        return Err(ProgramError::invalid(
            field,
            format!("{amount} is beyond the limit of {}", LIMITS.max_amount),
        ));
    }
    Ok(())
}

/// Points granted (positive) or taken (negative): never 0, at most 10^12
/// either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedPoints(i64);

impl SignedPoints {
    /// Checks `points` as request field `field`.
    ///
    /// # Errors
    /// `InvalidArgument` naming `field` for 0 or too much.
    pub fn parse(field: &'static str, points: i64) -> Checked<Self> {
        if points == 0 {
            return Err(ProgramError::invalid(field, "must not be 0"));
        }
        check_size(field, points)?;
        Ok(Self(points))
    }

    /// The points.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Free text of at most 1024 bytes (may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(String);

impl Text {
    /// Checks `text` as request field `field`.
    ///
    /// # Errors
    /// `InvalidArgument` naming `field` when too long.
    pub fn parse(field: &'static str, text: String) -> Checked<Self> {
        check_text(field, &text)?;
        Ok(Self(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_text(field: &'static str, text: &str) -> Checked<()> {
    if text.len() > LIMITS.max_text_bytes {
        return Err(ProgramError::invalid(
            field,
            format!("longer than {} bytes", LIMITS.max_text_bytes),
        ));
    }
    Ok(())
}

/// Why staff did something: required, at most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// Checks `reason`; `missing` says what to write when it is empty.
    ///
    /// # Errors
    /// `InvalidArgument` naming `reason`.
    pub fn parse(reason: String, missing: &str) -> Checked<Self> {
        if reason.trim().is_empty() {
            return Err(ProgramError::invalid(
                "reason",
                format!("required: {missing}"),
            ));
        }
        check_text("reason", &reason)?;
        Ok(Self(reason))
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A purchase's tags: at most 32, each at most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(Vec<String>);

impl Tags {
    /// Checks `tags` as request field `tags`.
    ///
    /// # Errors
    /// `InvalidArgument` naming `tags`.
    pub fn parse(tags: Vec<String>) -> Checked<Self> {
        if tags.len() > LIMITS.max_tags {
            return Err(ProgramError::invalid(
                "tags",
                format!("at most {} tags", LIMITS.max_tags),
            ));
        }
        tags.iter().try_for_each(|tag| check_text("tags", tag))?;
        Ok(Self(tags))
    }

    /// The tags, in the order sent.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// The most lines a basket may have.
pub const MAX_LINES: usize = 500;

/// A purchase's basket: at most [`MAX_LINES`] lines, each with a quantity
/// of at least 1, an amount of at least 0, texts and labels within the
/// text limits, the amounts adding up to the purchase's amount. Empty when
/// the till sent a sum only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Basket(Vec<Line>);

impl Basket {
    /// Checks `lines` (request field `lines`) against the purchase's
    /// `amount`.
    ///
    /// # Errors
    /// `InvalidArgument` naming `lines` and the line at fault.
    pub fn parse(lines: Vec<Line>, amount: Amount) -> Checked<Self> {
        let invalid = |message: String| Err(ProgramError::invalid("lines", message));
        if lines.len() > MAX_LINES {
            return invalid(format!("at most {MAX_LINES} lines, got {}", lines.len()));
        }
        // Wide enough for any count of lines at any i64 amount: the real sum.
        let mut total: i128 = 0;
        for (i, line) in lines.iter().enumerate() {
            if !(1..=LIMITS.max_amount).contains(&line.quantity) {
                return invalid(format!(
                    "lines[{i}].quantity must be 1 to {}, got {}",
                    LIMITS.max_amount, line.quantity
                ));
            }
            if line.amount_minor < 0 {
                return invalid(format!(
                    "lines[{i}].amount_minor must not be negative, got {}",
                    line.amount_minor
                ));
            }
            if line.labels.len() > LIMITS.max_tags {
                return invalid(format!("lines[{i}].labels: at most {}", LIMITS.max_tags));
            }
            [&line.sku, &line.category]
                .into_iter()
                .chain(&line.labels)
                .try_for_each(|text| check_text("lines", text))?;
            total += i128::from(line.amount_minor);
        }
        if !lines.is_empty() && total != i128::from(amount.get()) {
            return invalid(format!(
                "the lines' amount_minor add up to {total}, but the purchase's amount_minor is {}",
                amount.get()
            ));
        }
        Ok(Self(lines))
    }

    /// The lines, in the order sent.
    pub fn as_slice(&self) -> &[Line] {
        &self.0
    }
}

/// The lines of a return: at most [`MAX_LINES`], each naming a SKU and
/// either units (1 to 10^12) or money (1 to 10^12 minor units), not both.
/// Empty when the return is an amount only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReturnLines(Vec<ReturnLine>);

impl ReturnLines {
    /// Checks `lines` (request field `lines`), each as (sku, quantity,
    /// amount_minor), 0 meaning not given.
    ///
    /// # Errors
    /// `InvalidArgument` naming `lines` and the line at fault.
    pub fn parse(lines: Vec<(String, i64, i64)>) -> Checked<Self> {
        if lines.len() > MAX_LINES {
            return Err(ProgramError::invalid(
                "lines",
                format!("at most {MAX_LINES} lines, got {}", lines.len()),
            ));
        }
        let checked = lines
            .into_iter()
            .enumerate()
            .map(|(i, (sku, quantity, amount_minor))| {
                let invalid = |message: String| ProgramError::invalid("lines", message);
                if sku.is_empty() {
                    return Err(invalid(format!("lines[{i}].sku is required")));
                }
                check_text("lines", &sku)?;
                let size = match (quantity, amount_minor) {
                    (q, 0) if (1..=LIMITS.max_amount).contains(&q) => LineSize::Units(q),
                    (0, a) if (1..=LIMITS.max_amount).contains(&a) => LineSize::Amount(a),
                    (q, a) => {
                        return Err(invalid(format!(
                            "lines[{i}]: give quantity or amount_minor (one of them, 1 to {}), got quantity {q} and amount_minor {a}",
                            LIMITS.max_amount
                        )));
                    }
                };
                Ok(ReturnLine { sku, size })
            })
            .collect::<Checked<Vec<_>>>()?;
        Ok(Self(checked))
    }

    /// The lines, in the order sent.
    pub fn as_slice(&self) -> &[ReturnLine] {
        &self.0
    }
}

/// Key/value pairs (member attributes, activity details): at most 64,
/// non-empty keys, every key and value at most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes(BTreeMap<String, String>);

impl Attributes {
    /// Checks `attributes` as request field `field`.
    ///
    /// # Errors
    /// `InvalidArgument` naming `field`.
    pub fn parse(field: &'static str, attributes: BTreeMap<String, String>) -> Checked<Self> {
        if attributes.len() > LIMITS.max_attributes {
            return Err(ProgramError::invalid(
                field,
                format!("at most {} attributes", LIMITS.max_attributes),
            ));
        }
        for (key, value) in &attributes {
            if key.is_empty() {
                return Err(ProgramError::invalid(
                    field,
                    "an attribute key must not be empty",
                ));
            }
            check_text(field, key)?;
            check_text(field, value)?;
        }
        Ok(Self(attributes))
    }

    /// The pairs.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// A required time, as request field `field`.
///
/// # Errors
/// `InvalidArgument` naming `field` when it is missing.
pub fn required_time(field: &'static str, at: Option<DateTime<Utc>>) -> Checked<DateTime<Utc>> {
    at.ok_or_else(|| ProgramError::invalid(field, "required"))
}

/// Refuses an event's time further in the future than the clock skew
/// allows, or further back than the store keeps day totals
/// ([`DAY_RETENTION`], about 25 months): an event dated before that would
/// land in a day no window can read (a purchase dated 1970 made the
/// member enrolled in 1970). The time returned is `at` to the
/// microsecond, the precision the store keeps, so that what a write
/// answers is what a later read shows (the request's fingerprint keeps the
/// time as sent).
///
/// # Errors
/// `InvalidArgument` naming `field`.
pub fn event_time(
    field: &'static str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Checked<DateTime<Utc>> {
    if at > now + LIMITS.max_clock_skew {
        return Err(ProgramError::invalid(
            field,
            format!(
                "{at} lies more than {} minutes in the future (server time {now})",
                LIMITS.max_clock_skew.num_minutes()
            ),
        ));
    }
    let kept = at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at);
    not_before_kept_days(field, kept, now)
}

/// How far ahead an evaluation or simulation may look (`as_of`): five
/// years, beyond any grace period or expiry a programme sets.
pub const MAX_LOOKAHEAD: TimeDelta = TimeDelta::days(5 * 366);

/// Refuses an `as_of` further back than the kept day totals or further
/// ahead than [`MAX_LOOKAHEAD`].
///
/// # Errors
/// `InvalidArgument` naming `field`.
pub fn as_of_time(
    field: &'static str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Checked<DateTime<Utc>> {
    if at > now + MAX_LOOKAHEAD {
        return Err(ProgramError::invalid(
            field,
            format!(
                "{at} lies more than {} days ahead (server time {now})",
                MAX_LOOKAHEAD.num_days()
            ),
        ));
    }
    not_before_kept_days(field, at, now)
}

fn not_before_kept_days(
    field: &'static str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Checked<DateTime<Utc>> {
    let oldest = now - DAY_RETENTION;
    if at < oldest {
        return Err(ProgramError::invalid(
            field,
            format!(
                "{at} is older than the {} days the store keeps (the oldest accepted is {oldest})",
                DAY_RETENTION.num_days()
            ),
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ProgramError) -> &'static str {
        match err {
            ProgramError::InvalidArgument { field, .. } => field,
            other => panic!("not an invalid argument: {other}"),
        }
    }

    #[test]
    fn ids_are_checked_and_name_their_field() {
        assert!(MemberId::parse("member_id", "m-1".into()).is_ok());
        for bad in [String::new(), "x".repeat(129), "a\nb".into()] {
            let err = TransactionId::parse("transaction_id", bad).expect_err("refused");
            assert_eq!(field_of(err), "transaction_id");
        }
    }

    #[test]
    fn amounts_are_positive_and_bounded() {
        assert_eq!(
            Amount::parse("amount_minor", 1).map(Amount::get).ok(),
            Some(1)
        );
        for bad in [0, -1, LIMITS.max_amount + 1, i64::MIN] {
            assert!(Amount::parse("amount_minor", bad).is_err(), "{bad}");
        }
        assert!(SignedPoints::parse("points", -LIMITS.max_amount).is_ok());
        assert!(SignedPoints::parse("points", 0).is_err());
        assert!(SignedPoints::parse("points", i64::MIN).is_err());
    }

    #[test]
    fn texts_tags_and_attributes_are_bounded() {
        assert!(Text::parse("channel", "x".repeat(1024)).is_ok());
        assert_eq!(
            field_of(Text::parse("channel", "x".repeat(1025)).expect_err("long")),
            "channel"
        );
        assert!(Tags::parse(vec!["t".into(); 33]).is_err());
        assert!(Reason::parse("  ".into(), "say why").is_err());
        let empty_key = BTreeMap::from([(String::new(), "v".to_owned())]);
        assert_eq!(
            field_of(Attributes::parse("attributes", empty_key).expect_err("empty key")),
            "attributes"
        );
    }

    #[test]
    fn times_may_not_lie_far_ahead_or_before_the_kept_days() {
        let now = DateTime::UNIX_EPOCH + TimeDelta::days(20_000);
        assert!(event_time("occurred_at", now + TimeDelta::minutes(5), now).is_ok());
        let err = event_time("occurred_at", now + TimeDelta::minutes(6), now).expect_err("too far");
        assert!(err.to_string().contains("more than 5 minutes"), "{err}");
        assert!(event_time("occurred_at", now - DAY_RETENTION, now).is_ok());
        let err = event_time("occurred_at", DateTime::UNIX_EPOCH, now).expect_err("1970");
        assert!(err.to_string().contains("older than the 775 days"), "{err}");
        assert!(as_of_time("as_of", now + MAX_LOOKAHEAD, now).is_ok());
        let err = as_of_time("as_of", now + MAX_LOOKAHEAD + TimeDelta::days(1), now)
            .expect_err("too far ahead");
        assert!(err.to_string().starts_with("as_of:"), "{err}");
        let year_one = DateTime::<Utc>::MIN_UTC;
        assert!(as_of_time("as_of", year_one, now).is_err());
        assert!(required_time("occurred_at", None).is_err());
    }
}
