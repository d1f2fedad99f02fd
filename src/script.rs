//! The rhai sandbox that runs the small scripts marketing staff put in rules.
//!
//! One engine is built here, once, with every limit set explicitly (rhai's
//! defaults leave operations and string/array/map sizes unlimited). Scripts
//! see only what [`Inputs`] exposes: the member's metrics and attributes and,
//! for bonus scripts, the purchase. Nothing here can reach files, the
//! network or the clock: the crate is built with rhai's `no_time` and
//! `no_module` features, `print`/`debug` go to `tracing`, and `eval` is
//! disabled. Scripts are compiled once per rules load ([`Script::compile`])
//! and evaluated many times; strict variables make a misspelt name a compile
//! error instead of a silent `()` at run time.

use std::{
    cell::Cell,
    collections::BTreeMap,
    fmt,
    sync::{
        Arc, LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rhai::{AST, Dynamic, Engine, Scope};

/// The limits every script runs under. A script that reaches one fails that
/// evaluation with [`ScriptError::Run`]; the service stays up.
#[derive(Debug, Clone, Copy)]
pub struct ScriptLimits {
    /// Operations per evaluation (a loop step, a call, an expression node).
    pub max_operations: u64,
    /// Depth of nested function calls.
    pub max_call_levels: usize,
    /// Depth of nested expressions, at top level and in functions.
    pub max_expr_depth: usize,
    /// Bytes in any string a script builds.
    pub max_string_size: usize,
    /// Elements in any array or map a script builds.
    pub max_collection_size: usize,
    /// Wall-clock time per evaluation, unless the rules set their own
    /// (`script_time_limit`). Operations are counted, but one operation
    /// (sorting an array, say) may take long: a script that sorted a
    /// 1,000-item array in a loop took 0.26 s per purchase within its
    /// operation limit, and writes queued behind it.
    pub time_budget: Duration,
}

/// The limits used by tierd: generous for threshold logic, tight enough that
/// a runaway script costs well under a millisecond.
pub const LIMITS: ScriptLimits = ScriptLimits {
    max_operations: 50_000,
    max_call_levels: 16,
    max_expr_depth: 64,
    max_string_size: 4_096,
    max_collection_size: 1_024,
    time_budget: Duration::from_millis(5),
};

/// The longest time budget a rules file may give its scripts: a script
/// runs inside a write, and writes queue behind it.
pub const MAX_TIME_BUDGET: Duration = Duration::from_millis(100);

thread_local! {
    /// When the script running on this thread must stop.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Operations between two looks at the clock (a look costs about as much
/// as a few operations).
const CLOCK_EVERY: u64 = 16;

/// Whether the script running on this thread is past its deadline.
fn past_deadline() -> bool {
    DEADLINE
        .with(Cell::get)
        .is_some_and(|deadline| Instant::now() > deadline)
}

static ENGINE: LazyLock<Engine> = LazyLock::new(|| build_engine(&LIMITS));

/// Script runs that failed (a limit hit, a wrong result type) since the
/// process started.
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// How many script runs have failed in this process: a failing script
/// never stops the service (the condition counts as not met, the bonus as
/// zero), so this counter is how operators notice one.
pub fn failures() -> u64 {
    FAILURES.load(Ordering::Relaxed)
}

fn build_engine(limits: &ScriptLimits) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_collection_size);
    engine.set_max_map_size(limits.max_collection_size);
    engine.set_max_functions(32);
    engine.set_max_variables(64);
    engine.set_strict_variables(true);
    engine.disable_symbol("eval");
    engine.on_progress(|operations| {
        (operations % CLOCK_EVERY == 0 && past_deadline()).then(|| Dynamic::from(OVER_BUDGET))
    });
    engine.on_print(|text| tracing::info!(target: "tierd::script", "{text}"));
    engine.on_debug(|text, _, pos| tracing::debug!(target: "tierd::script", %pos, "{text}"));
    engine
}

/// What a script may be asked to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// A tier condition: reads member variables (all but
    /// `points_balance`), yields `true` or `false`.
    Condition,
    /// Bonus points for a purchase: reads member and purchase variables,
    /// yields a whole number of points.
    Bonus,
    /// Extra points for an activity: reads member variables, `kind` and
    /// `details` (the activity's attributes), yields a whole number.
    Activity,
    /// A reporting segment's condition: reads member variables and the
    /// lifecycle days ([`LifecycleDays`]), yields `true` or `false`.
    Segment,
}

