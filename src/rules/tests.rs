//! Unit tests of the rules parser: the shipped example loads, and each kind
//! of mistake is reported at its own line and column.

use super::*;

const MINIMAL: &str = "\
program: p
version: v1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
tiers:
  - id: bronze
  - id: silver
    qualify:
      qualifying_points: 100
";

fn parse_text(text: &str) -> Result<RuleSet, Rejected> {
    load(&Candidate::new("rules.yaml", text))
}

#[test]
fn the_example_rules_load() {
    let rules = load(Path::new("rules/example.yaml")).expect("example is valid");
    let ids: Vec<&str> = rules.tiers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["bronze", "silver", "gold", "platinum"]);
    assert_eq!(rules.currency.code(), "EUR");
    assert_eq!(rules.window, Window::RollingMonths(12));
    assert_eq!(
        rules.points_expiry.map(|e| e.after),
        Some(crate::rules::Lifetime::Months(12))
    );
    assert_eq!(
        rules.demotion,
        Demotion {
            grace_days: 30,
            max_drop: 1,
            warn_days_before: Some(7),
        }
    );
    assert!(rules.earning.bonus.is_some());
    assert!(matches!(
        rules.tiers[3].qualify,
        Some(Condition::Any(ref c)) if matches!(c[0], Condition::AtLeast { threshold: 1_000_000, .. })
    ));
}

#[test]
fn a_minimal_file_gets_defaults() {
    let rules = parse_text(MINIMAL).expect("valid");
    assert_eq!(rules.demotion.grace_days, 0);
    assert_eq!(rules.demotion.max_drop, 2);
    assert_eq!(rules.points_expiry, None);
}

#[track_caller]
fn assert_error(text: &str, line: usize, column: usize, needle: &str) {
    let rejected = parse_text(text).expect_err("must be refused");
    let [diag] = rejected.diagnostics.as_slice() else {
        panic!("expected one problem, got:\n{rejected}");
    };
    assert!(diag.message.contains(needle), "{diag}");
    assert_eq!((diag.line, diag.column), (line, column), "{diag}");
    assert!(diag.to_string().starts_with("rules.yaml:"), "{diag}");
}

#[test]
fn unknown_keys_are_located() {
    let text = MINIMAL.replace("window:", "windw: x\nwindow:");
    assert_error(&text, 4, 1, "unknown field `windw`");
    let text = MINIMAL.replace(
        "    qualify:",
        "    qualfy: {purchase_count: 1}\n    qualify:",
    );
    assert_error(&text, 10, 5, "did you mean `qualify`?");
}

#[test]
fn bad_values_are_located() {
    assert_error(
        &MINIMAL.replace("currency: EUR", "currency: EURO"),
        3,
        11,
        "unknown currency",
    );
    assert_error(
        &MINIMAL.replace("qualifying_points: 100", "qualifying_points: -100"),
        11,
        26,
        "negative",
    );
    assert_error(
        &MINIMAL.replace("qualifying_points: 100", "purchase_volume: \"12.345\""),
        11,
        24,
        "decimals",
    );
    assert_error(
        &MINIMAL.replace("rolling 12 months", "every other tuesday"),
        4,
        9,
        "unknown window",
    );
}

#[test]
fn ladder_mistakes_are_located() {
    let text = MINIMAL.replace("  - id: silver", "  - id: bronze");
    assert_error(&text, 9, 5, "duplicate tier id `bronze`");
    let text = format!("{MINIMAL}  - id: gold\n");
    assert_error(&text, 12, 5, "tier `gold` needs a `qualify`");
    let text = MINIMAL.replace(
        "  - id: bronze\n",
        "  - id: bronze\n    qualify: {purchase_count: 1}\n",
    );
    assert_error(&text, 8, 5, "entry tier");
}

#[test]
fn script_errors_are_located_at_the_mistake_in_the_file_s_own_lines() {
    let text = MINIMAL.replace(
        "qualifying_points: 100",
        "script: |\n          purchase_count > 1 &&\n          unknown_metric > 2",
    );
    // The mistake is on the script's second line, the file's 13th.
    assert_error(&text, 13, 11, "undefined variable `unknown_metric`");
}

