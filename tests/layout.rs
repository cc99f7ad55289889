//! The layer check of `src/`: reads every `src/**/*.rs`, finds which
//! modules each file refers to (`crate::…` and `super::…` paths anywhere in
//! the code, `metronome::…` in the binary; comments, string literals and
//! `#[cfg(test)]` items do not count) and checks that no files import each
//! other in a cycle (the notion of `shared/tools/floors.py`) and that every
//! import goes down the layer table of ARCHITECTURE.md.
//!
//! Owns [`LAYERS`] and [`KNOWN`]. Invariant: every module of `src/` is in
//! the table, and [`KNOWN`] lists exactly the violations that occur, so it
//! can only shrink. The parsing and checking are small pure functions,
//! unit-tested below on synthetic file sets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One row of the layer table: files whose module path starts with
/// `prefix` (or equals it, for `exact` rows) are in `layer`. The longest
/// matching prefix decides.
struct Layer {
    prefix: &'static str,
    layer: u8,
    exact: bool,
}

const fn at(prefix: &'static str, layer: u8) -> Layer {
    Layer {
        prefix,
        layer,
        exact: false,
    }
}

const fn only(prefix: &'static str, layer: u8) -> Layer {
    Layer {
        prefix,
        layer,
        exact: true,
    }
}

/// The layers, lowest first. `""` is `src/lib.rs` itself; crate root items
/// (`crate::NameHasher`) are named by the item. The binary (`main`, `app`)
/// imports the library as `metronome::`.
const LAYERS: &[Layer] = &[
    only("", 0),
    at("duration", 0),
    at("redact", 0),
    at("tls", 0),
    at("NameHasher", 0),
    at("syntax", 1),
    at("schedule", 2),
    only("state", 3),
    at("entry", 4),
    at("engine", 5),
    at("celery", 5),
    at("metrics", 6),
    at("ports", 7),
    at("db", 8),
    at("redis_link", 8),
    at("broker", 9),
    at("state::file", 9),
    at("state::redis", 9),
    at("state::sql", 9),
    at("lease", 9),
    at("healthcheck", 9),
    at("service", 10),
    at("source", 11),
    at("http", 11),
    at("importer", 11),
    at("app", 12),
    at("main", 12),
];

/// The violations present today, as (file under `src/`, module imported).
/// Branches that remove one delete its line here; a new one fails.
const KNOWN: &[(&str, &str)] = &[];

/// Which crate of the package a file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Krate {
    Lib,
    Bin,
}

/// A file's crate and module path: `a/b.rs` and `a/b/mod.rs` are `a::b`;
/// `lib.rs` and `main.rs` are their crate's root; `app/**` is the binary.
fn module_of(rel: &str) -> (Krate, Vec<String>) {
    let stem = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut segs: Vec<String> = stem.split('/').map(String::from).collect();
    let krate = match segs[0].as_str() {
        "main" | "app" => Krate::Bin,
        _ => Krate::Lib,
    };
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    (krate, segs)
}

/// The name a module has in the layer table: its path, `main` for the
/// binary's root, `""` for the library's.
fn table_name(krate: Krate, module: &[String]) -> String {
    if krate == Krate::Bin && module.is_empty() {
        "main".into()
    } else {
        module.join("::")
    }
}

/// `text` with comments removed and string and char literals emptied, so
/// that only code is left (line breaks kept).
fn strip_comments_and_literals(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            i = skip_block_comment(&c, i, &mut out);
        } else if c[i] == '"' || (c[i] == 'r' && matches!(next, Some('"' | '#'))) {
            i = skip_string(&c, i, &mut out);
        } else if c[i] == '\'' {
            i = skip_char(&c, i, &mut out);
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn skip_block_comment(c: &[char], mut i: usize, out: &mut String) -> usize {
    let mut depth = 0;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            if c[i] == '\n' {
                out.push('\n');
            }
            i += 1;
        }
    }
    i
}

