//! The tier rules: the YAML that marketing staff write, read into a
//! validated, compiled [`RuleSet`].
//!
//! Loading happens once per rules version: values are checked while they are
//! read (so every mistake carries `file:line:column`), rhai scripts are
//! compiled, and the result is immutable. A file that fails to load never
//! produces a `RuleSet`, so a bad file can never replace a good one.
//!
//! The format is documented with a worked example in `docs/rules.md`, and
//! `rules/example.yaml` uses every feature.

mod basket;
mod condition;
mod expiry;
mod lint;
mod plain;
mod recovery;
mod reporting;
mod rewards;
mod source;
mod values;
mod version;

use std::{
    collections::{BTreeMap, HashSet},
    fmt,
    path::{Path, PathBuf},
};

use serde::Deserialize;

pub use crate::script::did_you_mean;
pub use basket::{
    Combine, LineMatch, LineMultipliers, LinePay, LineRule, LineView, Minimum, Qualifying,
};
pub use condition::{Condition, Lifecycle, Metric, SegmentCondition};
pub use expiry::{CalendarPeriod, Expiry, Lifetime};
pub use lint::{at_line_rule, lint};
pub use reporting::{Reporting, RfmSegment, ScoreRange, Segment, ValueBand};
pub use rewards::{Limit, Period, Reward, Unavailable};
pub use source::{Candidate, MAX_FILE_BYTES, RulesSource};
pub use values::{Count, Moment, Money, PointsCeiling, Rate, Window};
pub use version::RulesVersion;

use crate::{
    money::Currency,
    script::{Script, ScriptKind},
};
use values::{CurrencyCode, LoadContext};

/// How bad a problem is: an error stops a file from going live, a warning
/// does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file cannot be used.
    Error,
    /// Valid, but probably not what was meant.
    Warning,
}

/// A problem in a rules file, located where a person can find it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file as it was named when loading.
    pub file: PathBuf,
    /// 1-based line (0 when the problem concerns the whole file).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, and where it helps, what to write instead.
    pub message: String,
}

impl Severity {
    /// "error" or "warning", as printed and as sent over gRPC.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl Diagnostic {
    /// A problem with a file as a whole (it cannot be read, no rule uses
    /// it): no line or column to point at.
    pub fn about_file(
        file: impl Into<PathBuf>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line: 0,
            column: 0,
            severity,
            message: message.into(),
        }
    }
}

/// `file:line:column: severity: message`, as compilers print it; a
/// problem of the whole file (line 0) is `file: severity: message`, and
/// one of a line without a known column `file:line: severity: message`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        write!(f, ": {}: {}", self.severity.as_str(), self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// One rung of the tier ladder.
#[derive(Debug, Clone)]
pub struct Tier {
    /// Stable id stored with members and in history ("gold").
    pub id: String,
    /// Display name ("Gold").
    pub name: String,
    /// What it takes to enter the tier; `None` only for the entry tier.
    pub qualify: Option<Condition>,
    /// What it takes to stay; defaults to `qualify`.
    pub retain: Option<Condition>,
    /// What members of the tier get, for tills and apps to show.
    pub benefits: Vec<Benefit>,
}

/// Something a tier gives its members ("free shipping"), with details a
/// till may use (`visits_per_year: "4"`). Shown, never computed with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Benefit {
    /// In words.
    pub text: String,
    /// Further key/values, as written.
    pub details: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for Benefit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BenefitVisitor)
    }
}

/// Reads `free shipping` or `{ text: lounge access, visits_per_year: "4" }`.
struct BenefitVisitor;

impl<'de> serde::de::Visitor<'de> for BenefitVisitor {
    type Value = Benefit;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a benefit: words, or a map with `text` and other keys")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Benefit, E> {
        Ok(Benefit {
            text: text.to_owned(),
            details: BTreeMap::new(),
        })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Benefit, A::Error> {
        let mut details = BTreeMap::new();
        while let Some((key, value)) = map.next_entry::<String, String>()? {
            details.insert(key, value);
        }
        let text = details.remove("text").ok_or_else(|| {
            serde::de::Error::custom(
                "a benefit written as a map needs `text`: what it is, in words",
            )
        })?;
        Ok(Benefit { text, details })
    }
}