/// Redeeming points must never cost a member their tier, so no tier
/// condition may read the redeemable balance; earning scripts still may.
#[test]
fn a_tier_condition_reading_the_redeemable_balance_is_refused_where_it_is() {
    let text = MINIMAL.replace("qualifying_points: 100", "script: 'points_balance >= 100'");
    assert_error(&text, 11, 16, "cannot read `points_balance`");
    let earning = MINIMAL.replace(
        "  points_per_unit: 1\n",
        "  points_per_unit: 1\n  bonus: 'if points_balance > 100 { 5 } else { 0 }'\n",
    );
    assert!(parse_text(&earning).is_ok());
}

#[test]
fn earning_script_errors_are_located_at_the_script() {
    let text = MINIMAL.replace(
        "  points_per_unit: 1\n",
        "  points_per_unit: 1\n  bonus: 'if chanel == \"pos\" { 5 } else { 0 }'\n",
    );
    assert_error(
        &text,
        7,
        14,
        "undefined variable `chanel`; did you mean `channel`?",
    );
}

/// Text that is not YAML is reported at the slip, in words about the
/// file: the example with a quote left open, or a tab for indentation.
#[test]
fn yaml_slips_are_named_where_they_are() {
    let example = std::fs::read_to_string("rules/example.yaml").expect("example");
    let quote = example.replacen("version: \"2026.1\"", "version: \"2026.1", 1);
    let line = 1 + example[..example.find("version:").expect("version")]
        .lines()
        .count();
    assert_error(
        &quote,
        line,
        10,
        &format!("the quote opened at {line}:10 is never closed"),
    );
    let tab = example.replacen("\n  points_per_unit", "\n\tpoints_per_unit", 1);
    let line = 1 + example[..example.find("  points_per_unit").expect("earning")]
        .lines()
        .count();
    assert_error(
        &tab,
        line,
        1,
        &format!("YAML indents with spaces, not tabs: line {line} starts with a tab"),
    );
}

#[test]
fn deeply_nested_brackets_are_refused_before_parsing() {
    let deep = format!(
        "{MINIMAL}campaigns: {}{}\n",
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    assert_error(&deep, 12, 76, "brackets nest deeper than 64 levels");
}

#[test]
fn money_follows_the_currency_wherever_it_is_written() {
    let text = MINIMAL
        .replace("currency: EUR\n", "")
        .replace("qualifying_points: 100", "purchase_volume: 1500")
        + "currency: JPY\n";
    let rules = parse_text(&text).expect("valid");
    assert!(matches!(
        rules.tiers[1].qualify,
        Some(Condition::AtLeast {
            threshold: 1500,
            ..
        })
    ));
}

#[test]
fn campaigns_are_checked() {
    let campaign = |tiers: &str, until: &str| {
        format!(
            "{MINIMAL}campaigns:\n  - name: promo\n    from: 2026-01-01T00:00:00Z\n    until: {until}\n    multiplier: 2\n    tiers: [{tiers}]\n"
        )
    };
    let rules = parse_text(&campaign("silver", "2026-02-01T00:00:00Z")).expect("valid");
    assert_eq!(rules.campaigns.len(), 1);
    // At the name, not at the campaign's first line.
    assert_error(
        &campaign("silvr", "2026-02-01T00:00:00Z"),
        17,
        13,
        "names tier `silvr`, which the ladder does not have; did you mean `silver`?",
    );
    assert_error(
        &campaign("silver", "2025-12-01T00:00:00Z"),
        13,
        5,
        "ends before it starts",
    );
}

#[test]
fn scripts_can_live_in_rhai_files_next_to_the_rules() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules_path = dir.path().join("program.yaml");
    let text = MINIMAL
        .replace("qualifying_points: 100", "script_file: silver.rhai")
        .replace(
            "  points_per_unit: 1\n",
            "  points_per_unit: 1\n  bonus_file: bonus.rhai\n",
        );
    std::fs::write(&rules_path, &text).expect("write rules");
    std::fs::write(
        dir.path().join("silver.rhai"),
        "// silver\nqualifying_points >= 100\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("bonus.rhai"),
        "if amount > 100 { 5 } else { 0 }",
    )
    .expect("write");
    std::fs::write(dir.path().join("old.rhai"), "1 > 0").expect("write");
    let rules = load(&rules_path).expect("valid");
    assert!(matches!(rules.tiers[1].qualify, Some(Condition::Script(_))));
    assert!(rules.earning.bonus.is_some());
    let warnings: Vec<String> = lint(&rules, &rules_path)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("old.rhai: warning: unused script")),
        "{warnings:#?}"
    );
    let first_hash = rules.content_hash.clone();
    std::fs::write(
        dir.path().join("silver.rhai"),
        "// silver\nqualifying_points >= 200\n",
    )
    .expect("edit");
    assert_ne!(
        load(&rules_path).expect("valid").content_hash,
        first_hash,
        "a script edit is a new version"
    );

    std::fs::write(
        dir.path().join("silver.rhai"),
        "// silver\n\nqualifyng_points >= 100\n",
    )
    .expect("break");
    let rejected = load(&rules_path).expect_err("bad script");
    let diagnostic = &rejected.diagnostics[0];
    assert_eq!(
        diagnostic.file,
        dir.path().join("silver.rhai"),
        "{diagnostic}"
    );
    assert_eq!(diagnostic.line, 3, "{diagnostic}");
}

