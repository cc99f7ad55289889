//! The tree builder: turns the parser's event stream into a tree of [`Node`]s.
//!
//! It keeps a stack of the lists and mappings being read, resolves anchors and aliases
//! (an alias becomes a copy of the anchored node, within [`MAX_DEPTH`] levels and
//! [`MAX_ALIAS_NODES`] copied nodes), applies merge keys (`<<`) when a mapping ends, and
//! reports repeated and non-scalar keys while keeping the first occurrence. The first
//! syntax error ends the build.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

use super::diagnose::syntax_error;
use super::keys::{KeyIndex, key_display};
use super::lines::Lines;
use super::scalar::{
    TagKind, classify_tag, resolve_plain, resolve_tagged, unsupported_tag_message,
};
use super::{Node, Pos, Value, YamlError};

/// Maximum nesting of lists and mappings (also after alias expansion).
pub(super) const MAX_DEPTH: usize = 256;

/// Maximum number of nodes that aliases may copy, to stop "billion laughs"
/// documents from exhausting memory.
pub(super) const MAX_ALIAS_NODES: usize = 1_000_000;

/// Size bookkeeping for a finished node.
#[derive(Debug, Clone, Copy)]
struct Extent {
    /// Number of nodes in the subtree.
    size: usize,
    /// Number of nested collection levels (0 for a scalar).
    height: usize,
}

const SCALAR_EXTENT: Extent = Extent { size: 1, height: 0 };

/// What a mapping expects next.
#[derive(Debug)]
enum Slot {
    /// A key.
    Key,
    /// The value for this key.
    Value(Node),
    /// The value of a merge key `<<`.
    Merge,
    /// A value to drop (its key was a duplicate or invalid).
    Skip,
}

#[derive(Debug)]
struct MapFrame {
    entries: Vec<(Node, Node)>,
    keys: KeyIndex,
    slot: Slot,
    /// Where the first `<<` key is.
    merge_at: Option<Pos>,
    /// Mappings to merge in when the mapping ends.
    merges: Vec<Node>,
}

impl MapFrame {
    fn new() -> MapFrame {
        MapFrame {
            entries: Vec::new(),
            keys: KeyIndex::default(),
            slot: Slot::Key,
            merge_at: None,
            merges: Vec::new(),
        }
    }

    fn find(&self, key: &Value) -> Option<usize> {
        self.keys.find(&self.entries, key)
    }

    fn insert(&mut self, key: Node, value: Node) {
        self.entries.push((key, value));
        self.keys.added(&self.entries);
    }

    /// Takes the mapping's next node: a key or the value of the key before it.
    fn accept(&mut self, node: Node, merge_key: bool, errors: &mut Vec<YamlError>) {
        match std::mem::replace(&mut self.slot, Slot::Key) {
            Slot::Key => self.slot = self.key_slot(node, merge_key, errors),
            Slot::Value(key) => self.insert(key, node),
            Slot::Merge => self.add_merge(node, errors),
            Slot::Skip => {}
        }
    }

    /// Where the value of the key `node` goes; a repeated or non-scalar key is reported and
    /// its value dropped.
    fn key_slot(&mut self, node: Node, merge_key: bool, errors: &mut Vec<YamlError>) -> Slot {
        let message = if merge_key {
            let Some(first) = self.merge_at else {
                self.merge_at = Some(node.pos);
                return Slot::Merge;
            };
            format!(
                "duplicate key \"<<\" (first defined at line {})",
                first.line
            )
        } else if matches!(node.value, Value::Seq(_) | Value::Map(_)) {
            format!("mapping keys must be scalars, found {}", node.type_name())
        } else if let Some(i) = self.find(&node.value) {
            format!(
                "duplicate key {} (first defined at line {})",
                key_display(&node.value),
                self.entries[i].0.pos.line
            )
        } else {
            return Slot::Value(node);
        };
        errors.push(YamlError {
            pos: node.pos,
            message,
        });
        Slot::Skip
    }

    /// Takes the value of the merge key `<<`: a mapping or a list of mappings to merge in.
    fn add_merge(&mut self, node: Node, errors: &mut Vec<YamlError>) {
        let wanted = "the merge key `<<` needs a mapping or a list of mappings";
        match node.value {
            Value::Map(_) => self.merges.push(node),
            Value::Seq(items) => {
                for item in items {
                    if matches!(item.value, Value::Map(_)) {
                        self.merges.push(item);
                    } else {
                        errors.push(YamlError {
                            pos: item.pos,
                            message: format!("{wanted}, found {} in the list", item.type_name()),
                        });
                    }
                }
            }
            _ => {
                let found = node.type_name();
                errors.push(YamlError {
                    pos: node.pos,
                    message: format!("{wanted}, found {found}"),
                });
            }
        }
    }

