//! The `reporting:` section of a rules file: what the programme's reports
//! need to know that tiers do not. The worth of a point (for the points
//! liability and the value of a member), the lifetime-value bands, and the
//! RFM segments as score ranges:
//!
//! ```yaml
//! reporting:
//!   point_value: "0.01"
//!   value_bands:
//!     - { name: low, up_to: "1000.00" }
//!     - { name: medium, up_to: "5000.00" }
//!     - { name: high }
//!   rfm_segments:
//!     - { name: champions, recency: 4-5, frequency: 4-5, monetary: 4-5 }
//!     - { name: lost, recency: 1, frequency: 1-2 }
//!   segments:
//!     - name: lapsing
//!       when: { days_since_last_purchase: { at_least: 91, at_most: 180 } }
//! ```
//!
//! Bands and RFM segments are checked when the file loads, so that every
//! member falls into exactly one band and at most one RFM segment (the
//! first that matches; the reports count the rest as `other`). Segments
//! are named conditions ([`SegmentCondition`]): a member is in every
//! segment whose condition holds.

use std::fmt;

use serde::{
    Deserialize,
    de::{self, Deserializer, Visitor},
};

use super::{Condition, Problem, SegmentCondition, values::Money};

/// What the reports read from the rules file.
#[derive(Debug, Clone, Default)]
pub struct Reporting {
    /// The money worth of one point, minor units (0 when not given: points
    /// then carry no liability and cost nothing when redeemed).
    pub point_value_minor: i64,
    /// Lifetime-value bands, lowest first; the last has no upper bound.
    /// Empty: one band holds everyone.
    pub value_bands: Vec<ValueBand>,
    /// RFM segments, in the order they are tried.
    pub rfm_segments: Vec<RfmSegment>,
    /// Segments watched over time, in the order the file lists them.
    pub segments: Vec<Segment>,
}

/// A named group of members, defined by a condition in the tier language
/// plus lifecycle measures. Segments may overlap.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The segment's name ("lapsing"), as the reports show it.
    pub name: String,
    /// Who is in it.
    pub when: Condition,
}

/// Members whose lifetime value is at most `up_to_minor` (and above the
/// band before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueBand {
    /// The band's name, as the reports show it.
    pub name: String,
    /// Inclusive upper bound, minor units; `None`: no bound (the last band).
    pub up_to_minor: Option<i64>,
}

/// A named RFM segment: the scores (1 to 5) a member needs in each
/// dimension. A dimension not written accepts every score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RfmSegment {
    /// The segment's name ("champions").
    pub name: String,
    /// Recency scores accepted.
    pub recency: ScoreRange,
    /// Frequency scores accepted.
    pub frequency: ScoreRange,
    /// Monetary scores accepted.
    pub monetary: ScoreRange,
}

impl RfmSegment {
    /// Whether scores `(r, f, m)` fall in this segment.
    pub fn holds(&self, (r, f, m): (u8, u8, u8)) -> bool {
        self.recency.holds(r) && self.frequency.holds(f) && self.monetary.holds(m)
    }
}

/// Scores from `low` to `high`, both included, within 1..=5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreRange {
    /// Lowest score accepted.
    pub low: u8,
    /// Highest score accepted.
    pub high: u8,
}

impl ScoreRange {
    /// Every score.
    pub const ANY: ScoreRange = ScoreRange { low: 1, high: 5 };

    fn holds(self, score: u8) -> bool {
        (self.low..=self.high).contains(&score)
    }
}

impl Default for ScoreRange {
    fn default() -> Self {
        Self::ANY
    }
}

impl<'de> Deserialize<'de> for ScoreRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScoreText)
    }
}

/// Reads `4`, or `4-5`, checked where it is written.
struct ScoreText;

impl Visitor<'_> for ScoreText {
    type Value = ScoreRange;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a score from 1 to 5, or a range such as 4-5")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScoreRange, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScoreRange, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<ScoreRange, E> {
        let score = |part: &str| {
            part.trim()
                .parse::<u8>()
                .ok()
                .filter(|s| (1..=5).contains(s))
                .ok_or_else(|| {
                    E::custom(format!(
                        "{text:?} is not a score from 1 to 5 or a range such as 4-5"
                    ))
                })
        };
        let (low, high) = match text.split_once('-') {
            Some((low, high)) => (score(low)?, score(high)?),
            None => (score(text)?, score(text)?),
        };
        if low > high {
            return Err(E::custom(format!(
                "the range {text:?} runs backwards; write the lower score first"
            )));
        }
        Ok(ScoreRange { low, high })
    }
}

