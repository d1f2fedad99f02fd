//! The published models of non-contractual repeat buying, fitted by
//! maximum likelihood: BG/NBD for how often a member buys and whether it
//! is still "alive" (Fader, Hardie & Lee, "Counting Your Customers the
//! Easy Way", Marketing Science 24(2), 2005), and Gamma-Gamma for what it
//! spends per purchase (Fader, Hardie & Lee, "RFM and CLV: Using Iso-Value
//! Curves", Journal of Marketing Research 42(4), 2005).
//!
//! Pure `f64` arithmetic on per-member summaries; the formulas are those
//! of the papers, as the `lifetimes` package (0.11.3) implements them, so
//! that both give the same figures on the same data. Parameters are
//! searched on their logarithms (they must be positive) by Nelder-Mead
//! (`argmin`), restarted from its best point until two runs agree; a fit
//! that does not converge is an error, never a set of numbers.

use argmin::{
    core::{CostFunction, Executor, State, TerminationReason, TerminationStatus},
    solver::neldermead::NelderMead,
};
use statrs::function::gamma::ln_gamma;

/// One member's purchasing in the calibration period, time in any unit
/// (the papers use weeks): `x` repeat purchases (purchase days after the
/// first), the last at `t_x` after the first, which was `t` before the
/// period's end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    /// Repeat purchases.
    pub x: f64,
    /// Recency: the time from the first purchase to the last.
    pub t_x: f64,
    /// Age: the time from the first purchase to the end of calibration.
    pub t: f64,
}

/// Why a model cannot be fitted or used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// Too few members to fit anything.
    #[error("{model} needs at least {needed} members with purchases to fit, and has {found}")]
    TooFew {
        /// The model.
        model: &'static str,
        /// How many it needs.
        needed: usize,
        /// How many there are.
        found: usize,
    },
    /// The optimiser stopped before the likelihood settled.
    #[error("{model} did not converge: {reason} after {iterations} iterations")]
    NotConverged {
        /// The model.
        model: &'static str,
        /// Why it stopped.
        reason: String,
        /// Iterations run.
        iterations: u64,
    },
    /// The fitted parameters make a formula undefined.
    #[error("{model}: {reason}")]
    Undefined {
        /// The model.
        model: &'static str,
        /// What is undefined, in words.
        reason: String,
    },
    /// The hypergeometric series did not converge.
    #[error("the hypergeometric series 2F1({a}, {b}; {c}; {z}) {reason}")]
    Series {
        /// Its parameters.
        a: f64,
        /// Its parameters.
        b: f64,
        /// Its parameters.
        c: f64,
        /// Its argument.
        z: f64,
        /// What went wrong.
        reason: &'static str,
    },
}

/// Fewest members a fit accepts: below this the likelihood is too flat
/// to say anything.
pub const MIN_MEMBERS: usize = 20;

/// Most Nelder-Mead iterations per run.
const MAX_ITERATIONS: u64 = 5_000;

/// Most runs from the last best point before giving up on agreement.
const MAX_RESTARTS: usize = 4;

/// How far a parameter's logarithm may go: parameters from about 2e-9 to
/// 5e8. A likelihood that keeps rising toward a bound (no dropout at all:
/// a toward 0) is settled at the bound instead of searched for ever.
const LOG_BOUND: f64 = 20.0;

/// The runs' best log-likelihoods per member agree within this.
const AGREEMENT: f64 = 1e-9;

/// The fitted BG/NBD model: purchase rates gamma(r, alpha) across members,
/// dropout probabilities beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    /// Shape of the purchase rates.
    pub r: f64,
    /// Scale of the purchase rates (in the time unit).
    pub alpha: f64,
    /// Beta shape of the dropout probability.
    pub a: f64,
    /// Beta shape of the dropout probability.
    pub b: f64,
}

impl BgNbd {
    /// The maximum-likelihood fit to `members`.
    ///
    /// # Errors
    /// Too few members, or no convergence.
    pub fn fit(members: &[History]) -> Result<Self, ModelError> {
        enough("BG/NBD", members.len())?;
        let cost = BgNbdCost(members);
        let best = minimise("BG/NBD", &cost, vec![0.0; 4])?;
        let [r, alpha, a, b] = exp4(&best);
        Ok(Self { r, alpha, a, b })
    }