impl Tier {
    /// The condition checked to keep the tier: `retain`, else `qualify`.
    /// `None` means the tier is always kept (the entry tier).
    pub fn retain_condition(&self) -> Option<&Condition> {
        self.retain.as_ref().or(self.qualify.as_ref())
    }
}

/// How points are earned on purchases.
#[derive(Debug, Clone)]
pub struct Earning {
    /// Points per major unit of currency spent.
    pub points_per_unit: Rate,
    /// Multiplier by purchase channel ("web": 1.5); 1 when absent.
    pub channel_multipliers: BTreeMap<String, Rate>,
    /// Multiplier by purchase tag; the largest matching one applies.
    pub tag_multipliers: BTreeMap<String, Rate>,
    /// Extra points computed by a rhai script, added after multipliers.
    pub bonus: Option<Script>,
    /// Earning per basket line, for purchases sent with lines; empty: lines
    /// earn `points_per_unit` like the amount.
    pub line_rules: Vec<LineRule>,
    /// Below this amount (minor units) a purchase earns no points at all;
    /// its spend still counts for tiers. 0: no minimum.
    pub minimum_order_minor: i64,
    /// The member's tier multiplies a purchase's points ("gold": 1.5);
    /// 1 for a tier not listed.
    pub tier_multipliers: BTreeMap<String, Rate>,
    /// Which tier's multiplier a purchase that promotes earns at.
    pub tier_rate_applies: TierRateApplies,
    /// The most points one purchase or activity may earn
    /// (`max_points_per_event`, default [`PointsCeiling::DEFAULT`]). An
    /// event the rules would pay more is refused, naming the rule, rather
    /// than recorded with a sum that no longer adds up.
    pub max_points_per_event: i64,
}

/// Which tier's multiplier applies to a purchase that changes the tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TierRateApplies {
    /// The tier the member was in when it bought (the default).
    #[default]
    Before,
    /// The tier the purchase brings the member to, judged on its spend and
    /// its points before any tier multiplier.
    After,
}

/// How one kind of activity (a review, a referral, a store visit) earns.
#[derive(Debug, Clone)]
pub struct Activity {
    /// Points per activity (0: engagement only).
    pub points: i64,
    /// Extra points from a script reading the member and the activity's
    /// `kind` and `details`.
    pub script: Option<Script>,
    /// Activities of this kind that earn per member per UTC day.
    pub max_per_day: Option<i64>,
    /// Activities of this kind that earn per member per calendar month.
    pub max_per_month: Option<i64>,
}

/// A time-boxed bonus: purchases in `[from, until)` that match every filter
/// given earn `multiplier` times the points (the largest active campaign
/// applies, on top of channel and tag multipliers).
#[derive(Debug, Clone)]
pub struct Campaign {
    /// Shown to people ("Black Friday double points").
    pub name: String,
    /// First moment of the campaign.
    pub from: chrono::DateTime<chrono::Utc>,
    /// First moment after it.
    pub until: chrono::DateTime<chrono::Utc>,
    /// The points multiplier.
    pub multiplier: Rate,
    /// Only purchases through these channels; empty: any.
    pub channels: Vec<String>,
    /// Only purchases with one of these tags; empty: any.
    pub tags: Vec<String>,
    /// Only members in these tiers; empty: any.
    pub tiers: Vec<String>,
}

impl Campaign {
    /// Whether a purchase at `at` through `channel` with `tags` by a member
    /// in `tier` gets this campaign.
    pub fn applies(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        channel: &str,
        tags: &[String],
        tier: &str,
    ) -> bool {
        let allowed =
            |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        (self.from..self.until).contains(&at)
            && allowed(&self.channels, channel)
            && allowed(&self.tiers, tier)
            && (self.tags.is_empty() || tags.iter().any(|t| self.tags.contains(t)))
    }
}

