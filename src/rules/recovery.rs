//! Reporting every problem of a rules file in one run, not one per run.
//!
//! serde stops at the first error. To go on, the loader blanks the entry the
//! error is in (the `key: value` pair, or the list item) with spaces, which
//! keeps every other line and column where it was, and reads the text again,
//! until it reads cleanly. A marketer fixing a file then sees all of its
//! mistakes at once, each at its own line and column.
//!
//! Blanking must not invent problems. An entry that was the last one left in
//! its map or list takes its parent entry with it (an empty condition or
//! list would be a new error), and a "missing field" for a key that was
//! blanked is a follow-on, never reported: the entry holding it is blanked
//! in turn.
//!
//! Two limits, both shown on the next run once the rest is fixed: text
//! that is not YAML at all (an unclosed quote, a tab as indentation) stops
//! at that first problem, since there are no entries to go on with; and a
//! required key that is missing from a map in which another key was
//! blanked is taken for a follow-on.
//!
//! Where entries are comes from a second, span-keeping YAML parser
//! (saphyr-parser): serde_yaml reports where an error is, but not where the
//! entries around it begin and end.

use std::ops::Range;

use saphyr_parser::{Event, Parser, Span};

use super::Diagnostic;

/// Most re-reads of one file: far above any real file's count of mistakes,
/// and a bound on the work a pathological one can cause.
const MAX_ROUNDS: usize = 200;

/// Deepest nesting outlined; serde_yaml refuses deeper documents anyway
/// (at 128), and the walk is recursive, so this bounds its stack.
const MAX_DEPTH: usize = 256;

/// Reads `text` with `read`; when it fails, reports the error, blanks the
/// entry at fault and reads again. `report` turns an error into the
/// diagnostic shown (it may know better where the problem is, e.g. inside a
/// script file).
///
/// # Errors
/// Every problem found, in the order found (which is the file's order).
pub(super) fn read_reporting_all<T>(
    text: &str,
    mut read: impl FnMut(&str) -> Result<T, serde_yaml::Error>,
    mut report: impl FnMut(&serde_yaml::Error) -> Diagnostic,
) -> Result<T, Vec<Diagnostic>> {
    let mut error = match read(text) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let Some(outline) = Outline::of(text) else {
        // Not even valid YAML: nothing to go on from, and the parser's
        // words are put plainly where possible.
        let mut diagnostic = report(&error);
        if let Some(plain) = super::plain::syntax_error(text) {
            diagnostic.line = plain.line;
            diagnostic.column = plain.column;
            diagnostic.message = plain.message;
        }
        return Err(vec![diagnostic]);
    };
    let mut patched = outline.chars.clone();
    let mut blanked = vec![false; outline.entries.len()];
    let mut found = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let message = error.to_string();
        let at = error
            .location()
            .and_then(|l| outline.offset(l.line(), l.column().saturating_sub(1)));
        let follow_on = at.is_some_and(|at| outline.is_follow_on(at, &message, &blanked));
        if !follow_on {
            found.push(report(&error));
        }
        let Some(entry) = at.and_then(|at| outline.entry_at_fault(at, &message, &blanked)) else {
            break;
        };
        outline.blank(entry, &mut blanked, &mut patched);
        match read(&patched.iter().collect::<String>()) {
            Ok(_) => break,
            Err(next) => error = next,
        }
    }
    Err(found)
}

/// One entry of a map (`key: value`) or list (`- item`), in char offsets.
#[derive(Debug)]
struct Entry {
    /// The whole entry: key or dash to the end of the value, and the comma
    /// after it in a flow collection.
    span: Range<usize>,
    /// The key of a map entry, with its text.
    key: Option<(Range<usize>, String)>,
    /// The map or list holding the entry.
    parent: Range<usize>,
    /// The entry whose value is that map or list (`None` at the top).
    holder: Option<usize>,
}

/// Where every entry of a YAML document is.
struct Outline {
    entries: Vec<Entry>,
    /// Char offset of each line's first char.
    line_starts: Vec<usize>,
    chars: Vec<char>,
}