    /// The log-likelihood of one member's history (eq. 6 of the paper).
    pub fn log_likelihood(&self, h: &History) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let a1 = ln_gamma(r + h.x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + h.x) - ln_gamma(b) - ln_gamma(a + b + h.x);
        let a3 = -(r + h.x) * (alpha + h.t).ln();
        if h.x > 0.0 {
            let a4 = a.ln() - (b + h.x - 1.0).ln() - (r + h.x) * (alpha + h.t_x).ln();
            a1 + a2 + log_sum_exp(a3, a4)
        } else {
            a1 + a2 + a3
        }
    }

    /// The probability that the member is still alive (buying) at the end
    /// of its history (eq. 12): 1 for a member without repeat purchases.
    pub fn p_alive(&self, h: &History) -> f64 {
        if h.x <= 0.0 {
            return 1.0;
        }
        let Self { r, alpha, a, b } = *self;
        let log_odds =
            (r + h.x) * ((alpha + h.t) / (alpha + h.t_x)).ln() + (a / (b + h.x - 1.0)).ln();
        1.0 / (1.0 + log_odds.exp())
    }

    /// The purchases the member is expected to make in the next `span`
    /// (eq. 10).
    ///
    /// # Errors
    /// When the hypergeometric series does not converge, or a = 1.
    pub fn expected_purchases(&self, h: &History, span: f64) -> Result<f64, ModelError> {
        let Self { r, alpha, a, b } = *self;
        if (a - 1.0).abs() < 1e-12 {
            return Err(ModelError::Undefined {
                model: "BG/NBD",
                reason: "a = 1 makes the expected purchases undefined".into(),
            });
        }
        let x = h.x;
        let z = span / (alpha + h.t + span);
        let ln_hyp = ln_hyp2f1(r + x, b + x, a + b + x - 1.0, z)?;
        let first = (a + b + x - 1.0) / (a - 1.0);
        let second = 1.0 - (ln_hyp + (r + x) * ((alpha + h.t) / (alpha + h.t + span)).ln()).exp();
        let alive_odds = if x > 0.0 {
            a / (b + x - 1.0) * ((alpha + h.t) / (alpha + h.t_x)).powf(r + x)
        } else {
            0.0
        };
        Ok(first * second / (1.0 + alive_odds))
    }
}

/// The fitted Gamma-Gamma model of spend per purchase: a member's mean
/// spend is gamma(q, gamma)-distributed across members, each purchase
/// gamma(p, nu) around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    /// Shape of a purchase's spend around the member's mean.
    pub p: f64,
    /// Shape of the members' means.
    pub q: f64,
    /// Scale of the members' means (in the spend's unit).
    pub gamma: f64,
}

/// A member's repeat purchases and their mean spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    /// Repeat purchases (at least 1).
    pub x: f64,
    /// Their mean spend (above 0).
    pub mean: f64,
}

impl GammaGamma {
    /// The maximum-likelihood fit to `members` (those with repeat
    /// purchases and a positive mean spend).
    ///
    /// # Errors
    /// Too few members, no convergence, or q <= 1 (the expected spend is
    /// then undefined).
    pub fn fit(members: &[Spend]) -> Result<Self, ModelError> {
        enough("Gamma-Gamma", members.len())?;
        let cost = GammaGammaCost(members);
        // Started at the data's scale, so that the search need not cross
        // orders of magnitude to find gamma.
        let mean = members.iter().map(|s| s.mean).sum::<f64>() / members.len() as f64;
        let best = minimise("Gamma-Gamma", &cost, vec![0.0, 0.0, mean.max(1.0).ln()])?;
        let fitted = Self {
            p: best[0].exp(),
            q: best[1].exp(),
            gamma: best[2].exp(),
        };
        if fitted.q <= 1.0 {
            return Err(ModelError::Undefined {
                model: "Gamma-Gamma",
                reason: format!(
                    "q = {:.4} <= 1: the members' mean spend has no expectation",
                    fitted.q
                ),
            });
        }
        Ok(fitted)
    }

