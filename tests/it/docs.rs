//! The transcripts in the README and `docs/` are run as written, and what
//! they print must be what the page shows: a ```` ```console ```` block is
//! `$ command` lines, each followed by its output. In the output a line
//! `...` stands for any number of lines and `[..]` for any text within a
//! line (a duration, say). Each document's block gets the state its prose
//! describes (a draft edited as the text says, a seeded programme, a
//! running service), made here before the block runs.

use std::{path::Path, process::Command};

use chrono::{DateTime, Utc};
use tempfile::TempDir;

use crate::{harness::TestServer, process::tierd};

/// The day the documented programmes have reached.
fn documented_day() -> DateTime<Utc> {
    "2026-11-24T00:00:00Z".parse().expect("a time")
}

/// One `$ command` and the output the page shows for it.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The console blocks of `markdown`, each a list of steps, indentation
/// (a block inside a list item) removed.
fn console_blocks(markdown: &str) -> Vec<Vec<Step>> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(indent) = line.find("```console") else {
            continue;
        };
        let mut steps: Vec<Step> = Vec::new();
        for line in lines.by_ref() {
            let line = line.get(indent..).unwrap_or("").trim_end();
            if line.starts_with("```") {
                break;
            }
            match line.strip_prefix("$ ") {
                Some(command) => steps.push(Step {
                    command: command.to_owned(),
                    expected: Vec::new(),
                }),
                None => steps
                    .last_mut()
                    .expect("a console block starts with a command")
                    .expected
                    .push(line.to_owned()),
            }
        }
        blocks.push(steps);
    }
    blocks
}

/// Whether `actual` is what `expected` shows, `...` and `[..]` included.
fn shows(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| shows(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, after)| line_shows(first, line) && shows(rest, after)),
    }
}