/// When a member falls from a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demotion {
    /// Days `retain` must fail without a break before the member drops.
    pub grace_days: u32,
    /// Most tiers dropped in one evaluation (soft landing).
    pub max_drop: u32,
    /// Days before a due demotion when a member at risk is warned again
    /// (a second AT_RISK event); `None`: warned once, when the grace
    /// period starts.
    pub warn_days_before: Option<u32>,
}

/// The programme's terms for closed accounts (`accounts:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounts {
    /// Days after closing within which `ReopenMember` restores an account
    /// (default [`Accounts::DEFAULT_REOPEN_DAYS`]); 0: never.
    pub reopen_within_days: u32,
}

impl Accounts {
    /// How long a closed account may be reopened unless the rules say.
    pub const DEFAULT_REOPEN_DAYS: u32 = 90;
}

/// A validated, compiled rules file: everything the engine needs to decide.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Program id ("acme-rewards").
    pub program: String,
    /// Version label, written into every decision it makes.
    pub version: String,
    /// The one currency the program accepts.
    pub currency: Currency,
    /// The qualification window.
    pub window: Window,
    /// Earning rates.
    pub earning: Earning,
    /// Which basket lines count toward the tier.
    pub qualifying: Qualifying,
    /// What members may spend points on, at the cost the server charges.
    pub rewards: Vec<Reward>,
    /// When earned points lapse; `None`: never.
    pub points_expiry: Option<Expiry>,
    /// The ladder, entry tier first.
    pub tiers: Vec<Tier>,
    /// The demotion policy.
    pub demotion: Demotion,
    /// The terms for closed accounts.
    pub accounts: Accounts,
    /// The file's text, kept with every version that goes live.
    pub source: String,
    /// SHA-256 of `source`, hex: identifies a version whatever its label.
    pub content_hash: String,
    /// Time-boxed bonus campaigns.
    pub campaigns: Vec<Campaign>,
    /// The `.rhai` files the rules use (part of the content hash).
    pub script_files: Vec<PathBuf>,
    /// Earning per activity kind; an activity of another kind is refused.
    pub activities: BTreeMap<String, Activity>,
    /// When a reloaded file goes live by itself (staged ahead, e.g. for the
    /// programme's new year); `None`: as soon as it is loaded.
    pub effective_from: Option<chrono::DateTime<chrono::Utc>>,
    /// What the reports need: point value, value bands, RFM segments.
    pub reporting: Reporting,
    /// How long one evaluation of any of these rules' scripts may take
    /// (`script_time_limit`; default [`crate::script::LIMITS`]'s). A script
    /// past it is stopped and counts as failing: a condition not met, a
    /// bonus of 0.
    pub script_time_limit: std::time::Duration,
}

impl RuleSet {
    /// The reward of the catalogue called `id`.
    pub fn reward(&self, id: &str) -> Option<&Reward> {
        self.rewards.iter().find(|r| r.id == id)
    }

    /// Position of a tier on the ladder (0 = entry tier).
    pub fn tier_index(&self, id: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.id == id)
    }

    /// The entry tier everyone starts in.
    pub fn entry_tier(&self) -> &Tier {
        // `load` refuses a file without tiers.
        &self.tiers[0]
    }

    /// Every script of these rules, each with where it is written
    /// (`tiers.gold.qualify`, `earning.bonus`, `activities.review`,
    /// `reporting.segments.lapsing`): what `rules test` and `simulate`
    /// report on when a script ran over its time budget.
    pub fn scripts(&self) -> Vec<(String, &Script)> {
        let mut scripts = Vec::new();
        for tier in &self.tiers {
            for (part, condition) in [("qualify", &tier.qualify), ("retain", &tier.retain)] {
                if let Some(condition) = condition {
                    let at = format!("tiers.{}.{part}", tier.id);
                    condition.scripts(&at, &mut scripts);
                }
            }
        }
        if let Some(bonus) = &self.earning.bonus {
            scripts.push(("earning.bonus".to_owned(), bonus));
        }
        for (kind, activity) in &self.activities {
            if let Some(script) = &activity.script {
                scripts.push((format!("activities.{kind}"), script));
            }
        }
        for segment in &self.reporting.segments {
            let at = format!("reporting.segments.{}", segment.name);
            segment.when.scripts(&at, &mut scripts);
        }
        scripts
    }
}

