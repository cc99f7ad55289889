//! Syntax errors: the scanner's messages reworded for people who edit schedule files.
//!
//! The YAML scanner stops at the first syntax error with a terse message meant for YAML
//! implementers ("while parsing a block mapping, did not find expected key"). [`syntax_error`]
//! turns it into a lower-case message without a trailing period that says what was found
//! and, where it helps, how to fix it: quote a cron expression read as an alias, check the
//! indentation of a line. Messages this module does not know are kept, prefixed with
//! `invalid YAML: `.

use saphyr_parser::ScanError;

use super::YamlError;
use super::lines::Lines;

/// Hint for unknown aliases: a cron expression written without quotes starts with one.
const LITERAL_STAR: &str =
    " (quote the value if the `*` is meant literally, as in a cron expression)";

/// The error that `e` is reported as, positioned in the whole document.
pub(super) fn syntax_error(lines: &mut Lines<'_>, e: &ScanError) -> YamlError {
    let mut pos = lines.pos(e.marker());
    let info = e.info();
    let message = match info {
        "while parsing node, found unknown anchor" => unknown_alias(lines.alias_name(pos)),
        "while parsing a block mapping, did not find expected key" => {
            if let Some(col) = lines.dash_before(pos) {
                pos.col = col;
                "found a list item where a `key: value` entry was expected (check the \
                 indentation of this line)"
                    .to_owned()
            } else {
                describe_syntax_error(info)
            }
        }
        _ => describe_syntax_error(info),
    };
    YamlError { pos, message }
}

/// The message for an alias whose anchor is not defined before it.
fn unknown_alias(name: Option<String>) -> String {
    match name {
        Some(name) => format!(
            "unknown alias `*{name}`: no anchor `&{name}` is defined before it{LITERAL_STAR}"
        ),
        None => {
            format!("unknown alias: no anchor with this name is defined before it{LITERAL_STAR}")
        }
    }
}

/// Turns the parser's message into one meant for people.
fn describe_syntax_error(info: &str) -> String {
    let known = block_collection_message(info)
        .or_else(|| flow_collection_message(info))
        .or_else(|| scalar_message(info))
        .or_else(|| document_message(info));
    if let Some(text) = known {
        return text.to_owned();
    }
    if let Some(c) = info
        .strip_prefix("unexpected character: `")
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return format!(
            "unexpected character `{c}` (quote the value if it starts with this character)"
        );
    }
    format!("invalid YAML: {info}")
}

/// The message for a scanner error about block mappings and lists, and indentation.
fn block_collection_message(info: &str) -> Option<&'static str> {
    Some(match info {
        "mapping values are not allowed in this context" => {
            "found `:` where a mapping value is not allowed (check the indentation, or quote \
             the value if it contains `: `)"
        }
        "while parsing a block mapping, did not find expected key" => {
            "expected a `key: value` entry at this indentation (check the indentation of \
             this line)"
        }
        "while parsing a block collection, did not find expected '-' indicator" => {
            "expected a list item starting with `-` at this indentation (check the \
             indentation of this line)"
        }
        "block sequence entries are not allowed in this context" => {
            "found a list item (`-`) where none is allowed (start the list on its own \
             indented line)"
        }
        "mapping keys are not allowed in this context" => {
            "found a mapping key (`?`) where none is allowed"
        }
        "tab cannot be used as indentation"
        | "tabs disallowed within this context (block indentation)"
        | "tabs disallowed in this context"
        | "while scanning a plain scalar, found a tab" => {
            "found a tab where it is not allowed (indent YAML with spaces)"
        }
        "':' must be followed by a valid YAML whitespace" => {
            "expected a space after `:` (a tab alone is not accepted here)"
        }
        "'-' must be followed by a valid YAML whitespace" => {
            "expected a space after `-` (a tab alone is not accepted here)"
        }
        "invalid indentation" => {
            "invalid indentation (this is indented less than the block it is in)"
        }
        "simple key expected" | "simple key expect ':'" => {
            "expected `:` after a mapping key (a key must fit on one line and be at most \
             1024 characters long)"
        }
        _ => return None,
    })
}