    /// Adds the entries of the merged mappings that the mapping does not define itself,
    /// earlier mappings first.
    fn merge_in(&mut self) {
        for source in std::mem::take(&mut self.merges) {
            if let Value::Map(entries) = source.value {
                for (k, v) in entries {
                    if self.find(&k.value).is_none() {
                        self.insert(k, v);
                    }
                }
            }
        }
    }
}

#[derive(Debug)]
enum FrameKind {
    Seq(Vec<Node>),
    Map(Box<MapFrame>),
}

#[derive(Debug)]
struct Frame {
    pos: Pos,
    anchor: usize,
    extent: Extent,
    kind: FrameKind,
    /// A block sequence that starts at a `-` that may belong to its first item.
    maybe_indentless: bool,
}

#[derive(Debug)]
struct Anchored {
    node: Node,
    extent: Extent,
}

/// Builds the tree of one document (or of one piece of a larger one) from its events.
pub(super) struct Builder<'a> {
    lines: Lines<'a>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    pub(super) root: Option<Node>,
    pub(super) errors: Vec<YamlError>,
    pub(super) alias_nodes: usize,
    /// Nesting levels of the whole document around the text.
    base_depth: usize,
    /// The root mapping has a merge key `<<`.
    pub(super) root_merge: bool,
    /// The root mapping's key index, kept for checks across pieces.
    pub(super) root_keys: Option<KeyIndex>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(text: &'a str) -> Builder<'a> {
        Builder::piece(text, 0, 0)
    }

    /// A builder for the piece of a larger document that starts after
    /// `line_offset` lines and sits `base_depth` collections deep in it.
    pub(super) fn piece(text: &'a str, line_offset: usize, base_depth: usize) -> Builder<'a> {
        Builder {
            lines: Lines::new(text, line_offset),
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            errors: Vec::new(),
            alias_nodes: 0,
            base_depth,
            root_merge: false,
            root_keys: None,
        }
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(YamlError {
            pos,
            message: message.into(),
        });
    }

    fn too_deep(&mut self, pos: Pos) {
        self.error(
            pos,
            format!("lists and mappings are nested too deeply (more than {MAX_DEPTH} levels)"),
        );
    }

    /// The tree, or every error sorted by position.
    pub(super) fn finish(mut self) -> Result<Option<Node>, Vec<YamlError>> {
        if self.errors.is_empty() {
            Ok(self.root)
        } else {
            self.errors.sort_by_key(|e| e.pos);
            Err(self.errors)
        }
    }

    /// Feeds all events to the builder. Stops at the first fatal error.
    pub(super) fn run(&mut self) {
        let mut parser = Parser::new_from_str(self.lines.text());
        let mut documents = 0usize;
        loop {
            let (event, span) = match parser.next_event() {
                None => break,
                Some(Ok(x)) => x,
                Some(Err(e)) => {
                    let error = syntax_error(&mut self.lines, &e);
                    self.errors.push(error);
                    break;
                }
            };
            let pos = self.lines.pos(&span.start);
            let go_on = match event {
                Event::Nothing | Event::StreamStart | Event::DocumentEnd => true,
                Event::StreamEnd => false,
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        self.error(pos, "only one YAML document is allowed");
                        false
                    } else {
                        true
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    self.on_scalar(text, style, anchor, tag.as_deref(), pos);
                    true
                }
                Event::Alias(id) => self.on_alias(id, pos),
                Event::SequenceStart(anchor, tag) => {
                    let (pos, maybe_indentless) =
                        self.lines.sequence_pos(pos, anchor != 0 || tag.is_some());
                    self.on_start(pos, anchor, tag.as_deref(), false, maybe_indentless)
                }
                Event::MappingStart(anchor, tag) => {
                    self.on_start(pos, anchor, tag.as_deref(), true, false)
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    self.on_end();
                    true
                }
            };
            if !go_on {
                break;
            }
        }
    }

    fn on_scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        pos: Pos,
    ) {
        let plain = style == ScalarStyle::Plain;
        let pos = if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
            && anchor == 0
            && tag.is_none()
        {
            self.lines.block_scalar_pos(pos)
        } else {
            pos
        };
        if self.stack.is_empty() && plain && text.is_empty() && anchor == 0 && tag.is_none() {
            // An empty document.
            return;
        }
        let value = match tag {
            None if plain => resolve_plain(&text),
            None => Value::Str(text.into_owned()),
            Some(tag) => match classify_tag(tag) {
                Ok(kind) => match resolve_tagged(kind, &text) {
                    Ok(v) => v,
                    Err(message) => {
                        self.error(pos, message);
                        Value::Str(text.into_owned())
                    }
                },
                Err(shown) => {
                    self.error(pos, unsupported_tag_message(&shown));
                    Value::Str(text.into_owned())
                }
            },
        };
        let merge_key = plain && tag.is_none() && matches!(&value, Value::Str(s) if s == "<<");
        self.push(Node { value, pos }, SCALAR_EXTENT, anchor, merge_key);
    }

    /// Returns false if parsing must stop.
    fn on_alias(&mut self, id: usize, pos: Pos) -> bool {
        let depth = self.base_depth + self.stack.len();
        let Some(anchored) = self.anchors.get(&id) else {
            let message = match self.lines.alias_name(pos) {
                Some(name) => {
                    format!("alias `*{name}` is used inside the node that anchor `&{name}` defines")
                }
                None => "alias is used inside the node its anchor defines".to_owned(),
            };
            self.error(pos, message);
            self.push(
                Node {
                    value: Value::Null,
                    pos,
                },
                SCALAR_EXTENT,
                0,
                false,
            );
            return true;
        };
        let extent = anchored.extent;
        if depth + extent.height > MAX_DEPTH {
            self.too_deep(pos);
            return false;
        }
        self.alias_nodes = self.alias_nodes.saturating_add(extent.size);
        if self.alias_nodes > MAX_ALIAS_NODES {
            self.error(
                pos,
                format!("aliases expand to too many nodes (more than {MAX_ALIAS_NODES} in total)"),
            );
            return false;
        }
        let mut node = anchored.node.clone();
        node.pos = pos;
        self.push(node, extent, 0, false);
        true
    }

    /// Returns false if parsing must stop.
    fn on_start(
        &mut self,
        pos: Pos,
        anchor: usize,
        tag: Option<&Tag>,
        map: bool,
        maybe_indentless: bool,
    ) -> bool {
        if self.base_depth + self.stack.len() >= MAX_DEPTH {
            self.too_deep(pos);
            return false;
        }
        if let Some(tag) = tag {
            let what = if map { "a mapping" } else { "a list" };
            match classify_tag(tag) {
                Ok(TagKind::NonSpecific) => {}
                Ok(TagKind::Map) if map => {}
                Ok(TagKind::Seq) if !map => {}
                Ok(kind) => {
                    self.error(
                        pos,
                        format!("the {} tag cannot be used on {what}", kind.name()),
                    );
                }
                Err(shown) => self.error(pos, unsupported_tag_message(&shown)),
            }
        }
        let kind = if map {
            FrameKind::Map(Box::new(MapFrame::new()))
        } else {
            FrameKind::Seq(Vec::new())
        };
        self.stack.push(Frame {
            pos,
            anchor,
            extent: Extent { size: 1, height: 1 },
            kind,
            maybe_indentless,
        });
        true
    }

    fn on_end(&mut self) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let value = match frame.kind {
            FrameKind::Seq(items) => Value::Seq(items),
            FrameKind::Map(mut m) => {
                if self.stack.is_empty() {
                    self.root_merge = m.merge_at.is_some();
                }
                m.merge_in();
                if self.stack.is_empty() {
                    self.root_keys = Some(m.keys);
                }
                Value::Map(m.entries)
            }
        };
        let node = Node {
            value,
            pos: frame.pos,
        };
        self.push(node, frame.extent, frame.anchor, false);
    }

    /// Hands a finished node to its parent (or makes it the root).
    fn push(&mut self, node: Node, extent: Extent, anchor: usize, merge_key: bool) {
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    extent,
                },
            );
        }
        self.place_indentless(&node);
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        frame.extent.size = frame.extent.size.saturating_add(extent.size);
        frame.extent.height = frame.extent.height.max(extent.height + 1);
        match &mut frame.kind {
            FrameKind::Seq(items) => items.push(node),
            FrameKind::Map(m) => m.accept(node, merge_key, &mut self.errors),
        }
    }

    /// A block sequence placed at the same spot as its first item (`first`) is an indentless
    /// one whose `-` comes before (`key:\n- - a`): moves it to that `-`.
    fn place_indentless(&mut self, first: &Node) {
        if let Some(Frame {
            pos: seq_pos,
            kind: FrameKind::Seq(items),
            maybe_indentless: true,
            ..
        }) = self.stack.last()
            && items.is_empty()
            && *seq_pos == first.pos
            && let Some(col) = self.lines.dash_before(*seq_pos)
            && let Some(frame) = self.stack.last_mut()
        {
            frame.pos.col = col;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::testing::*;

    #[test]
    fn anchors_and_aliases() {
        let doc = p("base: &b\n  x: 1\n  y: [a, b]\ncopy: *b\nlist: [&s hi, *s]\n");
        let base = doc.get("base").expect("base");
        let copy = doc.get("copy").expect("copy");
        assert_eq!(copy.value, base.value);
        assert_eq!(copy.pos, pos(4, 7));
        // Inner nodes keep the position where they were written.
        assert_eq!(copy.get("x").expect("x").pos, pos(2, 6));
        let Value::Seq(items) = &doc.get("list").expect("list").value else {
            panic!("not a list")
        };
        assert_eq!(items[1].value, s("hi"));
        assert_eq!(items[1].pos, pos(5, 15));
    }

    #[test]
    fn redefined_anchor_uses_latest_definition() {
        let doc = p("a: &x 1\nb: *x\nc: &x 2\nd: *x\n");
        assert_eq!(doc.get("b").expect("b").value, Value::Int(1));
        assert_eq!(doc.get("d").expect("d").value, Value::Int(2));
    }

    #[test]
    fn alias_inside_its_own_anchor() {
        let e = one_err("a: &x [1, *x]\n");
        assert_eq!(e.pos, pos(1, 11));
        assert_eq!(
            e.message,
            "alias `*x` is used inside the node that anchor `&x` defines"
        );
    }

    #[test]
    fn alias_bomb_is_stopped() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, \
                 *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let errors = errs(&doc);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .message
                .starts_with("aliases expand to too many nodes"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn deep_nesting_is_stopped() {
        let depth = MAX_DEPTH + 10;
        let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let errors = errs(&doc);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let doc = "- ".repeat(depth * 4) + "x\n";
        let errors = errs(&doc);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("nested too deeply"),
            "{errors:?}"
        );
        // Aliases cannot be used to get around the limit.
        let inner = format!("{}x{}", "[".repeat(200), "]".repeat(200));
        let doc = format!(
            "a: &a {inner}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
        );
        let errors = errs(&doc);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("nested too deeply"),
            "{errors:?}"
        );
    }

    #[test]
    fn merge_keys() {
        let doc = p("base: &base\n  a: 1\n  b: 2\njob:\n  <<: *base\n  b: 3\n  c: 4\n");
        let job = doc.get("job").expect("job");
        assert_eq!(job.get("a").expect("a").value, Value::Int(1));
        assert_eq!(job.get("b").expect("b").value, Value::Int(3));
        assert_eq!(job.get("c").expect("c").value, Value::Int(4));
        assert!(job.get("<<").is_none());
        // Position of merged entries: where they were written.
        assert_eq!(job.get("a").expect("a").pos, pos(2, 6));
        // Explicit keys win even when they come before `<<`.
        let doc = p("base: &base {a: 1}\njob:\n  a: 2\n  <<: *base\n");
        assert_eq!(
            doc.get("job").and_then(|j| j.get("a")).map(|n| &n.value),
            Some(&Value::Int(2))
        );
    }

    #[test]
    fn merge_key_with_a_list_earlier_wins() {
        let doc = p("x: &x {a: 1, b: 1}\ny: &y {b: 2, c: 2}\nz:\n  <<: [*x, *y]\n  d: 4\n");
        let z = doc.get("z").expect("z");
        assert_eq!(z.get("a").expect("a").value, Value::Int(1));
        assert_eq!(z.get("b").expect("b").value, Value::Int(1));
        assert_eq!(z.get("c").expect("c").value, Value::Int(2));
        assert_eq!(z.get("d").expect("d").value, Value::Int(4));
        let Value::Map(entries) = &z.value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 4);
    }

    #[test]
    fn nested_merges_and_inline_merge() {
        let doc =
            p("a: &a {x: 1}\nb: &b\n  <<: *a\n  y: 2\nc:\n  <<: *b\n  <<q: 3\nd:\n  <<: {z: 9}\n");
        let c = doc.get("c").expect("c");
        assert_eq!(c.get("x").expect("x").value, Value::Int(1));
        assert_eq!(c.get("y").expect("y").value, Value::Int(2));
        assert_eq!(c.get("<<q").expect("<<q").value, Value::Int(3));
        let d = doc.get("d").expect("d");
        assert_eq!(d.get("z").expect("z").value, Value::Int(9));
    }

    #[test]
    fn quoted_merge_key_is_an_ordinary_key() {
        let doc = p("a: &a {x: 1}\nb:\n  \"<<\": *a\n");
        let b = doc.get("b").expect("b");
        assert!(b.get("x").is_none());
        assert!(b.get("<<").is_some());
    }

    #[test]
    fn merge_key_errors() {
        let e = one_err("a: 1\nb:\n  <<: 5\n");
        assert_eq!(e.pos, pos(3, 7));
        assert_eq!(
            e.message,
            "the merge key `<<` needs a mapping or a list of mappings, found an integer"
        );
        let e = one_err("a: &a {x: 1}\nb:\n  <<: [*a, foo]\n");
        assert_eq!(e.pos, pos(3, 12));
        assert_eq!(
            e.message,
            "the merge key `<<` needs a mapping or a list of mappings, found a string in the list"
        );
        let e = one_err("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n");
        assert_eq!(e.pos, pos(4, 3));
        assert_eq!(e.message, "duplicate key \"<<\" (first defined at line 3)");
    }

    #[test]
    fn duplicate_key() {
        let e = one_err("a: 1\nb: 2\na: 3\n");
        assert_eq!(e.pos, pos(3, 1));
        assert_eq!(e.message, "duplicate key \"a\" (first defined at line 1)");
    }

    #[test]
    fn duplicate_key_in_nested_mapping() {
        let e = one_err("schedules:\n  a:\n    every: 1s\n    task: x\n    every: 2s\n");
        assert_eq!(e.pos, pos(5, 5));
        assert_eq!(
            e.message,
            "duplicate key \"every\" (first defined at line 3)"
        );
        let e = one_err("x: {a: 1, b: 2, a: 3}\n");
        assert_eq!(e.pos, pos(1, 17));
    }

    #[test]
    fn all_duplicates_reported_and_first_kept() {
        let text = "a: 1\nb: 2\na: 3\nc:\n  d: 1\n  d: 2\nb: 4\n";
        let errors = errs(text);
        let got: Vec<(Pos, &str)> = errors.iter().map(|e| (e.pos, e.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (pos(3, 1), "duplicate key \"a\" (first defined at line 1)"),
                (pos(6, 3), "duplicate key \"d\" (first defined at line 5)"),
                (pos(7, 1), "duplicate key \"b\" (first defined at line 2)"),
            ]
        );
        // The builder keeps the first occurrence.
        let mut b = Builder::new(text);
        b.run();
        let root = b.root.expect("root");
        assert_eq!(root.get("a").expect("a").value, Value::Int(1));
        assert_eq!(root.get("b").expect("b").value, Value::Int(2));
        let Value::Map(entries) = &root.value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn non_scalar_keys() {
        let e = one_err("? [a, b]\n: 1\nc: 2\n");
        assert_eq!(e.pos, pos(1, 3));
        assert_eq!(e.message, "mapping keys must be scalars, found a list");
        let e = one_err("{? {a: 1}: x}\n");
        assert_eq!(e.message, "mapping keys must be scalars, found a mapping");
        let e = one_err("k: &k {a: 1}\n*k : x\n");
        assert_eq!(e.message, "mapping keys must be scalars, found a mapping");
    }

    #[test]
    fn second_document_is_an_error() {
        let e = one_err("a: 1\n---\nb: 2\n");
        assert_eq!(e.pos, pos(2, 1));
        assert_eq!(e.message, "only one YAML document is allowed");
        let e = one_err("a: 1\n...\nb: 2\n");
        assert_eq!(e.pos, pos(3, 1));
        let e = one_err("---\na: 1\n---\n");
        assert_eq!(e.pos, pos(3, 1));
        // A leading `---` and a trailing `...` are fine.
        assert!(parse("---\na: 1\n...\n").is_ok());
    }
}
