//! Saying what is wrong in a rules file the way its author can act on it:
//! at the line and column of the mistake itself, in words about the file
//! rather than about the parser.
//!
//! Two kinds of message need this. A script written inside the YAML
//! (`bonus: |` and the lines under it) is compiled on its own, so rhai's
//! position is within the script: [`in_script`] turns it into the file's
//! own line and column. And text that is not YAML at all reaches the
//! author in libyaml's words ("did not find expected key while parsing a
//! block mapping"), often lines after the slip that caused it:
//! [`syntax_error`] recognises the slips people make (a tab, a quote never
//! closed, a bracket never closed, a line out of step with its
//! neighbours) and names them where they are.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A mistake's place (1-based line and column) and what to say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plain {
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) message: String,
}

/// The file's own place of a script compile error that serde_yaml located
/// at the script's value (`line`, `column`, 1-based: the `|` of a block,
/// the quote or first character of a one-line script), with `message`
/// ("...script line L, column C: what") losing the script-relative part.
/// `None` when the message is not a script's, or the script is written in
/// a way whose lines do not map one to one (a folded `>` block, a quoted
/// script over several lines).
pub(super) fn in_script(text: &str, line: usize, column: usize, message: &str) -> Option<Plain> {
    const MARK: &str = "script line ";
    let start = message.find(MARK)?;
    let rest = &message[start + MARK.len()..];
    let (script_line, rest) = rest.split_once(", column ")?;
    let (script_column, what) = rest.split_once(": ")?;
    let script_line: usize = script_line.parse().ok()?;
    let script_column: usize = script_column.parse().ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let column = value_column(lines.get(line.checked_sub(1)?)?, column)?;
    let at = lines.get(line - 1)?.chars().nth(column - 1)?;
    let (file_line, file_column) = match at {
        '|' => {
            let indent = lines
                .iter()
                .skip(line)
                .find(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start_matches(' ').len())?;
            (line + script_line, indent + script_column)
        }
        '>' => return None,
        _ if script_line != 1 => return None,
        '"' | '\'' => (line, column + script_column),
        _ => (line, column + script_column - 1),
    };
    Some(Plain {
        line: file_line,
        column: file_column,
        message: format!("{}{what}", &message[..start]),
    })
}

/// The column of the value at `column` of `line`: a condition's error is
/// placed at its map (`script: ...`), whose value is after the key.
fn value_column(line: &str, column: usize) -> Option<usize> {
    let rest: String = line.chars().skip(column.checked_sub(1)?).collect();
    let Some((key, value)) = rest.split_once(':') else {
        return Some(column);
    };
    let is_key = !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !is_key || !value.starts_with(' ') || value.trim().is_empty() {
        return Some(column);
    }
    let skipped = key.chars().count() + 1 + (value.len() - value.trim_start().len());
    Some(column + skipped)
}

/// A plain account of why `text` is not YAML, at the place of the slip,
/// for the slips people make; `None` when the text parses, or fails in a
/// way not recognised here (the parser's own message is then shown).
pub(super) fn syntax_error(text: &str) -> Option<Plain> {
    let failure = Failure::of(text)?;
    let lines: Vec<&str> = text.lines().collect();
    leading_tab(&lines, failure.line + 1)
        .or_else(|| failure.unclosed_quote(&lines))
        .or_else(|| failure.unclosed_bracket())
        .or_else(|| failure.out_of_step(&lines))
}

/// Where the parser stopped, and what it had read before it did.
struct Failure {
    /// 1-based line and column of the error.
    line: usize,
    column: usize,
    /// The parser's own words.
    info: String,
    /// The scalars read, with their style and where they start and end
    /// (1-based lines and columns).
    scalars: Vec<ScalarRead>,
    /// The collections still open at the error, outermost first.
    open: Vec<Opened>,
    /// The block mapping that closed last, if the error followed it.
    closed_last: Option<Opened>,
}

struct ScalarRead {
    text: String,
    style: ScalarStyle,
    start: (usize, usize),
    end: (usize, usize),
}

#[derive(Clone)]
struct Opened {
    /// `[`, `{`, or none for a block list or mapping.
    bracket: Option<char>,
    /// 1-based line and column where it starts (its first key or dash, or
    /// its bracket).
    at: (usize, usize),
    /// A block mapping's first key.
    first_key: Option<String>,
}