fn line_shows(expected: &str, actual: &str) -> bool {
    let mut pieces = expected.split("[..]");
    let Some(head) = pieces.next() else {
        return actual.is_empty();
    };
    let Some(mut rest) = actual.strip_prefix(head) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    for (i, piece) in pieces.iter().enumerate() {
        if i + 1 == pieces.len() {
            return rest.ends_with(piece);
        }
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The program a documented command runs: `tierd`, or an example as
/// `cargo run [--release] --example NAME -- ARGS` names it (built by
/// `cargo test`, beside the binary).
fn program_of(command: &str) -> Command {
    let words: Vec<&str> = command.split_whitespace().collect();
    match words.split_first() {
        Some((&"tierd", args)) => {
            let mut program = tierd();
            program.args(args);
            program
        }
        Some((&"cargo", args)) => {
            let name = args
                .iter()
                .skip_while(|w| **w != "--example")
                .nth(1)
                .expect("cargo run --example NAME");
            let examples = Path::new(env!("CARGO_BIN_EXE_tierd"))
                .parent()
                .expect("target dir")
                .join("examples");
            let binary = examples.join(name);
            assert!(
                binary.is_file(),
                "{} is not built: `cargo test` builds the examples",
                binary.display()
            );
            let mut program = Command::new(binary);
            program.args(args.iter().skip_while(|w| **w != "--").skip(1));
            program
        }
        _ => panic!("a documented command runs tierd or cargo: {command}"),
    }
}

/// Runs every step of `block` in `dir`, with `address` in place of the
/// documented one, and checks what each prints.
fn run_block(document: &str, block: &[Step], dir: &Path, address: Option<&str>) {
    for step in block {
        let command = match address {
            Some(address) => step.command.replace("127.0.0.1:50051", address),
            None => step.command.clone(),
        };
        let output = program_of(&command)
            .current_dir(dir)
            .output()
            .expect("the command runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = printed.lines().map(str::trim_end).collect();
        assert!(
            shows(&step.expected, &lines),
            "{document}: `$ {}` printed\n{printed}\nwhere the page shows\n{}\n(stderr: {})",
            step.command,
            step.expected.join("\n"),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn read(document: &str) -> Vec<Vec<Step>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(document);
    console_blocks(&std::fs::read_to_string(path).expect("the document"))
}

#[test]
fn the_readme_walkthrough_prints_what_it_shows() {
    let blocks = read("README.md");
    let [till] = blocks.as_slice() else {
        panic!("one transcript in the README: {blocks:?}");
    };
    // The service as step 1 starts it: the binary, on the example rules
    // and the machine's clock (the till dates its sales today).
    let dir = TempDir::new().expect("temp dir");
    let served =
        crate::process::serve_rules(&dir.path().join("data"), &crate::harness::example_rules());
    let address = served.address.clone();
    run_block("README.md", till, dir.path(), Some(&address));
    assert!(crate::process::terminate(served).success());
}

/// docs/rules.md's worked example: a draft with Silver at 400 points, the
/// same draft with a typo, its tests, and a simulation over a copy of a
/// running service's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_worked_example_prints_what_it_shows() {
    let blocks = read("docs/rules.md");
    let [check, typo, test, simulate] = blocks.as_slice() else {
        panic!("four transcripts in docs/rules.md: {blocks:?}");
    };
    let dir = TempDir::new().expect("temp dir");
    let drafts = dir.path().join("drafts");
    std::fs::create_dir(&drafts).expect("drafts");
    let example = std::fs::read_to_string(crate::harness::example_rules()).expect("rules");
    let draft = example
        .replacen("version: \"2026.1\"", "version: \"2026.2\"", 1)
        .replacen(
            "        - qualifying_points: 500",
            "        - qualifying_points: 400       # was 500",
            1,
        );
    let tests =
        std::fs::read_to_string(crate::harness::example_rules().with_extension("test.yaml"))
            .expect("tests")
            + "\n  - name: from 2026.2, 400 points in the year make silver\n    \
           metrics: { qualifying_points: 400 }\n    expect_tier: silver\n";
    let write = |text: &str| std::fs::write(drafts.join("example.yaml"), text).expect("draft");
    std::fs::write(drafts.join("example.test.yaml"), tests).expect("tests");
    let run = |block: &[Step], address: Option<&str>| {
        tokio::task::block_in_place(|| run_block("docs/rules.md", block, dir.path(), address));
    };
    write(&draft);
    run(check, None);
    write(&draft.replacen("- qualifying_points: 400", "- qualifying_point: 400", 1));
    run(typo, None);
    write(&draft);
    run(test, None);
    let data = dir.path().join("seeded");
    crate::harness::seeded(&data, 2000, 42, documented_day()).await;
    let server =
        TestServer::on_copy_of(&data, crate::harness::example_rules(), documented_day()).await;
    run(simulate, Some(&server.address.to_string()));
}

/// docs/reports.md's worked example, from the seeding on.
#[test]
fn the_reports_worked_example_prints_what_it_shows() {
    let blocks = read("docs/reports.md");
    let [example] = blocks.as_slice() else {
        panic!("one transcript in docs/reports.md: {blocks:?}");
    };
    let dir = TempDir::new().expect("temp dir");
    // Run, as the page is, from a checkout: the seeding tool reads
    // `rules/example.yaml`.
    std::fs::create_dir(dir.path().join("rules")).expect("rules dir");
    std::fs::copy(
        crate::harness::example_rules(),
        dir.path().join("rules/example.yaml"),
    )
    .expect("rules copy");
    run_block("docs/reports.md", example, dir.path(), None);
}

#[test]
fn the_checker_matches_elisions_and_nothing_else() {
    let expected: Vec<String> = ["a", "...", "took [..] s", "z"].map(str::to_owned).to_vec();
    assert!(shows(&expected, &["a", "b", "c", "took 1.5 s", "z"]));
    assert!(shows(&expected, &["a", "took 2 s", "z"]));
    assert!(!shows(&expected, &["a", "took 2 s", "y"]));
    assert!(!shows(&expected, &["a", "took 2 m", "z"]));
    assert!(!shows(&expected, &["a", "took 2 s", "z", "more"]));
}
