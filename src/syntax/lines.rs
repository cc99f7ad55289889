//! The document's text, looked up by line, where the parser's events are not enough.
//!
//! The parser reports where each event starts, and for some nodes that is not where the
//! node starts as a person reads it: an indentless list (`key:\n- a`) is placed at its first
//! item's content and a block scalar (`|`, `>`) at its first content line. [`Lines`] maps
//! parser markers to [`Pos`]itions in the whole document (a piece parsed on its own starts
//! after some lines of it) and finds the `-`, `|` or `>` to move such nodes back to. It also
//! reads the alias name at an error, which the parser does not report.

use saphyr_parser::Marker;

use super::Pos;

/// The text being parsed, with its line starts computed when first needed.
pub(super) struct Lines<'a> {
    text: &'a str,
    /// Byte offsets of line starts, computed when first needed.
    starts: Option<Vec<usize>>,
    /// Lines of the whole document before `text` (when parsing a piece of it).
    line_offset: usize,
}

impl<'a> Lines<'a> {
    /// The lines of `text`, which starts after `line_offset` lines of the whole document.
    pub(super) fn new(text: &'a str, line_offset: usize) -> Lines<'a> {
        Lines {
            text,
            starts: None,
            line_offset,
        }
    }

    /// The text, for the parser.
    pub(super) fn text(&self) -> &'a str {
        self.text
    }

    /// The position of a parser marker in the whole document.
    pub(super) fn pos(&self, m: &Marker) -> Pos {
        let mut pos = Pos::from_marker(m);
        pos.line += self.line_offset;
        pos
    }

    /// The text of a 1-based line (of the whole document), without its line break. A byte
    /// order mark at the start of the first line is left out, as the parser does not count it
    /// as a column.
    fn line_text(&mut self, global_line: usize) -> Option<&'a str> {
        let line = global_line.checked_sub(self.line_offset)?;
        let text = self.text;
        let starts = self.starts.get_or_insert_with(|| {
            let bytes = text.as_bytes();
            let mut starts = vec![0];
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'\n' => starts.push(i + 1),
                    b'\r' if bytes.get(i + 1) != Some(&b'\n') => starts.push(i + 1),
                    _ => {}
                }
                i += 1;
            }
            starts
        });
        let start = *starts.get(line.checked_sub(1)?)?;
        let end = starts.get(line).copied().unwrap_or(text.len());
        let s = text.get(start..end)?;
        let s = s.trim_end_matches(['\n', '\r']);
        Some(if global_line == 1 {
            s.strip_prefix('\u{feff}').unwrap_or(s)
        } else {
            s
        })
    }

    /// If the text before `pos` on its line ends with a `-` entry indicator followed only by
    /// blanks (and maybe a comment), the 1-based column of that `-`.
    pub(super) fn dash_before(&mut self, pos: Pos) -> Option<usize> {
        let line: Vec<char> = self.line_text(pos.line)?.chars().collect();
        let end = (pos.col - 1).min(line.len());
        let blank = |c: &char| matches!(c, ' ' | '\t');
        (0..end).rev().find_map(|dash| {
            let is_indicator = line[dash] == '-'
                && (dash == 0 || blank(&line[dash - 1]))
                && line.get(dash + 1).is_none_or(blank);
            if !is_indicator {
                return None;
            }
            let rest = line[dash + 1..end].iter().find(|c| !blank(c));
            matches!(rest, None | Some('#')).then_some(dash + 1)
        })
    }

    /// The parser places an indentless sequence (`key:\n- a`) at its first item's content;
    /// move it back to the `-`. Also returns whether this may still be an indentless sequence
    /// whose first item starts with `-` (`key:\n- - a`); the builder decides that when
    /// the first item arrives.
    pub(super) fn sequence_pos(&mut self, pos: Pos, has_properties: bool) -> (Pos, bool) {
        if has_properties {
            return (pos, false);
        }
        let Some(line) = self.line_text(pos.line) else {
            return (pos, false);
        };
        match line.chars().nth(pos.col - 1) {
            Some('[') => (pos, false),
            Some('-') => (pos, true),
            _ => match self.dash_before(pos) {
                Some(col) => (Pos { col, ..pos }, false),
                None => (pos, false),
            },
        }
    }

    /// The parser places a block scalar (`|` or `>`) at its first content line; move it back
    /// to the indicator.
    pub(super) fn block_scalar_pos(&mut self, pos: Pos) -> Pos {
        let Some(line) = self.line_text(pos.line) else {
            return pos;
        };
        if matches!(line.chars().nth(pos.col - 1), Some('|' | '>')) {
            return pos;
        }
        let mut line_no = pos.line;
        while line_no > 1 {
            line_no -= 1;
            let Some(line) = self.line_text(line_no) else {
                return pos;
            };
            if line.trim_matches([' ', '\t']).is_empty() {
                // Leading empty lines belong to the scalar.
                continue;
            }
            return match block_indicator_col(line) {
                Some(col) => Pos { line: line_no, col },
                None => pos,
            };
        }
        pos
    }

    /// The name of the alias at `pos` (which points at its `*`).
    pub(super) fn alias_name(&mut self, pos: Pos) -> Option<String> {
        let line = self.line_text(pos.line)?;
        let mut chars = line.chars().skip(pos.col - 1);
        if chars.next() != Some('*') {
            return None;
        }
        let name: String = chars
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
            .collect();
        if name.is_empty() { None } else { Some(name) }
    }
}