/// Where a member stands in its lifecycle on the day a report looks at:
/// what segment conditions read besides the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleDays {
    /// `days_since_last_purchase` in scripts (since enrolment when no
    /// purchase is kept).
    pub since_last_purchase: i64,
    /// `days_since_enrolment` in scripts.
    pub since_enrolment: i64,
}

/// The token a script stopped for its time budget ends with.
const OVER_BUDGET: &str = "time budget";

/// A script's time budget, and how often it ran over: shared by the
/// clones of one compiled script, so `rules test` and `simulate` can say
/// which scripts of the rules they ran were too slow.
#[derive(Debug)]
struct Timing {
    budget_micros: AtomicU64,
    overruns: AtomicU64,
    slowest_micros: AtomicU64,
}

/// How a script did against its time budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overruns {
    /// Runs stopped at the budget.
    pub count: u64,
    /// The longest of them (at least the budget).
    pub slowest: Duration,
    /// The budget.
    pub budget: Duration,
}

/// A compiled script with its source, ready to run many times.
#[derive(Clone)]
pub struct Script {
    source: String,
    kind: ScriptKind,
    ast: AST,
    timing: Arc<Timing>,
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

/// Why a script could not be compiled or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The script does not compile; `line` and `column` are within the script.
    #[error("script line {line}, column {column}: {message}")]
    Compile {
        /// 1-based line within the script.
        line: usize,
        /// 1-based column within the script.
        column: usize,
        /// What rhai reported.
        message: String,
    },
    /// The script failed while running (a limit, a type error, ...).
    #[error("script failed: {0}")]
    Run(String),
    /// The script ran past its time budget and was stopped.
    #[error("script stopped after {elapsed:?}, over its time budget of {budget:?}")]
    OverBudget {
        /// How long it had run.
        elapsed: Duration,
        /// Its budget.
        budget: Duration,
    },
}

/// Everything a script can see. Built per evaluation by the engine.
#[derive(Debug, Default, Clone)]
pub struct Inputs<'a> {
    /// `qualifying_points` in scripts.
    pub qualifying_points: i64,
    /// `purchase_volume` in scripts, minor units.
    pub purchase_volume: i64,
    /// `purchase_count` in scripts.
    pub purchase_count: i64,
    /// `lifetime_value` in scripts, minor units.
    pub lifetime_value: i64,
    /// `points_balance` in scripts.
    pub points_balance: i64,
    /// `activity_count` in scripts.
    pub activity_count: i64,
    /// `attributes` in scripts (a map of strings).
    pub attributes: Option<&'a BTreeMap<String, String>>,
    /// The purchase, for bonus scripts only.
    pub purchase: Option<PurchaseInputs<'a>>,
    /// The activity, for activity scripts only: its kind and details.
    pub activity: Option<(&'a str, &'a BTreeMap<String, String>)>,
    /// The lifecycle days, for segment scripts only.
    pub lifecycle: Option<LifecycleDays>,
}

/// A basket line as the earning rules and bonus scripts read it.
#[derive(Debug, Clone, Copy)]
pub struct LineView<'a> {
    /// The SKU.
    pub sku: &'a str,
    /// The category.
    pub category: &'a str,
    /// Units bought.
    pub quantity: i64,
    /// Paid, minor units.
    pub amount_minor: i64,
    /// Labels.
    pub labels: &'a [String],
}