impl Outline {
    /// `None` when the text is not YAML (the scanner error is then the only
    /// thing worth reporting).
    fn of(text: &str) -> Option<Self> {
        let chars: Vec<char> = text.chars().collect();
        let mut line_starts = vec![0];
        line_starts.extend(
            chars
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == '\n')
                .map(|(i, _)| i + 1),
        );
        let mut events = Vec::new();
        for event in Parser::new_from_str(text) {
            events.push(event.ok()?);
        }
        let mut outline = Self {
            entries: Vec::new(),
            line_starts,
            chars,
        };
        let mut cursor = Cursor { events, next: 0 };
        while let Some((event, _)) = cursor.peek() {
            match event {
                Event::StreamStart | Event::DocumentStart(_) | Event::DocumentEnd => cursor.skip(),
                Event::StreamEnd => break,
                _ => {
                    outline.node(&mut cursor, 0)?;
                }
            }
        }
        Some(outline)
    }

    /// Char offset of a 1-based line and 0-based column.
    fn offset(&self, line: usize, column: usize) -> Option<usize> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        Some(start + column)
    }

    fn at(&self, span: &Span, end: bool) -> usize {
        let marker = if end { span.end } else { span.start };
        self.offset(marker.line(), marker.col())
            .unwrap_or(self.chars.len())
    }

    /// Reads one node, recording the entries inside it; returns its range
    /// and, for a map or list, its own entries. `None` past [`MAX_DEPTH`].
    fn node(&mut self, cursor: &mut Cursor<'_>, depth: usize) -> Option<Node> {
        let (event, span) = cursor.take()?;
        let start = self.at(&span, false);
        let flow = !span.is_empty();
        let nested = Nesting {
            start,
            flow,
            depth: depth + 1,
        };
        if nested.depth > MAX_DEPTH {
            return None;
        }
        match event {
            Event::MappingStart(..) => self.collection(cursor, nested, true),
            Event::SequenceStart(..) => self.collection(cursor, nested, false),
            _ => Some((start..self.at(&span, true), Vec::new())),
        }
    }

    fn collection(
        &mut self,
        cursor: &mut Cursor<'_>,
        nesting: Nesting,
        is_map: bool,
    ) -> Option<Node> {
        let Nesting { start, flow, depth } = nesting;
        let mut children: Vec<usize> = Vec::new();
        loop {
            if let Some((Event::MappingEnd | Event::SequenceEnd, span)) = cursor.peek() {
                let end = self.at(span, true);
                cursor.skip();
                let range = start..end.max(start);
                for &child in &children {
                    self.entries[child].parent = range.clone();
                }
                return Some((range, children));
            }
            let key = if is_map {
                let text = match cursor.peek() {
                    Some((Event::Scalar(text, ..), _)) => text.to_string(),
                    _ => String::new(),
                };
                Some((self.node(cursor, depth)?.0, text))
            } else {
                None
            };
            let (value, inside) = self.node(cursor, depth)?;
            let begin = match &key {
                Some((range, _)) => range.start,
                None if flow => value.start,
                None => self.dash_before(value.start),
            };
            let end = if flow {
                self.comma_after(value.end)
            } else {
                value.end
            };
            let index = self.entries.len();
            self.entries.push(Entry {
                span: begin..end.max(begin),
                key,
                parent: start..start,
                holder: None,
            });
            for child in inside {
                self.entries[child].holder = Some(index);
            }
            children.push(index);
        }
    }

    /// The `-` introducing a block list item that starts at `item`.
    fn dash_before(&self, item: usize) -> usize {
        let mut at = item.min(self.chars.len());
        while at > 0 && self.chars[at - 1].is_whitespace() {
            at -= 1;
        }
        if at > 0 && self.chars[at - 1] == '-' {
            at - 1
        } else {
            item
        }
    }

    /// Just past the `,` that follows a flow entry ending at `end`, if any.
    fn comma_after(&self, end: usize) -> usize {
        let mut at = end;
        while self.chars.get(at).is_some_and(|c| c.is_whitespace()) {
            at += 1;
        }
        if self.chars.get(at) == Some(&',') {
            at + 1
        } else {
            end
        }
    }

    /// True when the error at `at` is only the consequence of earlier
    /// blanking: it sits inside blanked text, or it is the "missing field"
    /// of a key that was blanked from the map around it (or misspelt there:
    /// the "did you mean" already said it).
    fn is_follow_on(&self, at: usize, message: &str, blanked: &[bool]) -> bool {
        let missing = missing_field(message);
        self.blanked(blanked).any(|entry| {
            contains(&entry.span, at)
                || missing.is_some_and(|field| {
                    contains(&entry.parent, at)
                        && entry
                            .key
                            .as_ref()
                            .is_some_and(|(_, key)| same_key(key, field))
                })
        })
    }

    /// The entry to blank for an error at `at`: the entry of the unknown
    /// key, else the innermost entry whose value holds the error.
    fn entry_at_fault(&self, at: usize, message: &str, blanked: &[bool]) -> Option<usize> {
        let open = |i: &usize| !blanked[*i];
        if message.contains("unknown field `") {
            let of_key = (0..self.entries.len()).filter(open).find(|&i| {
                let key = self.entries[i].key.as_ref();
                key.is_some_and(|(range, _)| range.start == at)
            });
            if of_key.is_some() {
                return of_key;
            }
        }
        (0..self.entries.len())
            .filter(open)
            .filter(|&i| {
                let entry = &self.entries[i];
                let in_key = entry
                    .key
                    .as_ref()
                    .is_some_and(|(range, _)| contains(range, at));
                contains(&entry.span, at) && !in_key
            })
            .min_by_key(|&i| self.entries[i].span.len())
    }

    /// Blanks an entry; when it was the last one left in its map or list,
    /// blanks the entry holding that map or list instead.
    fn blank(&self, entry: usize, blanked: &mut [bool], text: &mut [char]) {
        let mut target = entry;
        loop {
            let parent = &self.entries[target].parent;
            let siblings_left = (0..self.entries.len())
                .any(|i| i != target && !blanked[i] && self.entries[i].parent == *parent);
            match self.entries[target].holder {
                Some(holder) if !siblings_left => {
                    blanked[target] = true;
                    target = holder;
                }
                _ => break,
            }
        }
        let span = &self.entries[target].span;
        let end = span.end.min(text.len());
        for c in &mut text[span.start.min(end)..end] {
            if *c != '\n' && *c != '\r' {
                *c = ' ';
            }
        }
        blanked[target] = true;
    }

    /// The entries blanked so far.
    fn blanked<'a>(&'a self, blanked: &'a [bool]) -> impl Iterator<Item = &'a Entry> {
        self.entries
            .iter()
            .zip(blanked)
            .filter_map(|(entry, done)| done.then_some(entry))
    }
}