/// Each problem as `line:column: message`.
fn problems(text: &str) -> Vec<String> {
    parse_text(text)
        .expect_err("must be refused")
        .diagnostics
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect()
}

#[test]
fn every_value_mistake_is_reported_in_one_run() {
    let text = MINIMAL
        .replace("currency: EUR", "currency: EURO")
        .replace("window: rolling 12 months", "windw: rolling 12 months")
        .replace("points_per_unit: 1", "points_per_unit: -1")
        + "  - id: gold\n    qualify:\n      any:\n        - purchase_volum: 100\n        - purchase_count: 2\n";
    let found = problems(&text);
    let places: Vec<&str> = found
        .iter()
        .map(|p| &p[..p.find(": ").unwrap_or(0)])
        .collect();
    assert_eq!(places, ["3:11", "4:1", "6:20", "15:11"], "{found:#?}");
    assert!(found[0].contains("unknown currency"), "{found:#?}");
    assert!(found[1].contains("did you mean `window`?"), "{found:#?}");
    assert!(found[2].contains("negative"), "{found:#?}");
    assert!(
        found[3].contains("did you mean `purchase_volume`?"),
        "{found:#?}"
    );
}

#[test]
fn every_ladder_mistake_is_reported_in_one_run() {
    let text = MINIMAL.replace("  - id: silver", "  - id: bronze")
        + "  - id: gold\ndemotion:\n  max_drop: 0\n";
    let found = problems(&text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].starts_with("9:5: duplicate tier id `bronze`"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("tier `gold` needs a `qualify`"),
        "{found:#?}"
    );
    assert!(found[2].contains("max_drop is at least 1"), "{found:#?}");
}

#[test]
fn one_mistake_anywhere_in_the_example_is_reported_once() {
    let example = std::fs::read_to_string("rules/example.yaml").expect("example");
    let lines: Vec<&str> = example.lines().collect();
    let mut checked = 0;
    for (index, line) in lines.iter().enumerate() {
        let Some(colon) = line.find(": ") else {
            continue;
        };
        if line.trim_start().starts_with('#') {
            continue;
        }
        for broken in [
            format!("{}x{}", &line[..colon], &line[colon..]),
            format!("{}: [oops", &line[..colon]),
            format!("{}: -5", &line[..colon]),
            format!("{}: {{}}", &line[..colon]),
        ] {
            let mut text: Vec<&str> = lines.clone();
            text[index] = &broken;
            let text = text.join("\n");
            let Err(rejected) = load(&Candidate::new("rules/example.yaml", text.as_str())) else {
                continue;
            };
            checked += 1;
            // A broken tier id also leaves every reference to the tier
            // dangling: each is reported where it is, once.
            let at_line = rejected
                .diagnostics
                .iter()
                .filter(|d| !d.message.contains("which the ladder does not have"))
                .count();
            assert_eq!(
                at_line.max(1),
                1,
                "line {}: `{broken}`:\n{rejected}",
                index + 1
            );
            let mut places: Vec<_> = rejected.diagnostics.iter().map(|d| d.line).collect();
            places.dedup();
            assert_eq!(places.len(), rejected.diagnostics.len(), "{rejected}");
        }
    }
    eprintln!("{checked} corruptions refused, each with one problem");
    assert!(checked > 100, "only {checked} corruptions were refused");
}