/// The purchase a bonus script looks at.
#[derive(Debug, Clone)]
pub struct PurchaseInputs<'a> {
    /// `amount` in scripts, minor units.
    pub amount_minor: i64,
    /// `channel` in scripts.
    pub channel: &'a str,
    /// `store_id` in scripts.
    pub store_id: &'a str,
    /// `tags` in scripts (an array of strings).
    pub tags: &'a [String],
    /// `lines` in scripts: an array of maps with `sku`, `category`,
    /// `quantity`, `amount` (minor units) and `labels`; empty for a sum.
    pub lines: Vec<LineView<'a>>,
}

impl Script {
    /// Compiles `source` once; unknown variable names are compile errors.
    ///
    /// # Errors
    /// [`ScriptError::Compile`] with the position inside the script.
    pub fn compile(source: &str, kind: ScriptKind) -> Result<Self, ScriptError> {
        let scope = template_scope(kind);
        let ast = ENGINE.compile_with_scope(&scope, source).map_err(|err| {
            let pos = err.1;
            let message = match *err.0 {
                rhai::ParseErrorType::VariableUndefined(name)
                    if kind == ScriptKind::Condition && name == BALANCE =>
                {
                    String::from(
                        "a tier condition cannot read `points_balance`: redeeming points must never \
                         cost a member their tier; use `qualifying_points` (status points) instead",
                    )
                }
                rhai::ParseErrorType::PropertyExpected => decimal_in(source).map_or_else(
                    || rhai::ParseErrorType::PropertyExpected.to_string(),
                    |number| {
                        format!(
                            "`{number}`: scripts have no decimals; amounts are whole cents \
                             (`amount >= 1050` for 10.50) and a rate is a fraction \
                             (`amount * 3 / 2` for x1.5)"
                        )
                    },
                ),
                rhai::ParseErrorType::VariableUndefined(name) => format!(
                    "undefined variable `{name}`{}",
                    did_you_mean(&name, &readable_names(kind).iter().map(String::as_str).collect::<Vec<_>>())
                ),
                other => other.to_string(),
            };
            ScriptError::Compile {
                line: pos.line().unwrap_or(1),
                column: pos.position().unwrap_or(1),
                message,
            }
        })?;
        Ok(Self {
            source: source.to_owned(),
            kind,
            ast,
            timing: Arc::new(Timing {
                budget_micros: AtomicU64::new(micros(LIMITS.time_budget)),
                overruns: AtomicU64::new(0),
                slowest_micros: AtomicU64::new(0),
            }),
        })
    }

    /// Gives this script (and its clones) `budget` per evaluation.
    pub fn set_time_budget(&self, budget: Duration) {
        self.timing
            .budget_micros
            .store(micros(budget), Ordering::Relaxed);
    }

    /// How this script (with its clones) did against its time budget.
    pub fn overruns(&self) -> Overruns {
        let timing = &self.timing;
        Overruns {
            count: timing.overruns.load(Ordering::Relaxed),
            slowest: Duration::from_micros(timing.slowest_micros.load(Ordering::Relaxed)),
            budget: Duration::from_micros(timing.budget_micros.load(Ordering::Relaxed)),
        }
    }

    /// The script text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs a condition script.
    ///
    /// # Errors
    /// [`ScriptError::Run`] when a limit is hit or the result is not a bool.
    pub fn eval_condition(&self, inputs: &Inputs<'_>) -> Result<bool, ScriptError> {
        self.run::<bool>(inputs)
    }

    /// Runs a bonus script.
    ///
    /// # Errors
    /// [`ScriptError::Run`] when a limit is hit or the result is not a number.
    pub fn eval_points(&self, inputs: &Inputs<'_>) -> Result<i64, ScriptError> {
        self.run::<i64>(inputs)
    }