    /// The log-likelihood of one member's mean spend.
    pub fn log_likelihood(&self, s: &Spend) -> f64 {
        let Self { p, q, gamma } = *self;
        let px = p * s.x;
        ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
            + q * gamma.ln()
            + (px - 1.0) * s.mean.ln()
            + px * s.x.ln()
            - (px + q) * (s.x * s.mean + gamma).ln()
    }

    /// The member's expected spend per purchase: its own mean, weighed
    /// against the population's by how many purchases it rests on; the
    /// population's mean for a member without repeat purchases.
    pub fn expected_spend(&self, s: Option<&Spend>) -> f64 {
        let Self { p, q, gamma } = *self;
        let population = gamma * p / (q - 1.0);
        match s {
            Some(s) => {
                let weight = p * s.x / (p * s.x + q - 1.0);
                (1.0 - weight) * population + weight * s.mean
            }
            None => population,
        }
    }
}

/// The natural logarithm of the Gauss hypergeometric function 2F1(a, b;
/// c; z) for 0 <= z < 1, by its series after Euler's transformation,
/// 2F1(a, b; c; z) = (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z): for the
/// BG/NBD arguments c - a and c - b are small whatever the member's
/// purchases, so the transformed series neither overflows nor needs many
/// terms.
///
/// # Errors
/// z outside [0, 1), or a series that did not converge within its terms
/// or gave a value that is not positive.
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, ModelError> {
    let series = |reason| ModelError::Series { a, b, c, z, reason };
    if !(0.0..1.0).contains(&z) {
        return Err(series("needs 0 <= z < 1"));
    }
    let sum = hyp2f1_series(c - a, c - b, c, z).ok_or_else(|| series("did not converge"))?;
    if !(sum > 0.0 && sum.is_finite()) {
        return Err(series("gave a value that is not positive"));
    }
    Ok(sum.ln() + (c - a - b) * (1.0 - z).ln())
}

/// Most terms of a hypergeometric series.
const MAX_TERMS: usize = 200_000;

/// The series of 2F1(a, b; c; z), summed until a term no longer moves the
/// sum (relative 1e-15), or `None` when that takes more than
/// [`MAX_TERMS`] terms or a term is not finite.
pub fn hyp2f1_series(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    for n in 0..MAX_TERMS {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        if !term.is_finite() {
            return None;
        }
        sum += term;
        if term.abs() <= 1e-15 * sum.abs() {
            return Some(sum);
        }
    }
    None
}

/// ln(e^x + e^y) without overflow.
fn log_sum_exp(x: f64, y: f64) -> f64 {
    let high = x.max(y);
    high + ((x - high).exp() + (y - high).exp()).ln()
}

fn exp4(p: &[f64]) -> [f64; 4] {
    [p[0].exp(), p[1].exp(), p[2].exp(), p[3].exp()]
}

fn enough(model: &'static str, found: usize) -> Result<(), ModelError> {
    if found < MIN_MEMBERS {
        return Err(ModelError::TooFew {
            model,
            needed: MIN_MEMBERS,
            found,
        });
    }
    Ok(())
}

/// The mean negative log-likelihood of BG/NBD over the members, at the
/// logarithms of (r, alpha, a, b).
struct BgNbdCost<'a>(&'a [History]);

impl CostFunction for BgNbdCost<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        if out_of_bounds(p) {
            return Ok(f64::MAX);
        }
        let [r, alpha, a, b] = exp4(p);
        let model = BgNbd { r, alpha, a, b };
        let total: f64 = self.0.iter().map(|h| model.log_likelihood(h)).sum();
        Ok(finite_or_worst(-total / self.0.len() as f64))
    }
}

/// The mean negative log-likelihood of Gamma-Gamma over the members, at
/// the logarithms of (p, q, gamma).
struct GammaGammaCost<'a>(&'a [Spend]);

impl CostFunction for GammaGammaCost<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        if out_of_bounds(p) {
            return Ok(f64::MAX);
        }
        let model = GammaGamma {
            p: p[0].exp(),
            q: p[1].exp(),
            gamma: p[2].exp(),
        };
        let total: f64 = self.0.iter().map(|s| model.log_likelihood(s)).sum();
        Ok(finite_or_worst(-total / self.0.len() as f64))
    }
}