/// The section as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportingFile {
    #[serde(default)]
    point_value: Option<Money>,
    #[serde(default)]
    value_bands: Vec<BandFile>,
    #[serde(default)]
    rfm_segments: Vec<SegmentFile>,
    #[serde(default)]
    segments: Vec<NamedCondition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedCondition {
    name: String,
    when: SegmentCondition,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BandFile {
    name: String,
    #[serde(default)]
    up_to: Option<Money>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentFile {
    name: String,
    #[serde(default)]
    recency: ScoreRange,
    #[serde(default)]
    frequency: ScoreRange,
    #[serde(default)]
    monetary: ScoreRange,
}

/// Checks how the section's pieces fit: bands rising, only the last one
/// open, names unique.
pub(super) fn compile(raw: ReportingFile, problems: &mut Vec<Problem>) -> Reporting {
    check_bands(&raw.value_bands, problems);
    check_unique(
        raw.rfm_segments.iter().map(|s| s.name.as_str()),
        "RFM segment",
        problems,
    );
    check_unique(
        raw.segments.iter().map(|s| s.name.as_str()),
        "segment",
        problems,
    );
    Reporting {
        point_value_minor: raw.point_value.map_or(0, |Money(m)| m),
        value_bands: raw
            .value_bands
            .into_iter()
            .map(|b| ValueBand {
                name: b.name,
                up_to_minor: b.up_to.map(|Money(m)| m),
            })
            .collect(),
        rfm_segments: raw
            .rfm_segments
            .into_iter()
            .map(|s| RfmSegment {
                name: s.name,
                recency: s.recency,
                frequency: s.frequency,
                monetary: s.monetary,
            })
            .collect(),
        segments: raw
            .segments
            .into_iter()
            .map(|s| Segment {
                name: s.name,
                when: s.when.0,
            })
            .collect(),
    }
}

fn check_bands(bands: &[BandFile], problems: &mut Vec<Problem>) {
    check_unique(
        bands.iter().map(|b| b.name.as_str()),
        "value band",
        problems,
    );
    let mut previous: Option<i64> = None;
    for (i, band) in bands.iter().enumerate() {
        let last = i + 1 == bands.len();
        match (band.up_to, last) {
            (None, false) => problems.push(Problem::at(
                format!("name: {}", band.name),
                0,
                format!(
                    "value band `{}` has no `up_to`; only the last band may be open",
                    band.name
                ),
            )),
            (Some(_), true) => problems.push(Problem::at(
                format!("name: {}", band.name),
                0,
                format!(
                    "the last value band, `{}`, must be open: leave out its `up_to`",
                    band.name
                ),
            )),
            (Some(Money(up_to)), false) => {
                if previous.is_some_and(|p| up_to <= p) {
                    problems.push(Problem::at(
                        format!("name: {}", band.name),
                        0,
                        format!(
                            "value band `{}` must reach higher than the band before it",
                            band.name
                        ),
                    ));
                }
                previous = Some(up_to);
            }
            (None, true) => {}
        }
    }
}

fn check_unique<'a>(names: impl Iterator<Item = &'a str>, what: &str, problems: &mut Vec<Problem>) {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            problems.push(Problem::at(
                format!("name: {name}"),
                1,
                format!("{what} `{name}` is defined twice"),
            ));
        }
    }
}

impl Reporting {
    /// The band of a lifetime value (index into `value_bands`; 0 when no
    /// bands are defined: one band holds everyone). The last band is open,
    /// so every value has a band.
    pub fn band_of(&self, lifetime_value_minor: i64) -> usize {
        self.value_bands
            .iter()
            .position(|b| b.up_to_minor.is_none_or(|up| lifetime_value_minor <= up))
            .unwrap_or(self.value_bands.len().saturating_sub(1))
    }

    /// The first RFM segment holding scores `(r, f, m)`, if any.
    pub fn rfm_segment_of(&self, scores: (u8, u8, u8)) -> Option<usize> {
        self.rfm_segments.iter().position(|s| s.holds(scores))
    }
}