impl Failure {
    fn of(text: &str) -> Option<Self> {
        let mut failure = Self {
            line: 0,
            column: 0,
            info: String::new(),
            scalars: Vec::new(),
            open: Vec::new(),
            closed_last: None,
        };
        let chars: Vec<char> = text.chars().collect();
        for event in Parser::new_from_str(text) {
            let (event, span) = match event {
                Ok(read) => read,
                Err(error) => {
                    failure.line = error.marker().line();
                    failure.column = error.marker().col() + 1;
                    failure.info = error.info().to_owned();
                    return Some(failure);
                }
            };
            let start = (span.start.line(), span.start.col() + 1);
            let bracket = chars
                .get(span.start.index())
                .copied()
                .filter(|c| matches!(c, '[' | '{'));
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    failure.closed_last = None;
                    failure.open.push(Opened {
                        bracket,
                        at: start,
                        first_key: None,
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    failure.closed_last = failure.open.pop();
                }
                Event::Scalar(value, style, ..) => {
                    failure.closed_last = None;
                    if let Some(open) = failure.open.last_mut() {
                        open.first_key.get_or_insert_with(|| value.to_string());
                    }
                    failure.scalars.push(ScalarRead {
                        text: value.to_string(),
                        style,
                        start,
                        end: (span.end.line(), span.end.col() + 1),
                    });
                }
                _ => {}
            }
        }
        None
    }

    /// A quote opened and never closed on its line: the parser either
    /// says so at the quote, or reads on to the next quote, lines later,
    /// and stumbles there.
    fn unclosed_quote(&self, lines: &[&str]) -> Option<Plain> {
        let (line, column) = if self.info.contains("quoted scalar") {
            (self.line, self.column)
        } else {
            let spanning = self.scalars.iter().rev().find(|s| {
                matches!(
                    s.style,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
                ) && s.end.0 > s.start.0
            })?;
            spanning.start
        };
        let quote = lines
            .get(line.checked_sub(1)?)?
            .chars()
            .nth(column.checked_sub(1)?)
            .filter(|c| matches!(c, '"' | '\''))?;
        Some(Plain {
            line,
            column,
            message: format!(
                "the quote opened at {line}:{column} is never closed: end the value with \
                 {quote} on the same line"
            ),
        })
    }

    /// A `[` or `{` still open where the parser gave up.
    fn unclosed_bracket(&self) -> Option<Plain> {
        let innermost = self.open.last()?;
        let bracket = innermost.bracket?;
        let (line, column) = innermost.at;
        let (what, close) = if bracket == '[' {
            ("list", ']')
        } else {
            ("map", '}')
        };
        Some(Plain {
            line,
            column,
            message: format!(
                "the {what} opened with `{bracket}` at {line}:{column} is never closed: end it \
                 with `{close}` (and separate its items with commas)"
            ),
        })
    }

    /// A line indented out of step with the lines around it, or a key with
    /// no colon, or a value with a second `: ` in it.
    fn out_of_step(&self, lines: &[&str]) -> Option<Plain> {
        let line = self.line;
        let text = lines.get(line.checked_sub(1)?)?;
        let indent = text.len() - text.trim_start_matches(' ').len();
        if self.info.contains("mapping values are not allowed") {
            return Some(
                self.deeper_than_its_key(line, indent)
                    .unwrap_or_else(|| Plain {
                        line,
                        column: self.column,
                        message: String::from(
                            "a second `: ` on this line: a value that contains `: ` must be put in \
                     quotes (\"...\")",
                        ),
                    }),
            );
        }
        if self.info.contains("expect ':'") {
            return self.key_without_colon(lines);
        }
        if self.info.contains("did not find expected key") || self.info.contains("expected '-'") {
            return Some(self.lined_up_with_nothing(line, indent));
        }
        None
    }

    /// `threshold: 5` indented under `name: Gold` reads as more of Gold's
    /// value, and the parser stumbles at the colon.
    fn deeper_than_its_key(&self, line: usize, indent: usize) -> Option<Plain> {
        let at = self.scalars.len().checked_sub(1)?;
        let value = &self.scalars[at];
        if value.style != ScalarStyle::Plain || value.end.0 <= value.start.0 {
            return None;
        }
        let key = &self.scalars[at.checked_sub(1)?];
        Some(Plain {
            line,
            column: indent + 1,
            message: format!(
                "line {line} is indented deeper than `{}` on line {}, so it reads as more of \
                 that value: line it up with `{}` (column {})",
                key.text, key.start.0, key.text, key.start.1
            ),
        })
    }

    /// A line inside a mapping with text but no `key: `.
    fn key_without_colon(&self, lines: &[&str]) -> Option<Plain> {
        // The parser notices on the line after: the culprit is the last
        // line with content before it.
        let (index, text) = lines
            .iter()
            .enumerate()
            .take(self.line.saturating_sub(1))
            .rev()
            .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
        let indent = text.len() - text.trim_start().len();
        Some(Plain {
            line: index + 1,
            column: indent + 1,
            message: format!("`{}` has no `:`; write it as `key: value`", text.trim()),
        })
    }