    /// Runs a bonus script, which may answer one number for the purchase
    /// or one per basket line: a list with a number for each line, or a
    /// map from a line's index (`#{ "0": 10, "2": 5 }`; lines left out get
    /// 0). Negative numbers count as 0, as a negative bonus always has.
    ///
    /// # Errors
    /// [`ScriptError::Run`] when it fails, answers something else, or a
    /// list whose length is not the basket's, or a map naming no line of
    /// it.
    pub fn eval_bonus(&self, inputs: &Inputs<'_>) -> Result<Bonus, ScriptError> {
        let lines = inputs.purchase.as_ref().map_or(0, |p| p.lines.len());
        let answer = self.run::<Dynamic>(inputs)?;
        let bonus = bonus_of(answer, lines).map_err(ScriptError::Run);
        if bonus.is_err() {
            FAILURES.fetch_add(1, Ordering::Relaxed);
        }
        bonus
    }

    /// Runs the script under its limits and its time budget: one past
    /// the budget is stopped and fails like any other ([`failures`]
    /// counts it), and its time is kept ([`Script::overruns`]).
    fn run<T: Clone + Send + Sync + 'static>(&self, inputs: &Inputs<'_>) -> Result<T, ScriptError> {
        let mut scope = scope_for(inputs);
        let budget = Duration::from_micros(self.timing.budget_micros.load(Ordering::Relaxed));
        let started = Instant::now();
        DEADLINE.with(|deadline| deadline.set(Some(started + budget)));
        let result = ENGINE.eval_ast_with_scope::<T>(&mut scope, &self.ast);
        DEADLINE.with(|deadline| deadline.set(None));
        result.map_err(|err| {
            FAILURES.fetch_add(1, Ordering::Relaxed);
            match *err {
                rhai::EvalAltResult::ErrorTerminated(..) => self.over_budget(started, budget),
                other => ScriptError::Run(other.to_string()),
            }
        })
    }

    /// Counts a run stopped at its budget, with its time.
    fn over_budget(&self, started: Instant, budget: Duration) -> ScriptError {
        let elapsed = started.elapsed();
        self.timing.overruns.fetch_add(1, Ordering::Relaxed);
        self.timing
            .slowest_micros
            .fetch_max(micros(elapsed), Ordering::Relaxed);
        ScriptError::OverBudget { elapsed, budget }
    }
}

/// A bonus script's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bonus {
    /// Points for the whole purchase, shared over its lines by amount.
    Total(i64),
    /// Points for each line of the basket, in its order.
    PerLine(Vec<i64>),
}

impl Bonus {
    /// All its points.
    pub fn total(&self) -> i64 {
        match self {
            Bonus::Total(points) => *points,
            Bonus::PerLine(points) => points.iter().fold(0_i64, |sum, p| sum.saturating_add(*p)),
        }
    }
}

/// Reads a bonus script's answer for a basket of `lines` lines.
fn bonus_of(answer: Dynamic, lines: usize) -> Result<Bonus, String> {
    let points = |value: Dynamic, what: &dyn Fn() -> String| {
        value
            .as_int()
            .map(|points| points.max(0))
            .map_err(|found| format!("{} is a {found}, not a whole number of points", what()))
    };
    if answer.is_array() {
        let list = answer.into_array().unwrap_or_default();
        if list.len() != lines {
            return Err(format!(
                "the bonus gave a list of {} numbers for a basket of {lines} lines: give one per line",
                list.len()
            ));
        }
        let per_line = list
            .into_iter()
            .enumerate()
            .map(|(i, value)| points(value, &|| format!("the bonus for line {i}")))
            .collect::<Result<_, _>>()?;
        return Ok(Bonus::PerLine(per_line));
    }
    if answer.is_map() {
        let map = answer.cast::<rhai::Map>();
        let mut per_line = vec![0; lines];
        for (key, value) in map {
            let slot = key
                .parse::<usize>()
                .ok()
                .and_then(|index| per_line.get_mut(index))
                .ok_or_else(|| {
                    format!("the bonus names line {key:?}, but the basket has {lines} lines, numbered from 0")
                })?;
            *slot = points(value, &|| format!("the bonus for line {key}"))?;
        }
        return Ok(Bonus::PerLine(per_line));
    }
    points(answer, &|| "the bonus".to_owned()).map(Bonus::Total)
}