/// Skips a `"…"` or `r#"…"#` literal starting at `i` (an `r` not starting
/// a raw string is an identifier character and kept).
fn skip_string(c: &[char], mut i: usize, out: &mut String) -> usize {
    let raw = c[i] == 'r';
    let ident_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
    if raw {
        let mut j = i + 1;
        while c.get(j) == Some(&'#') {
            j += 1;
        }
        if ident_before || c.get(j) != Some(&'"') {
            out.push(c[i]);
            return i + 1;
        }
        let hashes = j - i - 1;
        i = j + 1;
        while i < c.len() {
            if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                out.push_str("\"\"");
                return i + 1 + hashes;
            }
            if c[i] == '\n' {
                out.push('\n');
            }
            i += 1;
        }
        return i;
    }
    i += 1;
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            i += 1;
        }
        if c.get(i) == Some(&'\n') {
            out.push('\n');
        }
        i += 1;
    }
    out.push_str("\"\"");
    i + 1
}

/// Skips a char literal at `i`; a lifetime (`'a`) is kept as it is.
fn skip_char(c: &[char], i: usize, out: &mut String) -> usize {
    let end = if c.get(i + 1) == Some(&'\\') {
        (i + 2..c.len().min(i + 12)).find(|&j| c[j] == '\'')
    } else {
        (c.get(i + 2) == Some(&'\'')).then_some(i + 2)
    };
    match end {
        Some(e) => {
            out.push_str("' '");
            e + 1
        }
        None => {
            out.push('\'');
            i + 1
        }
    }
}

/// `code` without the items marked `#[cfg(test)]` (a `mod tests { … }`
/// block, or an item up to its `;`).
fn drop_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let brace = item.find('{');
        let semi = item.find(';');
        let end = match (brace, semi) {
            (Some(b), Some(s)) if s < b => s + 1,
            (None, Some(s)) => s + 1,
            (Some(b), _) => matching_brace(item, b),
            (None, None) => item.len(),
        };
        out.extend(item[..end].chars().filter(|&ch| ch == '\n'));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The index just past the `}` closing the `{` at `open`.
fn matching_brace(s: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, ch) in s[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// Where a path starts: this crate's root, `n` levels up from the file's
/// module, or the library seen from the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    Crate,
    Super(usize),
    Library,
}

/// Every `crate::…`, `super::…` (and with `library_name`, `NAME::…`) path
/// in `code`, groups `{a, b::c}` expanded, as (root, segments).
fn paths(code: &str, library_name: Option<&str>) -> Vec<(Root, Vec<String>)> {
    let toks = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let after_colons = i > 0 && toks[i - 1] == "::";
        let root = match toks[i].as_str() {
            "crate" => Some(Root::Crate),
            "super" => Some(Root::Super(1)),
            t if Some(t) == library_name => Some(Root::Library),
            _ => None,
        };
        match root {
            Some(mut root) if !after_colons && toks.get(i + 1).is_some_and(|t| t == "::") => {
                i += 2;
                while let Root::Super(n) = root
                    && toks.get(i).is_some_and(|t| t == "super")
                    && toks.get(i + 1).is_some_and(|t| t == "::")
                {
                    root = Root::Super(n + 1);
                    i += 2;
                }
                let (found, next) = path_tail(&toks, i, Vec::new());
                out.extend(found.into_iter().map(|p| (root, p)));
                i = next;
            }
            _ => i += 1,
        }
    }
    out
}