/// The message for a scanner error about flow lists and mappings (`[...]`, `{...}`).
fn flow_collection_message(info: &str) -> Option<&'static str> {
    Some(match info {
        "while parsing a flow sequence, expected ',' or ']'" => {
            "expected `,` or `]` in this flow list"
        }
        "while parsing a flow mapping, did not find expected ',' or '}'" => {
            "expected `,` or `}` in this flow mapping"
        }
        "misplaced bracket" => "found a closing bracket that does not close anything",
        "illegal placement of ':' indicator" => {
            "found `:` where it is not allowed (is a flow collection missing its closing \
             bracket?)"
        }
        "recursion limit exceeded" => "flow lists and mappings are nested too deeply",
        "invalid indentation in flow construct" => {
            "a flow list or mapping (`[...]` or `{...}`) continues on a line that is not \
             indented enough"
        }
        "\"-\" is only valid inside a block" => {
            "found a `-` list item inside a flow list or mapping (`[...]` or `{...}`)"
        }
        "':' may not precede any of `[{` in flow mapping" => {
            "expected a space between `:` and `[` or `{` in a flow mapping"
        }
        _ => return None,
    })
}

/// The message for a scanner error about values: quoted, plain and block scalars, anchors and aliases.
fn scalar_message(info: &str) -> Option<&'static str> {
    Some(match info {
        "while parsing a node, did not find expected node content" => {
            "expected a value here, found none"
        }
        "while scanning a quoted scalar, found unexpected end of stream" => {
            "unterminated quoted string: the closing quote is missing"
        }
        "while scanning a quoted scalar, found unexpected document indicator" => {
            "unterminated quoted string: found a document marker before the closing quote"
        }
        "invalid indentation in quoted scalar" => {
            "a quoted string continues on a line that is not indented enough (or its \
             closing quote is missing)"
        }
        "invalid trailing content after double-quoted scalar" => {
            "unexpected text after the closing quote"
        }
        "while parsing a quoted scalar, found unknown escape character" => {
            "unknown escape sequence in a double-quoted string (use single quotes to write a \
             backslash as is)"
        }
        "while scanning an anchor or alias, did not find expected alphabetic or numeric character" => {
            "expected an anchor or alias name after `&` or `*` (quote the value if it starts \
             with a literal `*` or `&`, as a cron expression does)"
        }
        "plain scalar cannot start with '-' followed by ,[]{}" => {
            "an unquoted value cannot start with `-` followed by `,`, `[`, `]`, `{` or `}` \
             (quote it)"
        }
        "wrongly indented line in block scalar" => {
            "a line of this block string (`|` or `>`) is indented less than its first line"
        }
        "comment intercepting the multiline text" => {
            "a comment cannot interrupt a multi-line unquoted string"
        }
        "while scanning a block scalar, did not find expected comment or line break" => {
            "expected a line break or a comment after the block string indicator (`|` or `>`)"
        }
        "a block scalar content cannot start with a tab" => {
            "a block string (`|` or `>`) cannot start with a tab (indent it with spaces)"
        }
        "while scanning a block scalar, found an indentation indicator equal to 0" => {
            "the indentation indicator of a block string must be between 1 and 9, not 0"
        }
        _ => return None,
    })
}

/// The message for a scanner error about the document around the values: its start and end, directives, tags, comments and
/// characters.
fn document_message(info: &str) -> Option<&'static str> {
    Some(match info {
        "unexpected eof" => "unexpected end of the document",
        "invalid content after document end marker" => {
            "unexpected text after the document end marker `...`"
        }
        "found unprintable character" => "found a control character that YAML does not allow",
        "a byte order mark must not appear inside a document" => {
            "found a byte order mark (U+FEFF) inside the document"
        }
        "did not find expected <document start>" | "did not find expected <document-start>" => {
            "expected `---` to start the document after a `%` directive (quote values that \
             start with `%`)"
        }
        "missing explicit document end marker before directive" => {
            "a `%` directive is only allowed before the document (quote values that start \
             with `%`)"
        }
        "while scanning a directive, could not find expected directive name" => {
            "expected a directive name after `%` (quote values that start with `%`)"
        }
        "comments must be separated from other tokens by whitespace" => {
            "a comment (`#`) must be separated from the text before it by a space"
        }
        "while scanning a tag, did not find expected whitespace or line break" => {
            "expected a space after the tag"
        }
        "while parsing a tag, did not find expected tag URI" => "expected a tag name after `!`",
        "the handle wasn't declared" => {
            "undeclared tag handle (declare it with a `%TAG` directive)"
        }
        _ => return None,
    })
}
#[cfg(test)]
mod tests {
    use crate::syntax::testing::*;