    /// A line whose indentation matches no mapping or list open above it.
    fn lined_up_with_nothing(&self, line: usize, indent: usize) -> Plain {
        let mut candidates: Vec<&Opened> = self.open.iter().chain(&self.closed_last).collect();
        candidates.sort_by_key(|o| std::cmp::Reverse(o.at.0));
        candidates.dedup_by_key(|o| o.at.1);
        // The two nearest levels: where the line most likely belongs.
        let choices: Vec<String> = candidates
            .iter()
            .filter(|o| o.bracket.is_none())
            .take(2)
            .map(|o| match &o.first_key {
                Some(key) => format!("`{key}` (line {}, column {})", o.at.0, o.at.1),
                None => format!("the list at line {}, column {}", o.at.0, o.at.1),
            })
            .collect();
        Plain {
            line,
            column: indent + 1,
            message: format!(
                "line {line} is indented by {indent} spaces, which lines up with nothing above \
                 it: line it up with {}",
                choices.join(" or ")
            ),
        }
    }
}

/// YAML indents with spaces only: the first line up to `until` whose
/// indentation holds a tab (the parser may stop at the end of the line
/// before it, so `until` is one past the error's line).
fn leading_tab(lines: &[&str], until: usize) -> Option<Plain> {
    lines
        .iter()
        .take(until)
        .enumerate()
        .find_map(|(index, text)| {
            let indentation = &text[..text.len() - text.trim_start().len()];
            let tab = indentation.find('\t')?;
            Some(Plain {
                line: index + 1,
                column: tab + 1,
                message: format!(
                    "YAML indents with spaces, not tabs: line {} starts with a tab; replace it \
                     with spaces",
                    index + 1
                ),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explained(text: &str) -> (usize, usize, String) {
        let plain = syntax_error(text).expect("explained");
        (plain.line, plain.column, plain.message)
    }

    #[test]
    fn a_quote_never_closed_is_named_where_it_opens() {
        let (line, column, message) = explained("a: 1\nb:\n  c: \"hello\n  d: 2\ne: x\"y: 3\n");
        assert_eq!((line, column), (3, 6), "{message}");
        assert!(
            message.contains("quote opened at 3:6 is never closed"),
            "{message}"
        );
        let (line, column, _) = explained("a: 1\nb: 'it\nc: 2\n");
        assert_eq!((line, column), (2, 4));
    }

    #[test]
    fn a_tab_is_named_on_its_line() {
        let (line, column, message) = explained("a:\n  b: 1\n\tc: 2\n");
        assert_eq!((line, column), (3, 1));
        assert!(message.contains("line 3 starts with a tab"), "{message}");
        assert_eq!(explained("a:\n\tb: 1\n").0, 2);
    }

    #[test]
    fn an_open_bracket_is_named_where_it_opens() {
        let (line, column, message) = explained("x: 0\na: [1, 2\nb: 3\n");
        assert_eq!((line, column), (2, 4), "{message}");
        assert!(message.contains("list opened with `[` at 2:4"), "{message}");
        let (_, _, message) = explained("a: {x: 1\nb: 3\n");
        assert!(message.contains("`}`"), "{message}");
    }

    #[test]
    fn a_line_out_of_step_names_what_it_should_line_up_with() {
        let (line, column, message) = explained("a:\n  b: 1\n c: 2\n");
        assert_eq!((line, column), (3, 2), "{message}");
        assert!(message.contains("`b` (line 2, column 3)"), "{message}");
        assert!(message.contains("`a` (line 1, column 1)"), "{message}");
        let (line, _, message) = explained("tiers:\n  - name: Gold\n     threshold: 5\n");
        assert_eq!(line, 3, "{message}");
        assert!(
            message.contains("deeper than `name` on line 2"),
            "{message}"
        );
        let (line, _, message) = explained("a:\n  b: 1\n  c 2\n  d: 3\n");
        assert_eq!(line, 3, "{message}");
        assert!(message.contains("`c 2` has no `:`"), "{message}");
        let (line, _, message) = explained("a: b: c\n");
        assert_eq!(line, 1);
        assert!(message.contains("must be put in quotes"), "{message}");
    }

    #[test]
    fn valid_yaml_has_nothing_to_explain() {
        assert_eq!(syntax_error("a:\n  b: \"x\"\n  c: [1, 2]\n"), None);
    }

    #[test]
    fn a_script_error_moves_to_the_file_s_own_line() {
        let text = "earning:\n  bonus: |\n    let x = 1;\n    x + chanel\n";
        let plain = in_script(
            text,
            2,
            10,
            "earning.bonus: script line 2, column 5: undefined variable `chanel`",
        )
        .expect("located");
        assert_eq!((plain.line, plain.column), (4, 9));
        assert_eq!(plain.message, "earning.bonus: undefined variable `chanel`");
        let text = "earning:\n  bonus: 'x + chanel'\n";
        let plain = in_script(text, 2, 10, "bonus: script line 1, column 5: no").expect("quoted");
        assert_eq!((plain.line, plain.column), (2, 15));
        assert_eq!(in_script(text, 2, 10, "no script here"), None);
        // A condition's error is placed at its map, before the key.
        let plain = in_script(text, 2, 3, "bonus: script line 1, column 5: no").expect("keyed");
        assert_eq!((plain.line, plain.column), (2, 15));
    }
}