/// The 1-based column of the `|` or `>` that starts a block scalar header on this line:
/// the first one that follows a blank (or starts the line) and is followed only by
/// indentation/chomping indicators, blanks and an optional comment.
fn block_indicator_col(line: &str) -> Option<usize> {
    let chars: Vec<char> = line.chars().collect();
    (0..chars.len()).find_map(|i| {
        if !matches!(chars[i], '|' | '>') || (i > 0 && !matches!(chars[i - 1], ' ' | '\t')) {
            return None;
        }
        let mut rest = chars[i + 1..]
            .iter()
            .skip_while(|c| matches!(c, '+' | '-' | '0'..='9'));
        let tail = rest.find(|c| !matches!(c, ' ' | '\t'));
        matches!(tail, None | Some('#')).then_some(i + 1)
    })
}

#[cfg(test)]
mod tests {
    use crate::syntax::testing::*;

    #[test]
    fn positions_of_block_mapping() {
        let doc = p("schedules:\n  a:\n    every: 30s\n");
        assert_eq!(doc.pos, pos(1, 1));
        let Value::Map(entries) = &doc.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.pos, pos(1, 1));
        let a = doc.get("schedules").and_then(|n| n.get("a")).expect("a");
        assert_eq!(a.pos, pos(3, 5));
        let Value::Map(entries) = &a.value else {
            panic!("not a map")
        };
        let (key, value) = &entries[0];
        assert_eq!(key.as_str(), Some("every"));
        assert_eq!(key.pos, pos(3, 5));
        assert_eq!(value.as_str(), Some("30s"));
        assert_eq!(value.pos, pos(3, 12));
    }

    #[test]
    fn positions_of_nested_flow_collections() {
        let doc = p("x: {a: 1, b: [x, y]}\n");
        let x = doc.get("x").expect("x");
        assert_eq!(x.pos, pos(1, 4));
        let Value::Map(entries) = &x.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.pos, pos(1, 5));
        assert_eq!(entries[0].1.pos, pos(1, 8));
        assert_eq!(entries[0].1.value, Value::Int(1));
        assert_eq!(entries[1].0.pos, pos(1, 11));
        let b = &entries[1].1;
        assert_eq!(b.pos, pos(1, 14));
        let Value::Seq(items) = &b.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(1, 15));
        assert_eq!(items[1].pos, pos(1, 18));
        assert_eq!(items[1].as_str(), Some("y"));
    }

    #[test]
    fn positions_of_sequences() {
        let doc = p("a:\n  - x\nb:\n-   y\n- - z\nc: [1, 2]\n");
        let a = doc.get("a").expect("a");
        assert_eq!(a.pos, pos(2, 3));
        let Value::Seq(items) = &a.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(2, 5));
        // Indentless sequence: positioned at its first `-`.
        let b = doc.get("b").expect("b");
        assert_eq!(b.pos, pos(4, 1));
        let Value::Seq(items) = &b.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(4, 5));
        assert_eq!(items[1].pos, pos(5, 3));
        let Value::Seq(inner) = &items[1].value else {
            panic!("not a list")
        };
        assert_eq!(inner[0].pos, pos(5, 5));
        assert_eq!(doc.get("c").expect("c").pos, pos(6, 4));
    }

    #[test]
    fn positions_of_indentless_sequences() {
        fn seq(node: &Node) -> &[Node] {
            match &node.value {
                Value::Seq(items) => items,
                _ => panic!("not a list: {node:?}"),
            }
        }
        let doc =
            p("k:\n- - x\n  - y\n-   - z\nl:\n-\n- b\nm:\n- # c\n  x\nn:\n- -x\no:\n  - -x\n");
        let k = doc.get("k").expect("k");
        assert_eq!(k.pos, pos(2, 1));
        assert_eq!(seq(k)[0].pos, pos(2, 3));
        assert_eq!(seq(&seq(k)[0])[1].pos, pos(3, 5));
        assert_eq!(seq(k)[1].pos, pos(4, 5));
        let l = doc.get("l").expect("l");
        assert_eq!(l.pos, pos(6, 1));
        assert_eq!(seq(l)[0].value, Value::Null);
        assert_eq!(doc.get("m").expect("m").pos, pos(9, 1));
        let n = doc.get("n").expect("n");
        assert_eq!(n.pos, pos(12, 1));
        assert_eq!(seq(n)[0].value, s("-x"));
        assert_eq!(seq(n)[0].pos, pos(12, 3));
        assert_eq!(doc.get("o").expect("o").pos, pos(14, 3));
        let doc = p("- a:\n  - x\n  b:\n  - &q y\n");
        let Value::Seq(items) = &doc.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].get("a").expect("a").pos, pos(2, 3));
        assert_eq!(items[0].get("b").expect("b").pos, pos(4, 3));
    }

    #[test]
    fn position_of_anchored_and_tagged_values_includes_properties() {
        let doc = p("a: &x 1\nb: !!str 2\nc: *x\n");
        assert_eq!(doc.get("a").expect("a").pos, pos(1, 4));
        assert_eq!(doc.get("b").expect("b").pos, pos(2, 4));
        assert_eq!(doc.get("c").expect("c").pos, pos(3, 4));
    }

    #[test]
    fn multibyte_characters_count_as_one_column() {
        let doc = p("- ünïcødé: 日本語\n  näme: €uro\n- {ß: 日本, k: v}\n");
        let Value::Seq(items) = &doc.value else {
            panic!("not a list")
        };
        let first = &items[0];
        let value = first.get("ünïcødé").expect("key");
        assert_eq!(value.as_str(), Some("日本語"));
        assert_eq!(value.pos, pos(1, 12));
        assert_eq!(first.get("näme").expect("näme").pos, pos(2, 9));
        let Value::Map(entries) = &items[1].value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].1.pos, pos(3, 7));
        assert_eq!(entries[1].0.pos, pos(3, 11));
        assert_eq!(entries[1].1.pos, pos(3, 14));
    }

    #[test]
    fn tabs_count_as_one_column() {
        let doc = p("a: \t1\nbb:\t\t'x'\nc: [\tx,\ty]\nd: e\t# comment\n");
        let a = doc.get("a").expect("a");
        assert_eq!(a.value, Value::Int(1));
        assert_eq!(a.pos, pos(1, 5));
        assert_eq!(doc.get("bb").expect("bb").pos, pos(2, 6));
        let Value::Seq(items) = &doc.get("c").expect("c").value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(3, 6));
        assert_eq!(items[1].pos, pos(3, 9));
        assert_eq!(doc.get("d").expect("d").value, s("e"));
    }

    #[test]
    fn crlf_line_endings() {
        let doc = p("a: 1\r\nb:\r\n  c: x y\r\n  d: [1]\r\n");
        assert_eq!(doc.get("a").expect("a").pos, pos(1, 4));
        let b = doc.get("b").expect("b");
        assert_eq!(b.pos, pos(3, 3));
        let c = b.get("c").expect("c");
        assert_eq!(c.as_str(), Some("x y"));
        assert_eq!(c.pos, pos(3, 6));
        assert_eq!(b.get("d").expect("d").pos, pos(4, 6));
        let e = one_err("a: 1\r\nb: 2\r\na: 3\r\n");
        assert_eq!(e.pos, pos(3, 1));
    }

    #[test]
    fn crlf_indentless_sequence_position() {
        let doc = p("a:\r\n- x\r\n- y\r\n");
        let a = doc.get("a").expect("a");
        assert_eq!(a.pos, pos(2, 1));
    }

    #[test]
    fn byte_order_mark_is_not_a_column() {
        let doc = p("\u{feff}a: 1\n");
        assert_eq!(doc.pos, pos(1, 1));
        assert_eq!(doc.get("a").expect("a").pos, pos(1, 4));
        let e = one_err("\u{feff}a: *nope\n");
        assert_eq!(
            e.message,
            "unknown alias `*nope`: no anchor `&nope` is defined before it (quote the value if the \
             `*` is meant literally, as in a cron expression)"
        );
        assert_eq!(e.pos, pos(1, 4));
    }

    #[test]
    fn block_scalars_are_positioned_at_their_indicator() {
        let text = "a: |\n  42\nb: >- # note | here\n\n  \n  x\nc: |\nd: !!str |\n  y\ne|: |2\n   z\n- |\n";
        let text = &text[..text.len() - 5];
        let doc = p(text);
        assert_eq!(doc.get("a").expect("a").pos, pos(1, 4));
        let b = doc.get("b").expect("b");
        assert_eq!(b.value, s("\n\nx"));
        assert_eq!(b.pos, pos(3, 4));
        let c = doc.get("c").expect("c");
        assert_eq!(c.value, s(""));
        assert_eq!(c.pos, pos(7, 4));
        assert_eq!(doc.get("d").expect("d").pos, pos(8, 4));
        let e = doc.get("e|").expect("e|");
        assert_eq!(e.value, s(" z\n"));
        assert_eq!(e.pos, pos(10, 5));
        let doc = p("- |\n  x\n- >\n");
        let Value::Seq(items) = &doc.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(1, 3));
        assert_eq!(items[1].pos, pos(3, 3));
        assert_eq!(items[1].value, s(""));
    }
}