/// The first decimal number written in `source` (`1.5`), if any: rhai
/// without floats reads it as a property of `1` and says only "Expecting
/// name of a property".
fn decimal_in(source: &str) -> Option<&str> {
    let bytes = source.as_bytes();
    let dot = (1..bytes.len().saturating_sub(1)).find(|&i| {
        bytes[i] == b'.' && bytes[i - 1].is_ascii_digit() && bytes[i + 1].is_ascii_digit()
    })?;
    let start = source[..dot]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let end = source[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(source.len(), |i| dot + 1 + i);
    source.get(start..end)
}

/// `duration` in whole microseconds.
fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// "; did you mean `x`?" for a name close to a known one, else nothing.
/// Here, in the lowest layer, because script messages need it as much as
/// the rules' and the service's do.
pub fn did_you_mean(unknown: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

/// A scope naming every variable a script of `kind` may read, so strict
/// variables accept exactly those at compile time.
fn template_scope(kind: ScriptKind) -> Scope<'static> {
    let purchase = (kind == ScriptKind::Bonus).then_some(PurchaseInputs {
        amount_minor: 0,
        channel: "",
        store_id: "",
        tags: &[],
        lines: Vec::new(),
    });
    let no_details = BTreeMap::new();
    let activity = (kind == ScriptKind::Activity).then_some(("", &no_details));
    let lifecycle = (kind == ScriptKind::Segment).then_some(LifecycleDays::default());
    let mut scope = scope_for(&Inputs {
        purchase,
        activity,
        lifecycle,
        ..Inputs::default()
    });
    if kind == ScriptKind::Condition {
        // Strict variables then refuse the name at compile time.
        let _unreadable = scope.remove::<i64>(BALANCE);
    }
    scope
}

/// The names a script of `kind` may read, for a "did you mean".
fn readable_names(kind: ScriptKind) -> Vec<String> {
    template_scope(kind)
        .iter_raw()
        .map(|(name, ..)| name.to_owned())
        .collect()
}

/// The redeemable balance: earning scripts may read it, tier conditions
/// may not (see [`Script::compile`]).
const BALANCE: &str = "points_balance";

fn strings(texts: &[String]) -> rhai::Array {
    texts.iter().cloned().map(Dynamic::from).collect()
}

/// A basket line as a script sees it.
fn line_map(line: &LineView<'_>) -> Dynamic {
    let map: rhai::Map = [
        ("sku", Dynamic::from(line.sku.to_owned())),
        ("category", Dynamic::from(line.category.to_owned())),
        ("quantity", Dynamic::from(line.quantity)),
        ("amount", Dynamic::from(line.amount_minor)),
        ("labels", Dynamic::from(strings(line.labels))),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v))
    .collect();
    Dynamic::from(map)
}