/// The segments from `toks[i]` on, after `prefix`: one path, or one per
/// item of a `{…}` group. Returns them and the index after the path.
fn path_tail(toks: &[String], mut i: usize, mut prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    loop {
        match toks.get(i).map(String::as_str) {
            Some("{") => {
                let mut all = Vec::new();
                i += 1;
                while i < toks.len() && toks[i] != "}" {
                    if toks[i] == "," {
                        i += 1;
                        continue;
                    }
                    let (found, next) = path_tail(toks, i, prefix.clone());
                    all.extend(found);
                    i = next.max(i + 1);
                }
                return (all, i + 1);
            }
            Some(t) if is_ident(t) => {
                if t != "self" {
                    prefix.push(t.to_string());
                }
                i += 1;
                if toks.get(i).is_some_and(|t| t == "::") {
                    i += 1;
                } else {
                    return (vec![prefix], i);
                }
            }
            _ => return (vec![prefix], i),
        }
    }
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::` and single punctuation characters of `code`.
fn tokens(code: &str) -> Vec<String> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i].is_alphanumeric() || c[i] == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            // `$crate` is the macro's crate: a path like `crate`.
            out.push(c[start..i].iter().collect());
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else {
            if !c[i].is_whitespace() {
                out.push(c[i].to_string());
            }
            i += 1;
        }
    }
    out
}

/// A file of `src/` with what its code refers to.
struct SrcFile {
    rel: String,
    krate: Krate,
    module: Vec<String>,
    refs: Vec<(Krate, Vec<String>)>,
}

/// An import from one file to a module: the file it lands in (`None` for
/// the crate roots, as in floors.py) and the module's table name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    from: usize,
    to_file: Option<usize>,
    to_name: String,
}

/// Reads (path under `src/`, text) pairs into files with absolute references.
fn parse(files: &[(String, String)]) -> Vec<SrcFile> {
    files
        .iter()
        .map(|(rel, text)| {
            let (krate, module) = module_of(rel);
            let code = drop_test_items(&strip_comments_and_literals(text));
            let lib = (krate == Krate::Bin).then_some("metronome");
            let refs = paths(&code, lib)
                .into_iter()
                .filter_map(|(root, segs)| match root {
                    Root::Crate => Some((krate, segs)),
                    Root::Library => Some((Krate::Lib, segs)),
                    Root::Super(n) => {
                        let keep = module.len().checked_sub(n)?;
                        Some((krate, [&module[..keep], &segs[..]].concat()))
                    }
                })
                .collect();
            SrcFile {
                rel: rel.clone(),
                krate,
                module,
                refs,
            }
        })
        .collect()
}

/// Each file's imports, resolved to the longest module prefix that is a
/// file; self-references dropped, duplicates merged.
fn imports(files: &[SrcFile]) -> Vec<Import> {
    let index: BTreeMap<(Krate, &[String]), usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| ((f.krate, f.module.as_slice()), i))
        .collect();
    let mut out = BTreeSet::new();
    for (from, f) in files.iter().enumerate() {
        for (krate, segs) in &f.refs {
            let Some((k, &to)) = (0..=segs.len())
                .rev()
                .find_map(|k| index.get(&(*krate, &segs[..k])).map(|t| (k, t)))
            else {
                continue;
            };
            if to == from {
                continue;
            }
            let (to_file, to_name) = if k == 0 {
                let item = match krate {
                    Krate::Lib => segs.first().cloned().unwrap_or_default(),
                    Krate::Bin => "main".into(),
                };
                (None, item)
            } else {
                (Some(to), table_name(*krate, &segs[..k]))
            };
            out.insert(Import {
                from,
                to_file,
                to_name,
            });
        }
    }
    out.into_iter().collect()
}

/// The import cycles between files (strongly connected components of more
/// than one file), each as its sorted file paths.
fn cycles(files: &[SrcFile], imports: &[Import]) -> Vec<Vec<String>> {
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); files.len()];
    for i in imports {
        if let Some(t) = i.to_file {
            next[i.from].push(t);
        }
    }
    let mut t = Tarjan {
        next: &next,
        index: vec![None; files.len()],
        low: vec![0; files.len()],
        stack: Vec::new(),
        on: vec![false; files.len()],
        counter: 0,
        found: Vec::new(),
    };
    for v in 0..files.len() {
        if t.index[v].is_none() {
            t.strong(v);
        }
    }
    let mut out: Vec<Vec<String>> = t
        .found
        .into_iter()
        .map(|c| {
            let mut names: Vec<String> = c.into_iter().map(|v| files[v].rel.clone()).collect();
            names.sort();
            names
        })
        .collect();
    out.sort();
    out
}

struct Tarjan<'a> {
    next: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    stack: Vec<usize>,
    on: Vec<bool>,
    counter: usize,
    found: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn strong(&mut self, v: usize) {
        self.index[v] = Some(self.counter);
        self.low[v] = self.counter;
        self.counter += 1;
        self.stack.push(v);
        self.on[v] = true;
        for &w in &self.next[v] {
            match self.index[w] {
                None => {
                    self.strong(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = self.stack.pop().unwrap();
                self.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                self.found.push(comp);
            }
        }
    }
}

/// The table row for `name`: the longest matching prefix.
fn layer_of<'t>(table: &'t [Layer], name: &str) -> Option<&'t Layer> {
    table
        .iter()
        .filter(|l| {
            name == l.prefix
                || (!l.exact
                    && name
                        .strip_prefix(l.prefix)
                        .is_some_and(|r| r.starts_with("::")))
        })
        .max_by_key(|l| l.prefix.len())
}

/// What the layer check found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Verdict {
    /// Modules (of files, or imported) that no table row matches.
    missing: BTreeSet<String>,
    /// Violations not in the known list: (file, module imported).
    new: BTreeSet<(String, String)>,
    /// Known violations that no longer occur.
    stale: BTreeSet<(String, String)>,
}

impl Verdict {
    fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.new.is_empty() && self.stale.is_empty()
    }
}

/// Every import that does not go to a strictly lower layer, except between
/// files of the same table row, or of the binary.
fn violations(
    files: &[SrcFile],
    imports: &[Import],
    table: &[Layer],
) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let mut missing = BTreeSet::new();
    let mut found = BTreeSet::new();
    for f in files {
        let name = table_name(f.krate, &f.module);
        if layer_of(table, &name).is_none() {
            missing.insert(name);
        }
    }
    for i in imports {
        let from = &files[i.from];
        let (Some(lf), Some(lt)) = (
            layer_of(table, &table_name(from.krate, &from.module)),
            layer_of(table, &i.to_name),
        ) else {
            if layer_of(table, &i.to_name).is_none() {
                missing.insert(i.to_name.clone());
            }
            continue;
        };
        let to_bin = i.to_file.is_some_and(|t| files[t].krate == Krate::Bin) || i.to_name == "main";
        let same_row = std::ptr::eq(lf, lt) || (from.krate == Krate::Bin && to_bin);
        if !same_row && lt.layer >= lf.layer {
            found.insert((from.rel.clone(), i.to_name.clone()));
        }
    }
    (missing, found)
}

/// The whole layer check of `files` against `table` and `known`.
fn check_layers(files: &[SrcFile], table: &[Layer], known: &[(&str, &str)]) -> Verdict {
    let (missing, found) = violations(files, &imports(files), table);
    let known: BTreeSet<(String, String)> = known
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    Verdict {
        missing,
        new: found.difference(&known).cloned().collect(),
        stale: known.difference(&found).cloned().collect(),
    }
}

/// Every `.rs` file under `dir`, as (path relative to `dir`, text).
fn read_tree(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn src() -> Vec<SrcFile> {
    parse(&read_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    ))
}

#[test]
fn src_has_no_import_cycle() {
    let files = src();
    assert!(files.len() > 20, "read {} files from src/", files.len());
    let found = cycles(&files, &imports(&files));
    assert!(
        found.is_empty(),
        "import cycles between files of src/:\n{}",
        found
            .iter()
            .map(|c| format!("  cycle of {}: {}", c.len(), c.join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn src_imports_only_downward_in_the_layer_table() {
    let v = check_layers(&src(), LAYERS, KNOWN);
    let list = |s: &BTreeSet<(String, String)>| {
        s.iter()
            .map(|(f, m)| format!("  (\"{f}\", \"{m}\"),"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        v.missing.is_empty(),
        "modules missing from the layer table in tests/layout.rs (place each in its layer, see ARCHITECTURE.md `## Layers`): {:?}",
        v.missing
    );
    assert!(
        v.new.is_empty(),
        "imports to the same or a higher layer (see ARCHITECTURE.md `## Layers`):\n{}",
        list(&v.new)
    );
    assert!(
        v.stale.is_empty(),
        "KNOWN violations that no longer occur: delete them from KNOWN in tests/layout.rs:\n{}",
        list(&v.stale)
    );
}