#[test]
fn the_reporting_section_reads_point_value_bands_and_segments() {
    let rules = load(Path::new("rules/example.yaml")).expect("example is valid");
    let reporting = &rules.reporting;
    assert_eq!(reporting.point_value_minor, 1);
    let bands: Vec<_> = reporting
        .value_bands
        .iter()
        .map(|b| (b.name.as_str(), b.up_to_minor))
        .collect();
    assert_eq!(
        bands,
        [
            ("low", Some(100_000)),
            ("medium", Some(500_000)),
            ("high", None)
        ]
    );
    assert_eq!(reporting.band_of(100_000), 0);
    assert_eq!(reporting.band_of(100_001), 1);
    assert_eq!(reporting.band_of(-5), 0);
    assert_eq!(reporting.band_of(i64::MAX), 2);
    let name = |scores| {
        reporting
            .rfm_segment_of(scores)
            .map(|i| reporting.rfm_segments[i].name.as_str())
    };
    assert_eq!(name((5, 5, 5)), Some("champions"));
    assert_eq!(name((5, 1, 1)), Some("new"));
    assert_eq!(name((1, 1, 1)), Some("lost"));
    assert_eq!(name((1, 3, 1)), None);
    let minimal = parse_text(MINIMAL).expect("valid");
    assert_eq!(minimal.reporting.point_value_minor, 0);
    assert!(minimal.reporting.value_bands.is_empty() && minimal.reporting.segments.is_empty());
    assert_eq!(minimal.reporting.band_of(123), 0);
}

#[test]
fn reporting_mistakes_are_located() {
    let with = |section: &str| format!("{MINIMAL}reporting:\n{section}");
    assert_error(
        &with("  rfm_segments:\n    - { name: a, recency: 6 }\n"),
        14,
        27,
        "\"6\" is not a score from 1 to 5",
    );
    assert_error(
        &with("  rfm_segments:\n    - { name: a, frequency: 5-4 }\n"),
        14,
        29,
        "runs backwards",
    );
    assert_error(
        &with("  value_bands:\n    - { name: low, up_to: 100 }\n    - { name: high, up_to: 50 }\n"),
        15,
        9,
        "the last value band, `high`, must be open",
    );
    assert_error(
        &with("  value_bands:\n    - { name: low }\n    - { name: high }\n"),
        14,
        9,
        "only the last band may be open",
    );
    assert_error(&with("  point_value: \"0.001\"\n"), 13, 16, "decimals");
}

#[test]
fn line_rule_mistakes_are_located() {
    let with = |rules: &str| {
        MINIMAL.replace(
            "  points_per_unit: 1\n",
            &format!("  points_per_unit: 1\n  line_rules:\n{rules}"),
        )
    };
    assert_error(
        &with("    - { name: both, points_per_unit: 2, buy: { sku: X }, points: 5 }\n"),
        8,
        9,
        "make them two rules",
    );
    assert_error(&with("    - { name: idle }\n"), 8, 9, "pays nothing");
    assert_error(
        &with("    - { name: gift, buy: { sku: X } }\n"),
        8,
        9,
        "gives no `points`",
    );
    assert_error(
        &with("    - { name: a, points_per_unit: 2, multiplers: { labels: { x: 2 } } }\n"),
        8,
        38,
        "unknown field `multiplers`",
    );
    assert_error(
        &with("    - { name: a, points_per_unit: 2, exclude: { colours: [red] } }\n"),
        8,
        49,
        "unknown field `colours`",
    );
    assert_error(
        &with("    - { name: a, points_per_unit: 2, onli: { labels: [red] } }\n"),
        8,
        38,
        "did you mean `only`?",
    );
    assert_error(
        &with("    - { name: a, points_per_unit: 2, combine: multiplied }\n"),
        8,
        47,
        "unknown variant `multiplied`, expected `largest` or `multiply`; did you mean `multiply`?",
    );
    assert_error(
        &with("    - { name: a, points_per_unit: 2, only: {} }\n"),
        8,
        9,
        "`only` names no sku, category or label",
    );
    assert_error(
        &with("    - { name: a, points_per_unit: 2, minimum: {} }\n"),
        8,
        9,
        "`minimum` gives neither `quantity` nor `amount`",
    );
    assert_error(
        &with("    - { name: a, points_per_unit: 2, minimum: { quantty: 3 } }\n"),
        8,
        49,
        "did you mean `quantity`?",
    );
    assert_error(
        &with("    - { name: a, points_per_unit: 2, minimum: { amount: 30.001 } }\n"),
        8,
        57,
        "30.001",
    );
    assert_error(
        &with("    - { name: gift, buy: { sku: X }, points: 5, only: { sku: X } }\n"),
        8,
        9,
        "`only` and `combine` belong to a rule paying `points_per_unit`",
    );
    let rules = parse_text(&with(
        "    - { name: a, points_per_unit: 2, exclude: { category: delivery } }\n    - { name: b, buy: { skus: [X, Y] }, points: 5, per: unit, final: true }\n",
    ))
    .expect("valid");
    assert_eq!(rules.earning.line_rules.len(), 2);
    assert!(rules.earning.line_rules[1].stops);
}