/// Whether a logarithm of a parameter is beyond [`LOG_BOUND`].
fn out_of_bounds(logs: &[f64]) -> bool {
    logs.iter().any(|l| l.abs() > LOG_BOUND)
}

/// A cost the optimiser can compare: a point where the likelihood is not
/// a number is as bad as can be.
fn finite_or_worst(cost: f64) -> f64 {
    if cost.is_finite() { cost } else { f64::MAX }
}

/// The point minimising `cost`, from `start`: Nelder-Mead runs, each from
/// the last one's best point, until two agree on the cost.
fn minimise<C>(model: &'static str, cost: &C, start: Vec<f64>) -> Result<Vec<f64>, ModelError>
where
    C: CostFunction<Param = Vec<f64>, Output = f64>,
{
    let mut best = start;
    let mut last = f64::INFINITY;
    let mut step = 1.0;
    for _ in 0..MAX_RESTARTS {
        let (point, value) = nelder_mead(model, cost, &best, step)?;
        best = point;
        if (last - value).abs() <= AGREEMENT * value.abs().max(1.0) {
            return Ok(best);
        }
        last = value;
        step = 0.1;
    }
    Err(ModelError::NotConverged {
        model,
        reason: format!("{MAX_RESTARTS} restarts did not agree on the likelihood"),
        iterations: MAX_ITERATIONS * MAX_RESTARTS as u64,
    })
}

/// One Nelder-Mead run from the simplex around `start` of side `step`.
fn nelder_mead<C>(
    model: &'static str,
    cost: &C,
    start: &[f64],
    step: f64,
) -> Result<(Vec<f64>, f64), ModelError>
where
    C: CostFunction<Param = Vec<f64>, Output = f64>,
{
    let failed = |reason: String, iterations| ModelError::NotConverged {
        model,
        reason,
        iterations,
    };
    let simplex: Vec<Vec<f64>> = std::iter::once(start.to_vec())
        .chain((0..start.len()).map(|i| {
            let mut vertex = start.to_vec();
            vertex[i] += step;
            vertex
        }))
        .collect();
    let solver = NelderMead::new(simplex)
        .with_sd_tolerance(1e-10)
        .map_err(|err| failed(err.to_string(), 0))?;
    let result = Executor::new(Wrapped(cost), solver)
        .configure(|state| state.max_iters(MAX_ITERATIONS))
        .run()
        .map_err(|err| failed(err.to_string(), 0))?;
    let state = result.state();
    let iterations = state.get_iter();
    tracing::debug!(
        model,
        iterations,
        cost = state.get_best_cost(),
        "Nelder-Mead run"
    );
    match state.get_termination_status() {
        TerminationStatus::Terminated(TerminationReason::SolverConverged) => {}
        TerminationStatus::Terminated(reason) => {
            return Err(failed(reason.text().into(), iterations));
        }
        TerminationStatus::NotTerminated => {
            return Err(failed("it stopped without a reason".into(), iterations));
        }
    }
    let point = state
        .get_best_param()
        .cloned()
        .ok_or_else(|| failed("it found no point".into(), iterations))?;
    Ok((point, state.get_best_cost()))
}

/// `cost` borrowed, as the executor takes its problem by value.
struct Wrapped<'c, C>(&'c C);