// ----- the file as written -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    program: String,
    version: String,
    #[serde(default)]
    effective_from: Option<chrono::DateTime<chrono::Utc>>,
    currency: CurrencyCode,
    window: Window,
    earning: EarningFile,
    #[serde(default)]
    points_expiry: Option<expiry::ExpiryFile>,
    tiers: Vec<TierFile>,
    #[serde(default)]
    demotion: DemotionFile,
    #[serde(default)]
    accounts: AccountsFile,
    #[serde(default)]
    campaigns: Vec<CampaignFile>,
    #[serde(default)]
    activities: BTreeMap<String, ActivityFile>,
    #[serde(default)]
    qualifying: basket::Qualifying,
    #[serde(default)]
    rewards: Vec<rewards::RewardFile>,
    #[serde(default)]
    reporting: reporting::ReportingFile,
    #[serde(default)]
    script_time_limit: Option<values::ScriptTimeLimit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityFile {
    points: Count,
    #[serde(default)]
    script: Option<ActivityScript>,
    #[serde(default)]
    max_per_day: Option<Count>,
    #[serde(default)]
    max_per_month: Option<Count>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignFile {
    name: String,
    from: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
    multiplier: Rate,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    tiers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EarningFile {
    points_per_unit: Rate,
    #[serde(default)]
    channel_multipliers: BTreeMap<String, Rate>,
    #[serde(default)]
    tag_multipliers: BTreeMap<String, Rate>,
    #[serde(default)]
    bonus: Option<BonusScript>,
    #[serde(default)]
    bonus_file: Option<BonusFile>,
    #[serde(default)]
    line_rules: Vec<basket::LineRuleFile>,
    #[serde(default)]
    minimum_order: Option<values::Money>,
    #[serde(default)]
    tier_multipliers: BTreeMap<String, Rate>,
    #[serde(default)]
    tier_rate_applies: TierRateApplies,
    #[serde(default)]
    max_points_per_event: Option<values::PointsCeiling>,
}

/// An activity script, compiled while it is read.
struct ActivityScript(Script);

impl<'de> Deserialize<'de> for ActivityScript {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_script(deserializer, ScriptKind::Activity, false).map(ActivityScript)
    }
}

/// A bonus script in its own `.rhai` file next to the rules.
struct BonusFile(Script);

impl<'de> Deserialize<'de> for BonusFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_script(deserializer, ScriptKind::Bonus, true).map(BonusFile)
    }
}

/// Reads a script while the rules are read: inline text, or (`in_file`) the
/// name of a `.rhai` file next to the rules; compiled for `kind`. Compiled
/// inside the visitor, so that an error is marked at the script's own
/// line in the YAML.
fn read_script<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    kind: ScriptKind,
    in_file: bool,
) -> Result<Script, D::Error> {
    deserializer.deserialize_str(ScriptText { kind, in_file })
}

struct ScriptText {
    kind: ScriptKind,
    in_file: bool,
}

impl serde::de::Visitor<'_> for ScriptText {
    type Value = Script;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(if self.in_file {
            "the name of a .rhai file"
        } else {
            "a rhai script"
        })
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Script, E> {
        let compiled = if self.in_file {
            values::load_script_file(text, self.kind)
        } else {
            Script::compile(text, self.kind).map_err(|e| e.to_string())
        };
        compiled.map_err(E::custom)
    }
}

/// A bonus script, compiled while it is read.
struct BonusScript(Script);