/// Plain variables rather than constants: rhai's optimizer would fold
/// constants of the compile-time template scope into the AST.
fn scope_for(inputs: &Inputs<'_>) -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push("qualifying_points", inputs.qualifying_points);
    scope.push("purchase_volume", inputs.purchase_volume);
    scope.push("purchase_count", inputs.purchase_count);
    scope.push("lifetime_value", inputs.lifetime_value);
    scope.push("points_balance", inputs.points_balance);
    scope.push("activity_count", inputs.activity_count);
    let attributes: rhai::Map = inputs
        .attributes
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
        .collect();
    scope.push("attributes", attributes);
    if let Some(purchase) = &inputs.purchase {
        scope.push("amount", purchase.amount_minor);
        scope.push("channel", purchase.channel.to_owned());
        scope.push("store_id", purchase.store_id.to_owned());
        scope.push("tags", strings(purchase.tags));
        let lines: rhai::Array = purchase.lines.iter().map(line_map).collect();
        scope.push("lines", lines);
    }
    if let Some((kind, details)) = inputs.activity {
        scope.push("kind", kind.to_owned());
        let details: rhai::Map = details
            .iter()
            .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
            .collect();
        scope.push("details", details);
    }
    if let Some(days) = inputs.lifecycle {
        scope.push("days_since_last_purchase", days.since_last_purchase);
        scope.push("days_since_enrolment", days.since_enrolment);
    }
    scope
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn conditions_read_metrics_and_attributes() {
        let script = Script::compile(
            r#"qualifying_points >= 100 && attributes.region == "north""#,
            ScriptKind::Condition,
        )
        .expect("compiles");
        let attrs = BTreeMap::from([("region".to_owned(), "north".to_owned())]);
        let mut inputs = Inputs {
            qualifying_points: 150,
            attributes: Some(&attrs),
            ..Inputs::default()
        };
        assert_eq!(script.eval_condition(&inputs), Ok(true));
        inputs.qualifying_points = 50;
        assert_eq!(script.eval_condition(&inputs), Ok(false));
        // A missing attribute compares unequal instead of failing.
        let empty = BTreeMap::new();
        inputs.qualifying_points = 150;
        inputs.attributes = Some(&empty);
        assert_eq!(script.eval_condition(&inputs), Ok(false));
    }

    #[test]
    fn a_bonus_is_one_number_or_one_per_line() {
        let labels = vec!["xxl".to_owned()];
        let line = |sku, labels| LineView {
            sku,
            category: "shirts",
            quantity: 2,
            amount_minor: 1_000,
            labels,
        };
        let lines = vec![line("a", &[][..]), line("b", &labels), line("c", &[][..])];
        let bonus = |source: &str| {
            let inputs = Inputs {
                purchase: Some(PurchaseInputs {
                    amount_minor: 3_000,
                    channel: "pos",
                    store_id: "s",
                    tags: &[],
                    lines: lines.clone(),
                }),
                ..Inputs::default()
            };
            let script = Script::compile(source, ScriptKind::Bonus).expect("compiles");
            // Not a test of speed: a loaded machine must not fail it.
            script.set_time_budget(MAX_TIME_BUDGET);
            script.eval_bonus(&inputs)
        };
        assert_eq!(bonus("25"), Ok(Bonus::Total(25)));
        assert_eq!(bonus("-5"), Ok(Bonus::Total(0)), "negative is none");
        assert_eq!(
            bonus(r#"lines.map(|l| if "xxl" in l.labels { l.quantity * 7 } else { 0 })"#),
            Ok(Bonus::PerLine(vec![0, 14, 0]))
        );
        assert_eq!(
            bonus(r#"#{ "2": 5, "0": -3 }"#),
            Ok(Bonus::PerLine(vec![0, 0, 5])),
            "left out and negative lines get 0"
        );
        assert_eq!(bonus("[1, 2, 3]").map(|b| b.total()), Ok(6));
        let refused = [
            ("[1, 2]", "a list of 2 numbers for a basket of 3 lines"),
            (
                r#"#{ "3": 1 }"#,
                "names line \"3\", but the basket has 3 lines",
            ),
            (r#"#{ first: 1 }"#, "names line \"first\""),
            (r#"[1, "x", 3]"#, "the bonus for line 1 is a string"),
            (r#""ten""#, "the bonus is a string"),
        ];
        for (source, says) in refused {
            let err = bonus(source).expect_err(source);
            assert!(err.to_string().contains(says), "{source}: {err}");
        }
    }

    #[test]
    fn unknown_variables_do_not_compile() {
        let err = Script::compile("qualifyng_points > 3", ScriptKind::Condition)
            .expect_err("misspelt name");
        assert!(matches!(err, ScriptError::Compile { line: 1, .. }), "{err}");
        // Purchase variables exist only for bonus scripts.
        assert!(Script::compile("amount > 3", ScriptKind::Condition).is_err());
        assert!(Script::compile("if amount > 3 { 10 } else { 0 }", ScriptKind::Bonus).is_ok());
    }

    /// Sorts a copy of a shuffled 1,000-item array again and again: each
    /// sort is one operation, so the operation limit alone let one run
    /// take a quarter of a second.
    pub(crate) const SLOW_BONUS: &str = "\
        let a = []; for i in 0..1000 { a.push((i * 7919) % 1000) } \
        let n = 0; for k in 0..100000 { let b = a; b.sort(); n += 1 } n";

    #[test]
    fn a_script_is_stopped_at_its_time_budget_and_its_overrun_kept() {
        let script = Script::compile(SLOW_BONUS, ScriptKind::Bonus).expect("compiles");
        script.set_time_budget(Duration::from_millis(2));
        let started = Instant::now();
        let stopped = script.eval_points(&Inputs::default());
        let elapsed = started.elapsed();
        assert!(
            matches!(stopped, Err(ScriptError::OverBudget { budget, .. }) if budget == Duration::from_millis(2)),
            "{stopped:?}"
        );
        assert!(
            elapsed < Duration::from_millis(50),
            "stopped after {elapsed:?}"
        );
        let clone = script.clone();
        let overruns = clone.overruns();
        assert_eq!(overruns.count, 1);
        assert!(overruns.slowest >= Duration::from_millis(2), "{overruns:?}");
        // A quick script is untouched by the budget.
        let quick = Script::compile("amount / 100", ScriptKind::Bonus).expect("compiles");
        quick.set_time_budget(Duration::from_millis(2));
        let inputs = Inputs {
            purchase: Some(PurchaseInputs {
                amount_minor: 12_345,
                channel: "pos",
                store_id: "",
                tags: &[],
                lines: Vec::new(),
            }),
            ..Inputs::default()
        };
        assert_eq!(quick.eval_points(&inputs), Ok(123));
        assert_eq!(quick.overruns().count, 0);
    }

    #[test]
    fn runaway_scripts_hit_limits() {
        let forever = Script::compile("loop { }", ScriptKind::Condition).expect("compiles");
        let failed_before = failures();
        assert!(matches!(
            forever.eval_condition(&Inputs::default()),
            Err(ScriptError::Run(_))
        ));
        assert!(failures() > failed_before, "the failure is counted");
        let huge = Script::compile(r#"let s = "x"; loop { s += s; }"#, ScriptKind::Condition)
            .expect("compiles");
        assert!(huge.eval_condition(&Inputs::default()).is_err());
        let deep = Script::compile("fn f(n) { f(n + 1) } f(0) > 0", ScriptKind::Condition)
            .expect("compiles");
        assert!(deep.eval_condition(&Inputs::default()).is_err());
    }

    #[test]
    fn tier_conditions_cannot_read_the_redeemable_balance() {
        let err =
            Script::compile("points_balance >= 100", ScriptKind::Condition).expect_err("refused");
        assert!(
            err.to_string().contains("cannot read `points_balance`"),
            "{err}"
        );
        assert!(Script::compile("points_balance >= 100", ScriptKind::Bonus).is_ok());
        assert!(Script::compile("qualifying_points >= 100", ScriptKind::Condition).is_ok());
    }

    #[test]
    fn the_sandbox_has_no_floats_or_eval() {
        let decimal = Script::compile("purchase_volume * 1.5 > 3", ScriptKind::Condition)
            .expect_err("no floats");
        let message = decimal.to_string();
        assert!(
            message.contains("`1.5`: scripts have no decimals; amounts are whole cents"),
            "{message}"
        );
        assert!(Script::compile(r#"eval("1") > 0"#, ScriptKind::Condition).is_err());
    }
}