impl<C> CostFunction for Wrapped<'_, C>
where
    C: CostFunction<Param = Vec<f64>, Output = f64>,
{
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        self.0.cost(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, within: f64) -> bool {
        (got - want).abs() <= within * want.abs()
    }

    /// The series against closed forms: 2F1(1, 1; 2; z) = -ln(1 - z)/z
    /// and 2F1(a, b; b; z) = (1 - z)^-a, up to z = 0.99.
    #[test]
    fn the_hypergeometric_function_matches_its_closed_forms() {
        for z in [0.0_f64, 0.1, 0.5, 0.9, 0.99] {
            let want = if z == 0.0 { 1.0 } else { -(1.0 - z).ln() / z };
            let got = ln_hyp2f1(1.0, 1.0, 2.0, z).expect("converges").exp();
            assert!(close(got, want, 1e-10), "z {z}: {got} vs {want}");
            let got = ln_hyp2f1(2.5, 3.0, 3.0, z).expect("converges");
            assert!(
                close(got, -2.5 * (1.0 - z).ln(), 1e-10) || z == 0.0,
                "z {z}"
            );
        }
        // Large parameters, as a member with 500 repeat purchases has.
        let got = ln_hyp2f1(500.2, 502.4, 502.2, 0.5).expect("converges");
        assert!(got.is_finite() && got > 0.0);
        assert!(ln_hyp2f1(1.0, 1.0, 2.0, 1.0).is_err(), "z = 1 is refused");
        assert!(
            hyp2f1_series(1.0, 1.0, 2.0, 0.999_999_999).is_none(),
            "too slow"
        );
    }

    /// The CDNOW sample's calibration summary (39 weeks, time in weeks):
    /// repeat purchase days, recency, age, mean repeat spend in dollars.
    fn cdnow() -> Vec<(History, f64)> {
        include_str!("../../../tests/fixtures/cdnow/cdnow_customers_summary_with_transactions.csv")
            .lines()
            .skip(1)
            .map(|line| {
                let f: Vec<f64> = line
                    .split(',')
                    .map(|v| v.parse().expect("a number"))
                    .collect();
                (
                    History {
                        x: f[1],
                        t_x: f[2],
                        t: f[3],
                    },
                    f[4],
                )
            })
            .collect()
    }

    /// The papers' figures on their data: BG/NBD r 0.243, alpha 4.414,
    /// a 0.793, b 2.426 over the 2,357 customers; Gamma-Gamma p 6.25,
    /// q 3.74, gamma 15.44 over the 946 with repeat purchases; each within
    /// 1%.
    #[test]
    fn the_fits_match_the_papers_on_the_cdnow_sample() {
        let data = cdnow();
        assert_eq!(data.len(), 2_357);
        let histories: Vec<History> = data.iter().map(|(h, _)| *h).collect();
        let bg = BgNbd::fit(&histories).expect("converges");
        for (got, want) in [
            (bg.r, 0.243),
            (bg.alpha, 4.414),
            (bg.a, 0.793),
            (bg.b, 2.426),
        ] {
            assert!(close(got, want, 0.01), "{bg:?}");
        }
        let spenders: Vec<Spend> = data
            .iter()
            .filter(|(h, mean)| h.x > 0.0 && *mean > 0.0)
            .map(|(h, mean)| Spend {
                x: h.x,
                mean: *mean,
            })
            .collect();
        assert_eq!(spenders.len(), 946);
        let gg = GammaGamma::fit(&spenders).expect("converges");
        for (got, want) in [(gg.p, 6.25), (gg.q, 3.74), (gg.gamma, 15.44)] {
            assert!(close(got, want, 0.01), "{gg:?}");
        }
    }

    /// The per-member formulas at the paper's parameters against mpmath
    /// (30 digits, its own 2F1): the first CDNOW customer (x 2, t_x 30.43,
    /// T 38.86) is alive with 0.726579 and expected to buy 0.356973 times
    /// in the next 10 weeks; a customer without repeat purchases of the
    /// same age, 0.054300 times.
    #[test]
    fn the_member_figures_match_an_independent_computation() {
        let bg = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let first = History {
            x: 2.0,
            t_x: 30.43,
            t: 38.86,
        };
        assert!(close(bg.p_alive(&first), 0.726_578_570_080_673, 1e-9));
        let next = bg.expected_purchases(&first, 10.0).expect("converges");
        assert!(close(next, 0.356_973_360_265_650, 1e-9), "{next}");
        let once = History {
            x: 0.0,
            t_x: 0.0,
            t: 38.86,
        };
        assert_eq!(bg.p_alive(&once), 1.0);
        let next = bg.expected_purchases(&once, 10.0).expect("converges");
        assert!(close(next, 0.054_299_848_380_449, 1e-9), "{next}");
    }

    /// A fit from too few members is refused, not printed.
    #[test]
    fn too_few_members_are_refused() {
        let few = vec![
            History {
                x: 1.0,
                t_x: 2.0,
                t: 10.0
            };
            5
        ];
        assert!(matches!(BgNbd::fit(&few), Err(ModelError::TooFew { .. })));
    }
}