impl<'de> Deserialize<'de> for BonusScript {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_script(deserializer, ScriptKind::Bonus, false).map(BonusScript)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    qualify: Option<Condition>,
    #[serde(default)]
    retain: Option<Condition>,
    #[serde(default)]
    benefits: Vec<Benefit>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DemotionFile {
    #[serde(default)]
    grace_days: Option<Count>,
    #[serde(default)]
    max_drop: Option<Count>,
    #[serde(default)]
    warn_days_before: Option<Count>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(default)]
    reopen_within_days: Option<Count>,
}

/// Only the currency, read first so amounts know their decimals.
#[derive(Deserialize)]
struct Header {
    currency: Option<String>,
}

// ----- loading ---------------------------------------------------------------

/// Every problem that keeps a rules file from loading, in the file's order,
/// so that one run of `tierd rules check` shows them all.
///
/// Values are checked first; how the pieces fit together (the ladder,
/// campaigns naming tiers) is checked once every value is sound, since a
/// ladder missing a broken tier would only produce misleading errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// At least one, each with file, line and column.
    pub diagnostics: Vec<Diagnostic>,
}

impl Rejected {
    /// A rejection for one problem.
    pub fn one(diagnostic: Diagnostic) -> Self {
        Self {
            diagnostics: vec![diagnostic],
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.diagnostics.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for Rejected {}

/// Reads and validates rules from `source` (a file, a stored version, a
/// candidate text): the one way a [`RuleSet`] comes to exist.
///
/// # Errors
/// [`Rejected`] with every problem found, each at its file, line and column.
pub fn load<S: RulesSource + ?Sized>(source: &S) -> Result<RuleSet, Rejected> {
    let file = &source.name();
    let text = source.read()?;
    if text.len() > MAX_FILE_BYTES {
        let message = source::too_large(text.len());
        return Err(Rejected::one(Diagnostic::about_file(
            file,
            Severity::Error,
            message,
        )));
    }
    if let Some((line, column)) = too_deep(&text) {
        return Err(Rejected::one(Diagnostic {
            file: file.to_owned(),
            line,
            column,
            severity: Severity::Error,
            message: format!("brackets nest deeper than {MAX_NESTING} levels"),
        }));
    }
    let currency = serde_yaml::from_str::<Header>(&text)
        .ok()
        .and_then(|h| h.currency)
        .and_then(|c| Currency::parse(&c).ok());
    let context = LoadContext::enter(currency).with_script_dir(source.script_dir());
    let raw = recovery::read_reporting_all(
        &text,
        |text| serde_yaml::from_str::<RulesFile>(text),
        |err| {
            context
                .take_script_error()
                .unwrap_or_else(|| yaml_diagnostic(file, &text, err))
        },
    )
    .map_err(|diagnostics| Rejected { diagnostics })?;
    let mut rules = compile(raw).map_err(|problems| Rejected {
        diagnostics: problems
            .into_iter()
            .map(|p| p.locate(file, &text))
            .collect(),
    })?;
    // The version is the YAML and every script file it uses.
    let scripts = context.script_files();
    let mut hashed = text.clone();
    for (path, script) in &scripts {
        hashed.push_str(&format!("\0{}\0{script}", path.display()));
    }
    rules.content_hash = crate::digest::sha256_hex(hashed.as_bytes());
    rules.source = text;
    rules.script_files = scripts.into_iter().map(|(path, _)| path).collect();
    Ok(rules)
}

/// Reads another YAML document that goes with the rules (the test cases
/// kept beside them), with the same care: money in the program currency,
/// and every problem located and reported in one run.
///
/// # Errors
/// [`Rejected`] with every problem found.
pub fn read_document<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
    currency: Currency,
) -> Result<T, Rejected> {
    let _context = LoadContext::enter(Some(currency));
    recovery::read_reporting_all(
        text,
        |text| serde_yaml::from_str::<T>(text),
        |err| yaml_diagnostic(file, text, err),
    )
    .map_err(|diagnostics| Rejected { diagnostics })
}

/// Deepest `[` / `{` nesting a rules file may have: far beyond any real
/// file (the example needs 2), and a bound on the YAML parser's cost, which
/// grows with the square of the nesting (about 1.4 s for 64 KiB of `[`).
const MAX_NESTING: usize = 64;

/// Where brackets first nest deeper than [`MAX_NESTING`], if they do.
/// Brackets in comments, strings and scripts count too: none of those
/// nests this deep either.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0_usize;
    for (line, content) in text.lines().enumerate() {
        for (column, c) in content.chars().enumerate() {
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => continue,
            }
            if depth > MAX_NESTING {
                return Some((line + 1, column + 1));
            }
        }
    }
    None
}