#[test]
fn a_tier_multiplier_names_a_tier_on_the_ladder() {
    let text = MINIMAL.replace(
        "  points_per_unit: 1\n",
        "  points_per_unit: 1\n  tier_multipliers: { silvr: 1.5 }\n  tier_rate_applies: after\n",
    );
    assert_error(&text, 7, 23, "did you mean `silver`?");
    let text = MINIMAL.replace(
        "  points_per_unit: 1\n",
        "  points_per_unit: 1\n  tier_rate_applies: later\n",
    );
    let err = parse_text(&text).expect_err("before or after only");
    assert!(err.to_string().contains("before"), "{err}");
}

#[test]
fn benefits_are_words_or_maps_with_text() {
    let text = MINIMAL.replace(
        "  - id: bronze\n",
        "  - id: bronze\n    benefits:\n      - member prices\n      - { text: lounge, visits: \"4\" }\n",
    );
    let rules = parse_text(&text).expect("valid");
    let benefits = &rules.tiers[0].benefits;
    assert_eq!(benefits[0].text, "member prices");
    assert_eq!(
        benefits[1].details.get("visits").map(String::as_str),
        Some("4")
    );
    let text = MINIMAL.replace(
        "  - id: bronze\n",
        "  - id: bronze\n    benefits:\n      - { visits: \"4\" }\n",
    );
    let err = parse_text(&text).expect_err("no text");
    assert!(err.to_string().contains("needs `text`"), "{err}");
}

#[test]
fn points_expire_after_months_or_days_until_a_period_ends() {
    let with = |expiry: &str| format!("{MINIMAL}points_expiry:\n{expiry}");
    let rules = parse_text(&with("  days: 90\n  until_end_of: quarter\n")).expect("valid");
    assert_eq!(
        rules.points_expiry,
        Some(crate::rules::Expiry {
            after: crate::rules::Lifetime::Days(90),
            until_end_of: Some(crate::rules::CalendarPeriod::Quarter),
        })
    );
    assert_error(&with("  months: 3\n  days: 90\n"), 12, 1, "not both");
    assert_error(&with("  days: 0\n"), 13, 3, "1 to 3650 days");
    let err = parse_text(&with("  months: 3\n  until_end_of: week\n")).expect_err("no weeks");
    assert!(err.to_string().contains("quarter"), "{err}");
}

#[test]
fn an_early_warning_comes_inside_the_grace_period() {
    let with = |demotion: &str| format!("{MINIMAL}demotion:\n{demotion}");
    assert_error(
        &with("  grace_days: 30\n  warn_days_before: 30\n"),
        14,
        3,
        "warn_days_before is 1 to 29 (less than grace_days: 30)",
    );
    assert_error(
        &with("  warn_days_before: 7\n"),
        13,
        3,
        "needs a grace period of at least 2 days",
    );
    let rules = parse_text(&with("  grace_days: 30\n  warn_days_before: 7\n")).expect("valid");
    assert_eq!(rules.demotion.warn_days_before, Some(7));
}

