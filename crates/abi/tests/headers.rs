//! Checks the C headers of libneo (`user/libneo/include`) against the ABI
//! crate: every `(name, value)` of `c_header_table(h)` must be `#define`d in
//! header `h` with that value, and no `#define` in those headers may give one
//! of the table's names a different value.

use neoos_abi::{c_header_table, C_HEADERS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../user/libneo/include")
}

/// Parses a C integer literal: decimal, `0x` hexadecimal, `0` octal, optional
/// leading `-`, optional `u`/`l` suffixes, optional surrounding parentheses.
fn parse_value(text: &str) -> Option<i64> {
    let mut t = text.trim();
    while t.starts_with('(') && t.ends_with(')') {
        t = t[1..t.len() - 1].trim();
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.trim()),
        None => (false, t),
    };
    let body = body.trim_end_matches(['u', 'U', 'l', 'L']);
    let magnitude = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        u64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse::<u64>().ok()?
    };
    let v = i64::try_from(magnitude).ok()?;
    Some(if neg { -v } else { v })
}

/// Strips `/* ... */` and `// ...` comments.
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                match rest[b + 2..].find("*/") {
                    Some(e) => {
                        out.push(' ');
                        rest = &rest[b + 2 + e + 2..];
                    }
                    None => return out,
                }
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                match rest[l..].find('\n') {
                    Some(e) => rest = &rest[l + e..],
                    None => return out,
                }
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// Every `#define NAME VALUE` of the header file, with its raw value text, in order.
fn defines(header: &str) -> Vec<(String, String)> {
    let path = include_dir().join(header);
    let src = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    defines_in(&src)
}

/// Every object-like `#define NAME VALUE` of C source text, in order.
fn defines_in(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in strip_comments(src).lines() {
        let l = line.trim_start();
        let Some(rest) = l.strip_prefix('#') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix("define") else {
            continue;
        };
        if !rest.starts_with(|c: char| c.is_whitespace()) {
            continue;
        }
        let rest = rest.trim_start();
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after = &rest[name_end..];
        if after.starts_with('(') {
            continue; // function-like macro
        }
        out.push((name.to_string(), after.trim().to_string()));
    }
    out
}

#[test]
fn the_checked_headers_exist() {
    for h in C_HEADERS {
        let p = include_dir().join(h);
        assert!(p.is_file(), "missing header {}", p.display());
    }
}

#[test]
fn every_table_constant_is_defined_with_the_table_value() {
    let mut problems = Vec::new();
    for h in C_HEADERS {
        let found: BTreeMap<String, String> = defines(h).into_iter().collect();
        for (name, want) in c_header_table(h) {
            match found.get(*name) {
                None => problems.push(format!("{h}: {name} is not #defined (want {want})")),
                Some(text) => match parse_value(text) {
                    None => problems.push(format!(
                        "{h}: {name} is `{text}`, not a plain integer (want {want})"
                    )),
                    Some(v) if v != *want => {
                        problems.push(format!("{h}: {name} is {v}, want {want}"))
                    }
                    Some(_) => {}
                },
            }
        }
    }
    assert!(
        problems.is_empty(),
        "header mismatches:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_define_in_the_headers_contradicts_the_table() {
    // Every define of a table name, in any checked header (including repeated
    // or conditional definitions), must carry the table value.
    let mut table: BTreeMap<&str, i64> = BTreeMap::new();
    for h in C_HEADERS {
        for (name, v) in c_header_table(h) {
            if let Some(old) = table.insert(name, *v) {
                assert_eq!(old, *v, "the ABI tables disagree about {name}");
            }
        }
    }
    let mut problems = Vec::new();
    for h in C_HEADERS {
        for (name, text) in defines(h) {
            if let Some(want) = table.get(name.as_str()) {
                match parse_value(&text) {
                    Some(v) if v == *want => {}
                    Some(v) => problems.push(format!("{h}: #define {name} {v}, table says {want}")),
                    None => problems.push(format!(
                        "{h}: #define {name} `{text}` is not a plain integer (table says {want})"
                    )),
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "contradicting defines:\n{}",
        problems.join("\n")
    );
}

#[test]
fn value_parser_reads_the_c_literal_forms() {
    assert_eq!(parse_value("42"), Some(42));
    assert_eq!(parse_value("-3"), Some(-3));
    assert_eq!(parse_value("(-3)"), Some(-3));
    assert_eq!(parse_value("0x40"), Some(0x40));
    assert_eq!(parse_value("01000"), Some(0o1000));
    assert_eq!(parse_value("0"), Some(0));
    assert_eq!(parse_value("4096UL"), Some(4096));
    assert_eq!(parse_value("((void *)-1)"), None);
}

#[test]
fn define_scanner_skips_comments_and_function_like_macros() {
    let src = "/* #define A 1 */\n#define B 2 // #define C 3\n#define F(x) (x)\n  #  define D (0x10)\n#defineX 5\n";
    let got = defines_in(src);
    let want = vec![
        ("B".to_string(), "2".to_string()),
        ("D".to_string(), "(0x10)".to_string()),
    ];
    assert_eq!(got, want);
}
