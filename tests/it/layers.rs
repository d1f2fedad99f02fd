//! The layering that `src/lib.rs` describes, enforced: every `crate::`
//! path in a module points to its own layer or one below, and the domain
//! uses none of tokio, sled, tonic or postcard.

use std::path::{Path, PathBuf};

/// The top-level modules, lowest layer first; modules on one line share a
/// layer.
const LAYERS: &[&[&str]] = &[
    &["money", "digest", "script", "telemetry"],
    &["rules"],
    &["domain"],
    &["store"],
    &["tools", "report"],
    &["app"],
    &["grpc", "webhook"],
    &["config"],
    &["cli"],
];

/// What the pure domain never names.
const NOT_IN_DOMAIN: &[&str] = &["tokio", "sled", "tonic", "postcard"];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every Rust file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

/// The top-level modules a source text names through `crate::`, including
/// every name inside `use crate::{a::x, b}`.
fn crate_modules(text: &str) -> Vec<String> {
    let mut modules = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        modules.push(identifier(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            modules.push(identifier(rest));
        }
    }
    modules
}

/// The text without its comment lines: a doc comment may mention a
/// higher layer; only code depends on one.
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn the_checker_reads_paths_and_use_groups() {
    let text = "use crate::{\n    domain::{apply, member::X},\n    rules::RuleSet,\n};\nlet x = crate::app::Program::new();";
    assert_eq!(crate_modules(text), ["domain", "rules", "app"]);
}

#[test]
fn every_module_depends_only_on_its_own_layer_or_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut upward = Vec::new();
    for file in sources(&src) {
        let relative = file.strip_prefix(&src).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|name| name.trim_end_matches(".rs").to_owned())
            .expect("a name");
        if top == "lib" || top == "main" {
            continue;
        }
        let own = layer(&top).unwrap_or_else(|| panic!("{top} is in no layer: add it to LAYERS"));
        let text = code_of(&std::fs::read_to_string(&file).expect("read"));
        for used in crate_modules(&text) {
            let Some(theirs) = layer(&used) else { continue };
            if theirs > own {
                upward.push(format!("{} uses crate::{used}", relative.display()));
            }
        }
        if top == "domain" {
            for name in NOT_IN_DOMAIN {
                if text.contains(&format!("{name}::")) {
                    upward.push(format!("{} names {name}", relative.display()));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "dependencies pointing up:\n{}",
        upward.join("\n")
    );
}