/// A serde_yaml error as a diagnostic at its line and column, with a "did
/// you mean" for a misspelt key; a script's error is placed at the
/// mistake inside the script, in the file's own lines.
fn yaml_diagnostic(file: &Path, text: &str, err: &serde_yaml::Error) -> Diagnostic {
    let (line, column) = err
        .location()
        .map_or((0, 0), |loc| (loc.line(), loc.column()));
    let mut message = err.to_string();
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    message.push_str(&suggest_field(&message));
    let diagnostic = Diagnostic {
        file: file.to_owned(),
        line,
        column,
        severity: Severity::Error,
        message,
    };
    match plain::in_script(text, line, column, &diagnostic.message) {
        Some(plain) => Diagnostic {
            line: plain.line,
            column: plain.column,
            message: plain.message,
            ..diagnostic
        },
        None => diagnostic,
    }
}

/// "; did you mean `x`?" for serde's "unknown field `y`, expected one of
/// `x`, `z`" (or "expected `x` or `z`"), and the same of a variant
/// (`combine: multiplied`).
fn suggest_field(message: &str) -> String {
    let Some(rest) = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|unknown| message.split(unknown).nth(1))
    else {
        return String::new();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return String::new();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    did_you_mean(unknown, &known)
}

/// A problem found after parsing, with a text snippet to locate it by.
struct Problem {
    message: String,
    /// Text whose first occurrence (after `within`) marks the spot.
    anchor: String,
    /// Find `anchor` after this many earlier occurrences.
    occurrence: usize,
    /// Text the anchor is looked for after (the start of the block it is
    /// in), if any.
    within: Option<String>,
}

impl Problem {
    fn at(anchor: impl Into<String>, occurrence: usize, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            anchor: anchor.into(),
            occurrence,
            within: None,
        }
    }

    /// A problem at the first `anchor` after the first `within` (a name
    /// inside the block that starts there); at `within` itself when the
    /// anchor is not found after it.
    fn inside(
        within: impl Into<String>,
        anchor: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            within: Some(within.into()),
            ..Self::at(anchor, 0, message)
        }
    }

    fn locate(self, file: &Path, text: &str) -> Diagnostic {
        let found = match &self.within {
            None => find_nth(text, &self.anchor, self.occurrence),
            Some(within) => text.find(within.as_str()).and_then(|start| {
                let after = start + within.len();
                text[after..]
                    .find(self.anchor.as_str())
                    .map(|offset| position_at(text, after + offset))
                    .or_else(|| find_nth(text, within, 0))
            }),
        };
        let (line, column) = found.unwrap_or((0, 0));
        Diagnostic {
            file: file.to_owned(),
            line,
            column,
            severity: Severity::Error,
            message: self.message,
        }
    }
}

/// 1-based line and column of the `n`th (0-based) occurrence of `needle`.
fn find_nth(text: &str, needle: &str, n: usize) -> Option<(usize, usize)> {
    let offset = text.match_indices(needle).nth(n)?.0;
    Some(position_at(text, offset))
}