#[test]
fn the_qualifying_basis_names_the_lines_that_do_not_count() {
    let text = format!(
        "{MINIMAL}qualifying:\n  exclude: {{ categories: [gift-card, delivery], skus: [FEE] }}\n"
    );
    let rules = parse_text(&text).expect("valid");
    assert_eq!(
        rules.qualifying.describe(),
        Some(
            "lines of category delivery or gift-card, or of sku FEE do not count toward the tier (spend, lifetime value, qualifying points)"
        )
    );
    let everything = parse_text(MINIMAL).expect("valid");
    assert_eq!(everything.qualifying.describe(), None);
    let typo = format!("{MINIMAL}qualifying:\n  exlude: {{ categories: [gift-card] }}\n");
    assert_error(&typo, 13, 3, "did you mean `exclude`?");
}

#[test]
fn rewards_name_tiers_of_the_ladder_and_cost_something() {
    let with = |rewards: &str| format!("{MINIMAL}rewards:\n{rewards}");
    let rules = parse_text(&with(
        "  - { id: tote, name: A tote, cost: 5 }\n  - { id: lounge, name: Lounge, cost: 50, min_tier: silver }\n",
    ))
    .expect("valid");
    assert_eq!(rules.rewards.len(), 2);
    assert_eq!(rules.reward("lounge").map(|r| r.cost), Some(50));
    assert_error(
        &with("  - { id: lounge, name: Lounge, cost: 50, min_tier: silvr }\n"),
        13,
        53,
        "reward `lounge` names tier `silvr`, which the ladder does not have; did you mean `silver`?",
    );
    assert_error(
        &with("  - { id: tote, name: A tote, cost: 0 }\n"),
        13,
        7,
        "costs nothing",
    );
    assert_error(
        &with(
            "  - { id: tote, name: A tote, cost: 5, from: 2026-03-10T00:00:00Z, until: 2026-03-01T00:00:00Z }\n",
        ),
        13,
        7,
        "ends before it starts",
    );
    assert_error(
        &with("  - { id: tote, name: A tote, cost: 5, max_per_month: 0 }\n"),
        13,
        40,
        "reward `tote` has `max_per_month: 0`: a limit is at least 1",
    );
    assert_error(
        &with("  - { id: tote, name: A tote, cost: 5, max_per_mnth: 2 }\n"),
        13,
        40,
        "did you mean `max_per_month`?",
    );
}

#[test]
fn a_reward_s_limits_count_over_their_periods_shortest_first() {
    let rules = parse_text(&format!(
        "{MINIMAL}rewards:\n  - {{ id: tote, name: A tote, cost: 5, max_per_member: 3, max_per_week: 1 }}\n"
    ))
    .expect("valid");
    let tote = rules.reward("tote").expect("in the catalogue");
    let periods: Vec<(Period, i64)> = tote.limits.iter().map(|l| (l.period, l.max)).collect();
    assert_eq!(periods, [(Period::Week, 1), (Period::Membership, 3)]);
    assert_eq!(tote.within_limits(|_| 0), Ok(()));
    let refused = tote
        .within_limits(|period| if period == Period::Membership { 3 } else { 0 })
        .expect_err("the membership's limit is reached");
    assert_eq!(
        refused.to_string(),
        "reward `tote` is limited to 3 per member over the membership, and this member has had 3"
    );
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("a date");
    // Thursday 2026-12-31: its week began on Monday the 28th.
    let thursday = day(2026, 12, 31);
    assert_eq!(Period::Week.start(thursday), Some(day(2026, 12, 28)));
    assert_eq!(Period::Month.start(thursday), Some(day(2026, 12, 1)));
    assert_eq!(Period::Year.start(thursday), Some(day(2026, 1, 1)));
    assert_eq!(Period::Day.start(thursday), Some(thursday));
    assert_eq!(Period::Membership.start(thursday), None);
}

#[test]
fn closed_accounts_may_be_reopened_for_90_days_unless_the_rules_say() {
    let default = parse_text(MINIMAL).expect("valid");
    assert_eq!(default.accounts.reopen_within_days, 90);
    let thirty =
        parse_text(&format!("{MINIMAL}accounts:\n  reopen_within_days: 30\n")).expect("valid");
    assert_eq!(thirty.accounts.reopen_within_days, 30);
    assert_error(
        &format!("{MINIMAL}accounts:\n  reopen_within_days: 4000\n"),
        13,
        3,
        "reopen_within_days is 0 to 3660",
    );
    assert_error(
        &format!("{MINIMAL}accounts:\n  reopen_within: 30\n"),
        13,
        3,
        "unknown field `reopen_within`, expected `reopen_within_days`",
    );
}
