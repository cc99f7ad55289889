//! Parsing one large schedule file on several threads.
//!
//! Nearly all of a large schedule file is the value of its top-level
//! `schedules:` key. [`parse_parallel`] cuts that mapping at lines that start
//! one of its keys, parses the pieces on threads (each as a document of its
//! own, positions offset by the lines before it, nesting limits by the two
//! levels around it), and joins the trees. The result is the tree [`parse`]
//! gives. Whenever a piece reports anything (an error, a merge key at its
//! top, an alias whose anchor is in another piece) or two pieces share a key,
//! the whole text is parsed again by [`parse`]: errors are always the serial
//! parser's, in its order and at its positions.

use super::build::{Builder, MAX_ALIAS_NODES};
use super::keys::{KeyIndex, same_key};
use super::{Node, Value, YamlError, parse};

/// Below this size a document is parsed on one thread.
pub const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// Parses like [`parse`], on up to `threads` threads for a large document
/// shaped like a schedule file.
pub fn parse_parallel(text: &str, threads: usize) -> Result<Option<Node>, Vec<YamlError>> {
    parse_with(text, threads, PARALLEL_MIN_BYTES)
}

fn parse_with(
    text: &str,
    threads: usize,
    min_bytes: usize,
) -> Result<Option<Node>, Vec<YamlError>> {
    if threads > 1
        && text.len() >= min_bytes
        && let Some(root) = parse_split(text, threads)
    {
        return Ok(Some(root));
    }
    parse(text)
}