/// 1-based line and column of byte `offset` of `text`.
fn position_at(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Turns the file as read into rules, collecting every problem of how its
/// pieces fit together rather than stopping at the first.
/// Every tier a multiplier names is on the ladder.
fn check_tier_multipliers(
    multipliers: &BTreeMap<String, Rate>,
    tiers: &[Tier],
    problems: &mut Vec<Problem>,
) {
    let known: Vec<&str> = tiers.iter().map(|t| t.id.as_str()).collect();
    for unknown in multipliers.keys().filter(|t| !known.contains(&t.as_str())) {
        problems.push(Problem::at(
            format!("{unknown}:"),
            0,
            format!(
                "tier_multipliers names tier `{unknown}`, which the ladder does not have{}",
                did_you_mean(unknown, &known)
            ),
        ));
    }
}

fn compile(raw: RulesFile) -> Result<RuleSet, Vec<Problem>> {
    let mut problems = Vec::new();
    let tiers = compile_tiers(raw.tiers, &mut problems);
    let campaigns = compile_campaigns(raw.campaigns, &tiers, &mut problems);
    let rewards = rewards::compile(raw.rewards, &tiers, &mut problems);
    let demotion = compile_demotion(&raw.demotion, tiers.len(), &mut problems);
    let accounts = compile_accounts(&raw.accounts, &mut problems);
    let reporting = reporting::compile(raw.reporting, &mut problems);
    let line_rules = basket::compile(raw.earning.line_rules, &mut problems);
    check_tier_multipliers(&raw.earning.tier_multipliers, &tiers, &mut problems);
    let points_expiry = expiry::compile(raw.points_expiry, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(RuleSet {
        program: raw.program,
        version: raw.version,
        currency: raw.currency.0,
        window: raw.window,
        earning: Earning {
            points_per_unit: raw.earning.points_per_unit,
            channel_multipliers: raw.earning.channel_multipliers,
            tag_multipliers: raw.earning.tag_multipliers,
            bonus: raw
                .earning
                .bonus
                .map(|b| b.0)
                .or(raw.earning.bonus_file.map(|b| b.0)),
            line_rules,
            minimum_order_minor: raw.earning.minimum_order.map_or(0, |m| m.0),
            tier_multipliers: raw.earning.tier_multipliers,
            tier_rate_applies: raw.earning.tier_rate_applies,
            max_points_per_event: raw
                .earning
                .max_points_per_event
                .unwrap_or(values::PointsCeiling::DEFAULT)
                .0,
        },
        qualifying: raw.qualifying,
        rewards,
        points_expiry,
        tiers,
        demotion,
        accounts,
        source: String::new(),
        content_hash: String::new(),
        campaigns,
        script_files: Vec::new(),
        activities: raw
            .activities
            .into_iter()
            .map(|(kind, a)| {
                let activity = Activity {
                    points: a.points.0,
                    script: a.script.map(|s| s.0),
                    max_per_day: a.max_per_day.map(|c| c.0),
                    max_per_month: a.max_per_month.map(|c| c.0),
                };
                (kind, activity)
            })
            .collect(),
        effective_from: raw.effective_from,
        reporting,
        script_time_limit: raw
            .script_time_limit
            .map_or(crate::script::LIMITS.time_budget, |limit| limit.0),
    })
    .inspect(|rules| {
        for (_, script) in rules.scripts() {
            script.set_time_budget(rules.script_time_limit);
        }
    })
}

fn compile_campaigns(
    raw: Vec<CampaignFile>,
    tiers: &[Tier],
    problems: &mut Vec<Problem>,
) -> Vec<Campaign> {
    let known: Vec<&str> = tiers.iter().map(|t| t.id.as_str()).collect();
    let mut campaigns = Vec::with_capacity(raw.len());
    for c in raw {
        let anchor = format!("name: {}", c.name);
        if c.until <= c.from {
            let message = format!("campaign `{}` ends before it starts", c.name);
            problems.push(Problem::at(anchor.clone(), 0, message));
        }
        for unknown in c.tiers.iter().filter(|t| !known.contains(&t.as_str())) {
            let message = format!(
                "campaign `{}` names tier `{unknown}`, which the ladder does not have{}",
                c.name,
                did_you_mean(unknown, &known)
            );
            problems.push(Problem::inside(anchor.clone(), unknown.as_str(), message));
        }
        campaigns.push(Campaign {
            name: c.name,
            from: c.from,
            until: c.until,
            multiplier: c.multiplier,
            channels: c.channels,
            tags: c.tags,
            tiers: c.tiers,
        });
    }
    campaigns
}

fn compile_tiers(raw: Vec<TierFile>, problems: &mut Vec<Problem>) -> Vec<Tier> {
    if raw.is_empty() {
        problems.push(Problem::at(
            "tiers:",
            0,
            "`tiers` needs at least the entry tier",
        ));
    }
    let mut seen = HashSet::new();
    let mut tiers = Vec::with_capacity(raw.len());
    for (index, tier) in raw.into_iter().enumerate() {
        let anchor = format!("id: {}", tier.id);
        if tier.id.trim().is_empty() {
            problems.push(Problem::at("id:", index, "a tier id must not be empty"));
        } else if !seen.insert(tier.id.clone()) {
            let message = format!("duplicate tier id `{}`", tier.id);
            problems.push(Problem::at(anchor.clone(), 1, message));
        }
        if index == 0 && (tier.qualify.is_some() || tier.retain.is_some()) {
            problems.push(Problem::at(
                anchor.clone(),
                0,
                format!(
                    "`{}` is the entry tier, where every member starts: it takes no `qualify` or `retain`",
                    tier.id
                ),
            ));
        }
        if index > 0 && tier.qualify.is_none() {
            problems.push(Problem::at(
                anchor,
                0,
                format!(
                    "tier `{}` needs a `qualify` condition: only the entry tier (the first) has none",
                    tier.id
                ),
            ));
        }
        tiers.push(Tier {
            name: tier.name.unwrap_or_else(|| tier.id.clone()),
            id: tier.id,
            qualify: tier.qualify,
            retain: tier.retain,
            benefits: tier.benefits,
        });
    }
    tiers
}

/// The terms for closed accounts: a re-open period of 0 to 3660 days.
fn compile_accounts(raw: &AccountsFile, problems: &mut Vec<Problem>) -> Accounts {
    let days = raw
        .reopen_within_days
        .map_or(Some(Accounts::DEFAULT_REOPEN_DAYS), |Count(d)| {
            u32::try_from(d).ok().filter(|d| *d <= 3_660)
        });
    if days.is_none() {
        problems.push(Problem::at(
            "reopen_within_days:",
            0,
            "reopen_within_days is 0 to 3660",
        ));
    }
    Accounts {
        reopen_within_days: days.unwrap_or(Accounts::DEFAULT_REOPEN_DAYS),
    }
}

fn compile_demotion(
    raw: &DemotionFile,
    tier_count: usize,
    problems: &mut Vec<Problem>,
) -> Demotion {
    let grace_days = raw.grace_days.map_or(Some(0), |Count(d)| {
        u32::try_from(d).ok().filter(|d| *d <= 3_660)
    });
    if grace_days.is_none() {
        problems.push(Problem::at("grace_days:", 0, "grace_days is 0 to 3660"));
    }
    let ladder = u32::try_from(tier_count).unwrap_or(u32::MAX);
    let max_drop = raw.max_drop.map_or(Some(ladder), |Count(n)| {
        u32::try_from(n).ok().filter(|n| *n >= 1)
    });
    if max_drop.is_none() {
        problems.push(Problem::at(
            "max_drop:",
            0,
            "max_drop is at least 1 (tiers per evaluation)",
        ));
    }
    let grace_days = grace_days.unwrap_or(0);
    let warn_days_before = raw.warn_days_before.and_then(|Count(d)| {
        let days = u32::try_from(d)
            .ok()
            .filter(|d| (1..grace_days.max(1)).contains(d));
        if days.is_none() {
            let message = if grace_days < 2 {
                String::from(
                    "warn_days_before needs a grace period of at least 2 days (grace_days) to warn within",
                )
            } else {
                format!(
                    "warn_days_before is 1 to {} (less than grace_days: {grace_days})",
                    grace_days - 1
                )
            };
            problems.push(Problem::at("warn_days_before:", 0, message));
        }
        days
    });
    Demotion {
        grace_days,
        max_drop: max_drop.unwrap_or(ladder),
        warn_days_before,
    }
}

#[cfg(test)]
mod tests;
