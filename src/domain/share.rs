//! Exact shares of integer totals: what part of a purchase's points a
//! returned amount takes back, how a purchase's points split over its
//! lines. Every split adds up to its total exactly (largest remainder), so
//! a basket's lines always account for every point it earned and a full
//! return always takes back exactly what was earned.

/// `total` scaled by `part / whole`, rounded down (0 when `whole` is not
/// positive). Computed in 128 bits: no input overflows it.
pub fn share(total: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let scaled = i128::from(total) * i128::from(part) / i128::from(whole);
    i64::try_from(scaled).unwrap_or(total)
}

/// Splits `floor(sum(numerators) / denominator)` into one part per
/// numerator: each gets its own quotient rounded down, and the units left
/// over go to the largest remainders (the earliest first on a tie). The
/// parts add up to the total exactly; all are 0 for a denominator that is
/// not positive.
pub fn split_quotients(numerators: &[i128], denominator: i128) -> Vec<i64> {
    if denominator <= 0 {
        return vec![0; numerators.len()];
    }
    let whole = |n: i128| i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX });
    let total = numerators.iter().fold(0_i128, |s, n| s.saturating_add(*n)) / denominator;
    let mut parts: Vec<i64> = numerators.iter().map(|n| whole(n / denominator)).collect();
    let given = parts
        .iter()
        .fold(0_i128, |s, p| s.saturating_add(i128::from(*p)));
    let mut by_remainder: Vec<usize> = (0..numerators.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(numerators[i] % denominator));
    let left = usize::try_from(total.saturating_sub(given)).unwrap_or(0);
    for &i in by_remainder.iter().take(left) {
        parts[i] = parts[i].saturating_add(1);
    }
    parts
}

/// Splits `total` in proportion to `weights` (not negative), exactly:
/// the parts add up to `total`. With no positive weight, the first part
/// takes it all.
pub fn split(total: i64, weights: &[i64]) -> Vec<i64> {
    let whole = weights.iter().fold(0_i128, |s, w| s + i128::from(*w));
    if whole <= 0 {
        return (0..weights.len())
            .map(|i| if i == 0 { total } else { 0 })
            .collect();
    }
    let numerators: Vec<i128> = weights
        .iter()
        .map(|w| i128::from(total) * i128::from(*w))
        .collect();
    split_quotients(&numerators, whole)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_left_over_units_go_to_the_largest_remainders() {
        // 10 in thirds: 3.33 each, one unit left, the first of the ties.
        assert_eq!(split(10, &[1, 1, 1]), [4, 3, 3]);
        // 100 over 12.00 / 100.00 / 40.00: 7.89, 65.79, 26.31.
        assert_eq!(split(100, &[1_200, 10_000, 4_000]), [8, 66, 26]);
        assert_eq!(split(7, &[0, 0]), [7, 0]);
        assert_eq!(split_quotients(&[25, 25, 50], 10), [3, 2, 5]);
    }

    proptest! {
        #[test]
        fn a_split_always_adds_up_to_its_total(
            total in 0_i64..1_000_000_000_000,
            weights in proptest::collection::vec(0_i64..1_000_000_000_000, 1..20),
        ) {
            let parts = split(total, &weights);
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
            prop_assert!(parts.iter().all(|p| *p >= 0));
        }
    }
}