/// The joined tree, or `None` when the text must be parsed serially.
pub(super) fn parse_split(text: &str, parts: usize) -> Option<Node> {
    let plan = Plan::find(text, parts)?;
    let body = plan.body_pieces();
    let (header, tail, pieces) = std::thread::scope(|s| {
        let handles: Vec<_> = body[1..]
            .iter()
            .map(|&(start, end, lines)| s.spawn(move || Piece::parse(&text[start..end], lines, 2)))
            .collect();
        let (start, end, lines) = body[0];
        let first = Piece::parse(&text[start..end], lines, 2);
        let header = Piece::parse(&text[..plan.body_start], 0, 0);
        let tail =
            (plan.tail.0 < text.len()).then(|| Piece::parse(&text[plan.tail.0..], plan.tail.1, 0));
        let mut pieces = vec![first];
        for h in handles {
            pieces.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        (header, tail, pieces)
    });
    join(&plan, header, tail, pieces)
}

/// One piece's tree and what the join needs to know about it.
struct Piece {
    root: Option<Node>,
    keys: Option<KeyIndex>,
    alias_nodes: usize,
    /// No errors and no merge key in the root mapping.
    clean: bool,
}

/// A piece's root mapping: the node, its entries and its key index.
type RootMap = (Node, Vec<(Node, Node)>, KeyIndex);

impl Piece {
    fn parse(text: &str, line_offset: usize, base_depth: usize) -> Piece {
        let mut b = Builder::piece(text, line_offset, base_depth);
        b.run();
        Piece {
            clean: b.errors.is_empty() && !b.root_merge,
            root: b.root,
            keys: b.root_keys,
            alias_nodes: b.alias_nodes,
        }
    }

    /// The root mapping's entries and key index, if the piece is clean and a mapping.
    fn map(self) -> Option<RootMap> {
        if !self.clean {
            return None;
        }
        let Node {
            value: Value::Map(entries),
            pos,
        } = self.root?
        else {
            return None;
        };
        Some((
            Node {
                value: Value::Null,
                pos,
            },
            entries,
            self.keys?,
        ))
    }
}

/// Header and tail keys compared pairwise at most this often (they are few).
const MAX_TOP_LEVEL_COMPARISONS: usize = 100_000;

fn join(plan: &Plan, header: Piece, tail: Option<Piece>, pieces: Vec<Piece>) -> Option<Node> {
    let alias_nodes = header.alias_nodes
        + tail.as_ref().map_or(0, |t| t.alias_nodes)
        + pieces.iter().map(|p| p.alias_nodes).sum::<usize>();
    if alias_nodes > MAX_ALIAS_NODES {
        return None;
    }
    let (root, mut top, _) = header.map()?;
    // The header ends with `schedules:` and no value.
    match top.last() {
        Some((k, v))
            if k.as_str() == Some("schedules")
                && k.pos.line == plan.key_line
                && k.pos.col == 1
                && v.value == Value::Null => {}
        _ => return None,
    }
    let mut maps = Vec::with_capacity(pieces.len());
    for p in pieces {
        maps.push(p.map()?);
    }
    // Keys repeated across pieces: the serial parser reports them.
    for (i, (_, entries, _)) in maps.iter().enumerate().skip(1) {
        for (k, _) in entries {
            if maps[..i]
                .iter()
                .any(|(_, e, keys)| keys.find(e, &k.value).is_some())
            {
                return None;
            }
        }
    }
    let schedules_pos = maps[0].0.pos;
    let total = maps.iter().map(|(_, e, _)| e.len()).sum();
    let mut schedules = Vec::with_capacity(total);
    for (_, entries, _) in maps {
        schedules.extend(entries);
    }
    if let Some(tail) = tail {
        let (_, entries, _) = tail.map()?;
        if entries.len().saturating_mul(top.len()) > MAX_TOP_LEVEL_COMPARISONS {
            return None;
        }
        for (k, _) in &entries {
            if top.iter().any(|(t, _)| same_key(&t.value, &k.value)) {
                return None;
            }
        }
        let at = top.len() - 1;
        top[at].1 = Node {
            value: Value::Map(schedules),
            pos: schedules_pos,
        };
        top.extend(entries);
    } else {
        let at = top.len() - 1;
        top[at].1 = Node {
            value: Value::Map(schedules),
            pos: schedules_pos,
        };
    }
    Some(Node {
        value: Value::Map(top),
        pos: root.pos,
    })
}

/// Where the text is cut.
#[derive(Debug, PartialEq)]
struct Plan {
    /// The 1-based line of `schedules:`.
    key_line: usize,
    /// Byte offset of the line after `schedules:`.
    body_start: usize,
    /// Byte offsets and lines before them of the cuts inside the mapping.
    cuts: Vec<(usize, usize)>,
    /// Byte offset and lines before it of the first top-level line after
    /// the mapping (the text's length if there is none).
    tail: (usize, usize),
}

/// A line may start with this byte where a cut puts it at the start of a piece.
fn key_start(b: u8) -> bool {
    !matches!(
        b,
        b' ' | b'\t'
            | b'\r'
            | b'\n'
            | b'#'
            | b'-'
            | b'?'
            | b':'
            | b'{'
            | b'}'
            | b'['
            | b']'
            | b','
            | b'|'
            | b'>'
            | b'!'
            | b'&'
            | b'*'
            | b'%'
            | b'@'
            | b'`'
            | b'.'
    )
}

/// Nothing but blanks and maybe a comment.
fn blank_or_comment(rest: &str) -> bool {
    let t = rest.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

impl Plan {
    /// Where to cut `text` into about `parts` pieces, or `None` if it is not shaped like a
    /// schedule file that can be cut.
    fn find(text: &str, parts: usize) -> Option<Plan> {
        if has_lone_cr(text) {
            return None;
        }
        let (body_start, key_line) = schedules_key(text)?;
        let indent = body_indent(text, body_start)?;
        let tail = mapping_end(text, body_start, key_line);
        if tail.0 < text.len() && !key_start(text.as_bytes()[tail.0]) {
            return None;
        }
        let cuts = cuts(text, parts, (body_start, key_line), indent, tail.0);
        if cuts.is_empty() {
            return None;
        }
        Some(Plan {
            key_line,
            body_start,
            cuts,
            tail,
        })
    }

    /// `(start, end, lines before start)` of each piece of the mapping.
    fn body_pieces(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::with_capacity(self.cuts.len() + 1);
        let mut start = (self.body_start, self.key_line);
        for &cut in &self.cuts {
            out.push((start.0, cut.0, start.1));
            start = cut;
        }
        out.push((start.0, self.tail.0, start.1));
        out
    }
}

/// A lone carriage return breaks lines too; the plan keeps to `\n` and `\r\n`.
fn has_lone_cr(text: &str) -> bool {
    text.contains('\r')
        && text
            .match_indices('\r')
            .any(|(i, _)| text.as_bytes().get(i + 1) != Some(&b'\n'))
}

/// The byte offset of the `\n` that ends the line starting at `from`.
fn line_end(text: &str, from: usize) -> Option<usize> {
    text[from..].find('\n').map(|i| from + i)
}

/// The line from `from` to `end`, without its `\r`.
fn line_at(text: &str, from: usize, end: usize) -> &str {
    text[from..end].trim_end_matches('\r')
}

/// `schedules:` at the start of a line, with no value on that line: the byte offset of the
/// next line and the 1-based line of the key.
fn schedules_key(text: &str) -> Option<(usize, usize)> {
    let (mut at, mut line) = (0, 1);
    loop {
        let end = line_end(text, at)?;
        if let Some(rest) = line_at(text, at, end).strip_prefix("schedules:")
            && (rest.is_empty() || (rest.starts_with([' ', '\t']) && blank_or_comment(rest)))
        {
            return Some((end + 1, line));
        }
        at = end + 1;
        line += 1;
    }
}

/// The mapping's indentation: that of its first line with content, which must start a key.
fn body_indent(text: &str, body_start: usize) -> Option<usize> {
    let mut at = body_start;
    loop {
        let end = line_end(text, at).unwrap_or(text.len());
        let l = line_at(text, at, end);
        let spaces = l.bytes().take_while(|&b| b == b' ').count();
        if !blank_or_comment(&l[spaces..]) {
            if spaces == 0 || !key_start(l.as_bytes()[spaces]) {
                return None;
            }
            return Some(spaces);
        }
        if end >= text.len() {
            return None;
        }
        at = end + 1;
    }
}

/// The byte offset and lines before it of the first line after `body_start` that starts
/// with content, where the mapping ends (the text's length and 0 if there is none).
fn mapping_end(text: &str, body_start: usize, key_line: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut lines = key_line;
    for (i, &b) in bytes.iter().enumerate().skip(body_start) {
        if b == b'\n' {
            lines += 1;
            if let Some(&next) = bytes.get(i + 1)
                && !matches!(next, b' ' | b'\n' | b'\r' | b'#')
            {
                return (i + 1, lines);
            }
        }
    }
    (text.len(), 0)
}

/// The cuts: the first line at `indent` that starts a key after each 1/parts of the mapping
/// from `body` (byte offset and lines before it) to `end`.
fn cuts(
    text: &str,
    parts: usize,
    body: (usize, usize),
    indent: usize,
    end: usize,
) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let (body_start, key_line) = body;
    let span = end - body_start;
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let (mut from, mut from_lines) = (body_start, key_line);
    for k in 1..parts {
        let target = body_start + span / parts * k;
        if target <= from {
            continue;
        }
        // The start of the line after the target.
        let Some(nl) = line_end(text, target) else {
            break;
        };
        from_lines += bytes[from..nl].iter().filter(|&&b| b == b'\n').count();
        let Some(cut) = next_key_line(text, (nl + 1, from_lines + 1), indent, end) else {
            break;
        };
        cuts.push(cut);
        (from, from_lines) = cut;
    }
    cuts
}

/// The first line from `at` (byte offset and lines before it) on, before `end`, that starts
/// a key at `indent`.
fn next_key_line(
    text: &str,
    (mut at, mut at_lines): (usize, usize),
    indent: usize,
    end: usize,
) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    while at < end {
        let l = &bytes[at..];
        if l.len() > indent && l[..indent].iter().all(|&b| b == b' ') && key_start(l[indent]) {
            return Some((at, at_lines));
        }
        at = line_end(text, at)? + 1;
        at_lines += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schedule file with most YAML forms inside `schedules`, and keys after it.
    fn document(entries: usize, crlf: bool) -> String {
        let mut t = String::from(
            "# a file\ntimezone: Europe/Berlin\ndefaults:\n  queue: q\nschedules:\n\n  # first\n",
        );
        for i in 0..entries {
            t.push_str(&match i % 6 {
                0 => format!("  job-{i}:\n    task: app.t\n    cron: '{i} * * * *'\n"),
                1 => format!("  job-{i}: {{task: app.t, every: {i}s, args: [1, \"x\"]}}\n"),
                2 => format!(
                    "  \"job-{i}\":\n    task: app.t\n    description: |\n      line one\n\n      line {i}\n    every: 1m\n"
                ),
                3 => format!(
                    "  job-{i}:   # note\n    task: app.t\n    kwargs:\n      a: &x{i} [1, 2]\n      b: *x{i}\n    args:\n    - {i}\n    - - nested\n"
                ),
                4 => format!("# between\n  job-{i}:\n\n    task: app.t\n    every: 0x1F\n"),
                _ => format!("  {i}:\n    task: app.t\n    solar: {{event: sunrise, lat: 1.5, lon: -2}}\n"),
            });
        }
        t.push_str("routes:\n  'app.*': q2\n");
        if crlf { t.replace('\n', "\r\n") } else { t }
    }

    #[test]
    fn the_joined_tree_is_the_serial_tree() {
        for crlf in [false, true] {
            let text = document(60, crlf);
            let serial = parse(&text).unwrap().unwrap();
            for parts in 2..=7 {
                let joined =
                    parse_split(&text, parts).unwrap_or_else(|| panic!("{parts} parts: not split"));
                assert_eq!(joined, serial, "{parts} parts, crlf {crlf}");
            }
        }
    }

    #[test]
    fn cuts_fall_at_key_lines_and_count_lines() {
        let text = document(60, false);
        let plan = Plan::find(&text, 4).unwrap();
        assert_eq!(plan.key_line, 5);
        assert_eq!(plan.cuts.len(), 3);
        for &(at, lines) in &plan.cuts {
            assert!(text[at..].starts_with("  ") && !text[at..].starts_with("   "));
            assert_eq!(text[..at].matches('\n').count(), lines);
        }
        assert!(text[plan.tail.0..].starts_with("routes:"));
        assert_eq!(text[..plan.tail.0].matches('\n').count(), plan.tail.1);
    }

    /// Every error, message and position, comes out as the serial parser
    /// gives it, wherever the problem is: each line of the document is
    /// removed, indented less, indented more, doubled or garbled in turn.
    #[test]
    fn errors_and_trees_match_the_serial_parse_for_every_edited_line() {
        let text = document(24, false);
        let lines: Vec<&str> = text.lines().collect();
        let mut split_used = 0;
        for i in 0..lines.len() {
            type Edit = Box<dyn Fn(&str) -> Option<String>>;
            let edits: [Edit; 6] = [
                Box::new(|_| None),
                Box::new(|l| l.strip_prefix(' ').map(str::to_string)),
                Box::new(|l| Some(format!(" {l}"))),
                Box::new(|l| Some(format!("{l}\n{l}"))),
                Box::new(|l| Some(format!("{l} \"open"))),
                Box::new(|l| Some(format!("{l} *nowhere"))),
            ];
            for edit in &edits {
                let mut doc: Vec<String> = Vec::new();
                for (j, l) in lines.iter().enumerate() {
                    if j == i {
                        doc.extend(edit(l));
                    } else {
                        doc.push(l.to_string());
                    }
                }
                let doc = doc.join("\n") + "\n";
                let serial = parse(&doc);
                for parts in [2, 3, 5] {
                    assert_eq!(
                        parse_with(&doc, parts, 0),
                        serial,
                        "line {i}, {parts} parts:\n{doc}"
                    );
                    split_used += usize::from(parse_split(&doc, parts).is_some());
                }
            }
        }
        // Most edits keep the document valid and split.
        assert!(split_used > 200, "{split_used}");
    }

    #[test]
    fn problems_across_pieces_fall_back_to_the_serial_parse() {
        let base = document(30, false);
        let cut = Plan::find(&base, 2).unwrap().cuts[0].0;
        let (a, b) = base.split_at(cut);
        let cases = [
            // The same key in both pieces.
            format!("{a}  job-0: {{task: t, every: 1s}}\n{b}"),
            // An alias whose anchor is in the first piece.
            format!("{a}  x: &far {{task: t, every: 1s}}\n{b}  y: *far\n"),
            // An anchor in the header used in the mapping.
            base.replace("defaults:\n  queue: q", "defaults: &d\n  queue: q")
                .replace("routes:", "  z: {<<: *d, task: t}\nroutes:"),
            // A merge key at the top of the mapping.
            format!("{a}  <<: {{extra: {{task: t, every: 1s}}}}\n{b}"),
            // A key of the header again after the mapping.
            format!("{base}timezone: UTC\n"),
            // A syntax error right at the cut.
            format!("{a}  bad: [1,\n{b}"),
            // A second document.
            format!("{base}---\nschedules: {{}}\n"),
        ];
        for doc in &cases {
            let serial = parse(doc);
            assert_eq!(parse_with(doc, 2, 0), serial, "{doc}");
            assert!(parse_split(doc, 2).is_none(), "{doc}");
        }
    }

    #[test]
    fn nesting_limits_count_the_levels_around_a_piece() {
        let deep = |levels: usize| {
            let mut doc = document(10, false);
            doc.push_str("schedules2: 1\n");
            let inner = "[".repeat(levels) + &"]".repeat(levels);
            doc.replace("routes:", &format!("  deep: {inner}\nroutes:"))
        };
        for levels in [253, 254, 255] {
            let doc = deep(levels);
            assert_eq!(parse_with(&doc, 2, 0), parse(&doc), "{levels}");
        }
    }
}