/// The blanked key `key` accounts for the missing `field`.
fn same_key(key: &str, field: &str) -> bool {
    key == field || !super::did_you_mean(key, &[field]).is_empty()
}

fn contains(range: &Range<usize>, at: usize) -> bool {
    range.contains(&at) || range.start == at
}

/// `K` of serde's "missing field `K`".
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.split("missing field `").nth(1)?;
    rest.split('`').next()
}

/// A node's range, and the entries of the map or list it is (none for a
/// scalar).
type Node = (Range<usize>, Vec<usize>);

/// Where a collection starts, how it is written, how deep it sits.
#[derive(Clone, Copy)]
struct Nesting {
    start: usize,
    flow: bool,
    depth: usize,
}

/// The parsed events, walked once.
struct Cursor<'input> {
    events: Vec<(Event<'input>, Span)>,
    next: usize,
}

impl<'input> Cursor<'input> {
    fn peek(&self) -> Option<&(Event<'input>, Span)> {
        self.events.get(self.next)
    }

    fn take(&mut self) -> Option<(Event<'input>, Span)> {
        let event = self.events.get(self.next).cloned();
        self.next += 1;
        event
    }

    fn skip(&mut self) {
        self.next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        items: Vec<Item>,
        #[serde(default)]
        limits: Option<Limits>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: String,
        size: u32,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        low: u32,
        #[serde(default)]
        high: Option<u32>,
    }

    fn problems(text: &str) -> Vec<(usize, usize, String)> {
        let report = |e: &serde_yaml::Error| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            Diagnostic {
                file: "t.yaml".into(),
                line,
                column,
                severity: super::super::Severity::Error,
                message: e.to_string(),
            }
        };
        match read_reporting_all(text, |t| serde_yaml::from_str::<Doc>(t), report) {
            Ok(_) => Vec::new(),
            Err(found) => found
                .into_iter()
                .map(|d| (d.line, d.column, d.message))
                .collect(),
        }
    }

    #[test]
    fn every_mistake_is_reported_once_at_its_place() {
        let text = "\
name: n
colour: red
items:
  - id: a
    size: -1
  - id: b
    size: 2
    sizee: 3
  - {id: c, size: x}
limits:
  low: many
";
        let found = problems(text);
        let places: Vec<(usize, usize)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(
            places,
            [(2, 1), (5, 11), (8, 5), (9, 19), (11, 8)],
            "{found:#?}"
        );
        assert!(found[0].2.contains("unknown field `colour`"), "{found:#?}");
        assert!(found[2].2.contains("unknown field `sizee`"), "{found:#?}");
    }

    #[test]
    fn a_missing_field_is_reported_but_blanking_invents_none() {
        // `size` of the only item is wrong: blanking it must not also report
        // "missing field `size`", nor an empty list.
        let found = problems("name: n\nitems:\n  - id: a\n    size: big\n");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!((found[0].0, found[0].1), (4, 11));
        let found = problems("name: n\nitems:\n  - id: a\n");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].2.contains("missing field `size`"), "{found:#?}");
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        // Block lists nest without a limit in the outline parser.
        let deep = format!("name: n\nitems: []\nlimits:\n  {}x\n", "- ".repeat(30_000));
        let found = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || problems(&deep))
            .expect("thread")
            .join()
            .expect("no stack overflow");
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn a_valid_document_reads_and_broken_yaml_reports_once() {
        assert!(problems("name: n\nitems: []\n").is_empty());
        let found = problems("name: [n\nitems: {\n");
        assert_eq!(found.len(), 1, "{found:#?}");
    }
}