#[cfg(test)]
mod unit {
    use super::*;

    fn set(files: &[(&str, &str)]) -> Vec<SrcFile> {
        let owned: Vec<(String, String)> = files
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        parse(&owned)
    }

    const TABLE: &[Layer] = &[
        only("", 0),
        at("low", 1),
        at("mid", 2),
        at("mid::deep", 3),
        at("high", 4),
        at("app", 5),
        at("main", 5),
    ];

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.into(), b.into())
    }

    #[test]
    fn module_paths_follow_the_file_layout() {
        assert_eq!(module_of("lib.rs"), (Krate::Lib, vec![]));
        assert_eq!(module_of("main.rs"), (Krate::Bin, vec![]));
        assert_eq!(module_of("a/b.rs").1, vec!["a", "b"]);
        assert_eq!(module_of("a/b/mod.rs").1, vec!["a", "b"]);
        assert_eq!(
            module_of("app/run.rs"),
            (Krate::Bin, vec!["app".into(), "run".into()])
        );
    }

    #[test]
    fn paths_expand_groups_and_count_supers() {
        let p = paths(
            "use crate::{a::b, c::{d, e::F}, self};\nlet x = super::super::g::h();\nfoo::crate_x;",
            None,
        );
        let segs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            p,
            vec![
                (Root::Crate, segs(&["a", "b"])),
                (Root::Crate, segs(&["c", "d"])),
                (Root::Crate, segs(&["c", "e", "F"])),
                (Root::Crate, segs(&[])),
                (Root::Super(2), segs(&["g", "h"])),
            ]
        );
        assert_eq!(
            paths(
                "use metronome::x::Y; other::metronome::z",
                Some("metronome")
            ),
            vec![(Root::Library, segs(&["x", "Y"]))]
        );
    }

    #[test]
    fn comments_strings_and_test_items_are_not_code() {
        let text = r##"
// use crate::a;
/* crate::b /* nested crate::c */ */
let s = "crate::d";
let r = r#"crate::e"#;
let c = '"'; let l: &'static str = x;
use crate::kept;
#[cfg(test)]
mod tests {
    use crate::in_tests;
    fn f() { if x { crate::deeper(); } }
}
#[cfg(test)]
use crate::test_import;
fn after() { crate::after_tests(); }
"##;
        let code = drop_test_items(&strip_comments_and_literals(text));
        let names: Vec<String> = paths(&code, None)
            .into_iter()
            .map(|(_, s)| s.join("::"))
            .collect();
        assert_eq!(names, vec!["kept", "after_tests"]);
        assert_eq!(
            code.lines().count(),
            text.lines().count(),
            "line breaks kept"
        );
    }

    #[test]
    fn a_cycle_is_found_and_names_its_files() {
        let files = set(&[
            ("lib.rs", "pub mod low; pub mod mid; pub mod high;"),
            ("low.rs", "use crate::mid::X;"),
            ("mid/mod.rs", "use crate::high::Y;"),
            ("high.rs", "use crate::low::Z; use crate::NameHasher;"),
        ]);
        assert_eq!(
            cycles(&files, &imports(&files)),
            vec![vec![
                "high.rs".to_string(),
                "low.rs".into(),
                "mid/mod.rs".into()
            ]]
        );
        let acyclic = set(&[("low.rs", ""), ("high.rs", "use crate::low::Z;")]);
        assert!(cycles(&acyclic, &imports(&acyclic)).is_empty());
    }

    #[test]
    fn super_resolves_from_the_files_module() {
        let files = set(&[
            ("mid/mod.rs", ""),
            ("mid/deep.rs", "use super::Thing; use super::super::low::X;"),
            ("mid/deep/inner.rs", "use super::super::Other;"),
            ("low.rs", ""),
        ]);
        let got: Vec<(String, String)> = imports(&files)
            .into_iter()
            .map(|i| (files[i.from].rel.clone(), i.to_name))
            .collect();
        assert_eq!(
            got,
            vec![
                pair("mid/deep.rs", "mid"),
                pair("mid/deep.rs", "low"),
                pair("mid/deep/inner.rs", "mid"),
            ]
        );
    }

    #[test]
    fn downward_and_same_prefix_imports_pass() {
        let files = set(&[
            ("lib.rs", "pub type NameHasher = ();"),
            ("low.rs", ""),
            ("mid/mod.rs", "use crate::low::A; use super::mid::b::B;"),
            ("mid/b.rs", "use crate::mid::C; use super::A;"),
            ("mid/deep.rs", "use crate::mid::C;"),
            ("high.rs", "use crate::mid::deep::D;"),
            ("main.rs", "use metronome::high::H; use crate::app::run;"),
            ("app/run.rs", "use crate::RunArgs; use metronome::low::L;"),
        ]);
        assert_eq!(check_layers(&files, TABLE, &[]), Verdict::default());
    }

    #[test]
    fn upward_and_sideways_imports_are_violations() {
        let files = set(&[
            ("lib.rs", ""),
            ("low.rs", "use crate::high::H;"),
            ("mid/mod.rs", "use crate::mid::deep::D;"),
            ("mid/deep.rs", ""),
            ("high.rs", "use crate::NameHasher;"),
        ]);
        let v = check_layers(&files, TABLE, &[]);
        assert_eq!(
            v.new,
            [pair("low.rs", "high"), pair("mid/mod.rs", "mid::deep")].into()
        );
        assert_eq!(v.missing, ["NameHasher".to_string()].into());
        assert!(!v.is_clean());
    }

    #[test]
    fn known_violations_pass_and_stale_ones_fail() {
        let files = set(&[("low.rs", "use crate::high::H;"), ("high.rs", "")]);
        let v = check_layers(&files, TABLE, &[("low.rs", "high")]);
        assert!(v.is_clean(), "{v:?}");
        let v = check_layers(&files, TABLE, &[("low.rs", "high"), ("mid/mod.rs", "low")]);
        assert_eq!(v.stale, [pair("mid/mod.rs", "low")].into());
        assert!(v.new.is_empty());
    }

    #[test]
    fn an_unplaced_module_fails_and_exact_rows_match_only_themselves() {
        let table = &[at("low", 1), only("state", 2), at("state::file", 3)];
        let files = set(&[
            ("low.rs", ""),
            ("state/mod.rs", "use crate::low::X;"),
            ("state/file.rs", "use super::EntryState;"),
            ("state/other.rs", ""),
            ("newcomer.rs", ""),
        ]);
        let v = check_layers(&files, table, &[]);
        assert_eq!(
            v.missing,
            ["newcomer".to_string(), "state::other".to_string()].into()
        );
        assert!(v.new.is_empty(), "{v:?}");
        assert_eq!(layer_of(table, "state::file::x").map(|l| l.layer), Some(3));
        assert_eq!(layer_of(table, "lowly").map(|l| l.layer), None);
    }
}