    #[test]
    fn tab_alone_after_colon_is_reported() {
        let e = one_err("a:\tb\n");
        assert_eq!(e.pos, pos(1, 4));
        assert_eq!(
            e.message,
            "expected a space after `:` (a tab alone is not accepted here)"
        );
    }

    #[test]
    fn tab_indentation_is_a_syntax_error() {
        let e = one_err("a:\n\tb: 1\n");
        assert_eq!(e.pos, pos(2, 2));
        assert!(e.message.contains("tab"), "{}", e.message);
    }

    #[test]
    fn unquoted_cron_expressions_get_a_hint() {
        let e = one_err("cron: */5 * * * *\n");
        assert_eq!(e.pos, pos(1, 7));
        assert_eq!(
            e.message,
            "unknown alias `*/5`: no anchor `&/5` is defined before it (quote the value if the \
             `*` is meant literally, as in a cron expression)"
        );
        let e = one_err("cron: * * * * *\n");
        assert_eq!(e.pos, pos(1, 7));
        assert!(e.message.contains("cron expression"), "{}", e.message);
    }

    #[test]
    fn unknown_alias() {
        let e = one_err("a: 1\nb: *missing\n");
        assert_eq!(e.pos, pos(2, 4));
        assert_eq!(
            e.message,
            "unknown alias `*missing`: no anchor `&missing` is defined before it (quote the \
             value if the `*` is meant literally, as in a cron expression)"
        );
        // Used before it is defined.
        let e = one_err("a: *x\nb: &x 1\n");
        assert_eq!(e.pos, pos(1, 4));
        let e = one_err("a: [1, *nope]\n");
        assert_eq!(
            e.message,
            "unknown alias `*nope`: no anchor `&nope` is defined before it (quote the value if the \
             `*` is meant literally, as in a cron expression)"
        );
    }

    #[test]
    fn errors_from_before_a_syntax_error_are_kept() {
        let errors = errs("a: 1\na: 2\nb: [\n");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].pos, pos(2, 1));
    }

    #[test]
    fn syntax_error_positions() {
        let e = one_err("a: 1\nb: c: d\n");
        assert_eq!(e.pos, pos(2, 5));
        assert!(
            e.message
                .starts_with("found `:` where a mapping value is not allowed")
        );

        let e = one_err("a:\n  b: 1\n c: 2\n");
        assert_eq!(e.pos, pos(3, 2));
        assert!(
            e.message.starts_with("expected a `key: value` entry"),
            "{}",
            e.message
        );

        let e = one_err("a: 1\n- b\n");
        assert_eq!(e.pos, pos(2, 1));
        assert_eq!(
            e.message,
            "found a list item where a `key: value` entry was expected (check the indentation \
             of this line)"
        );

        let e = one_err("- a\nb: 1\n");
        assert_eq!(e.pos, pos(2, 1));
        assert!(
            e.message
                .starts_with("expected a list item starting with `-`")
        );

        let e = one_err("x: {a: 1 b: 2}\n");
        assert_eq!(e.pos, pos(1, 11));
        assert_eq!(e.message, "expected `,` or `}` in this flow mapping");

        let e = one_err("a: 'abc\n");
        assert_eq!(e.pos, pos(1, 4));
        assert_eq!(
            e.message,
            "unterminated quoted string: the closing quote is missing"
        );

        let e = one_err("a: @x\n");
        assert_eq!(e.pos, pos(1, 4));
        assert_eq!(
            e.message,
            "unexpected character `@` (quote the value if it starts with this character)"
        );

        let e = one_err("a: - b\n");
        assert_eq!(e.pos, pos(1, 4));

        let e = one_err("é: 1\n日本: x: y\n");
        assert_eq!(e.pos, pos(2, 6));

        let e = one_err("a: ]\n");
        assert_eq!(e.pos, pos(1, 4));
    }

    #[test]
    fn syntax_error_messages_are_lower_case_without_period() {
        for text in [
            "a: [1, 2\nb: 3\n",
            "a: {x: 1\n",
            "a: \"abc\nb: 1\n",
            "a: \"\\q\"\n",
            "a: &\n",
            "a: |\n  x\n y\n",
            "a:\n\tb: 1\n",
        ] {
            for e in errs(text) {
                let first = e.message.chars().next().expect("message");
                assert!(first.is_lowercase(), "{text:?}: {}", e.message);
                assert!(!e.message.ends_with('.'), "{text:?}: {}", e.message);
                assert!(
                    !e.message.contains("while parsing"),
                    "{text:?}: {}",
                    e.message
                );
            }
        }
    }
}
