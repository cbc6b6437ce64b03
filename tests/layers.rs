//! The crate's layering, checked on its source: every module of `src/` (except the CLI in
//! `src/bin`, and `src/lib.rs`, which only declares and re-exports) imports only from its
//! own layer or lower ones, no two top-level modules depend on each other (directly or
//! through others), and no two submodules of one module do either (e.g. `cluster/kmeans`
//! and `cluster/samples`).
//!
//! An import is any `crate::x` or `super::x` path in code (`use` declarations and paths in
//! expressions or types; comments and string literals are skipped), resolved to the module
//! it names. Inherent `impl` blocks may live in a higher module than their type (`impl
//! Raster` in `array`): they name the lower module, which is allowed.
//!
//! The layers (see `src/lib.rs`): a module may import its own layer and the ones below.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules and their layer: 0 = core (no crate imports at all), 1 = error,
/// 2 = runtime, 3 = raster, 4 = array, 5 = cluster, 6 = notebook front-ends.
const LAYERS: &[(&str, u8)] = &[
    ("core", 0),
    ("error", 1),
    // runtime: chunk grids, resources and pools, cgroup parsing, cancelling, progress,
    // observers, the executor
    ("runtime", 2),
    ("raster", 3),
    ("array", 4),
    ("cluster", 5),
    ("datasets", 6),
    ("display", 6),
    ("profile", 6),
    ("dashboard", 6),
    ("slurm", 6),
    ("distributed", 6),
];

/// Back edges tolerated for now, as `(from, to, why)`; `from` and `to` are top-level
/// modules (`raster`) or submodules (`cluster::samples`). Keep this empty: an entry is
/// debt, and it also hides the cycle the edge closes.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// Names re-exported at the crate root (`crate::Result`) and the module they come from.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("CancelToken", "runtime"),
];

/// Crate-root names that are other crates (`crate::ndarray`).
const EXTERNAL: &[&str] = &["ndarray"];

/// Modules declared in `lib.rs` for users only (re-exports under old or short paths); code
/// inside the crate must name the real module, so that its layer is known.
const ALIASES: &[&str] = &["prelude"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Path, // `::`
    Punct(char),
}

/// Tokens of Rust source with their line numbers; comments, string, byte-string, raw-string
/// and char literals are dropped (lifetimes become a `'` and an identifier).
fn tokens(src: &str) -> Vec<(usize, Tok<'_>)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let count_lines = |from: usize, to: usize| b[from..to].iter().filter(|&&c| c == b'\n').count();
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let (start, mut depth) = (i, 0usize);
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += count_lines(start, i);
        } else if let Some(hashes) = raw_string_start(&b[i..]) {
            // r"..", r#".."#, br#".."#: ends at a quote followed by as many hashes
            let start = i;
            i += b[i..].iter().position(|&c| c == b'"').unwrap() + 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i = (i + close.len()).min(b.len());
            line += count_lines(start, i);
        } else if c == b'"' || (c == b'b' && b.get(i + 1) == Some(&b'"')) {
            let start = i;
            i += if c == b'b' { 2 } else { 1 };
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            line += count_lines(start, i);
        } else if c == b'\'' || (c == b'b' && b.get(i + 1) == Some(&b'\'')) {
            // a char literal ('a', '\n', '\'', 'é') or a lifetime ('a)
            let q = if c == b'b' { i + 1 } else { i };
            let rest = &src[q + 1..];
            let mut chars = rest.char_indices();
            match chars.next() {
                Some((_, '\\')) => {
                    let end = rest[1..].find('\'').map_or(rest.len(), |k| k + 2);
                    i = q + 1 + end;
                }
                Some((_, ch)) if rest[ch.len_utf8()..].starts_with('\'') => {
                    i = q + 1 + ch.len_utf8() + 1;
                }
                _ => {
                    out.push((line, Tok::Punct('\'')));
                    i = q + 1;
                }
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || !c.is_ascii() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || !b[i].is_ascii())
            {
                i += 1;
            }
            out.push((line, Tok::Ident(&src[start..i])));
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                if b[i] == b'.' && b.get(i + 1) == Some(&b'.') {
                    break;
                }
                i += 1;
            }
        } else if b[i..].starts_with(b"::") {
            out.push((line, Tok::Path));
            i += 2;
        } else {
            out.push((line, Tok::Punct(c as char)));
            i += 1;
        }
    }
    out
}

/// `Some(number of #)` when `b` starts a raw (byte) string literal.
fn raw_string_start(b: &[u8]) -> Option<usize> {
    let rest = b.strip_prefix(b"br").or_else(|| b.strip_prefix(b"r"))?;
    let hashes = rest.iter().take_while(|&&c| c == b'#').count();
    (rest.get(hashes) == Some(&b'"')).then_some(hashes)
}

/// Paths of a use-tree or path starting at `toks[i]`, as identifier lists; braces are
/// expanded (`a::{b, c::d}` gives `a::b` and `a::c::d`). Stops at anything else.
fn use_tree(toks: &[(usize, Tok<'_>)], mut i: usize, prefix: Vec<String>) -> Vec<Vec<String>> {
    let mut path = prefix;
    loop {
        match toks.get(i).map(|t| t.1) {
            Some(Tok::Ident(name)) => {
                path.push(name.to_string());
                i += 1;
                if toks.get(i).map(|t| t.1) != Some(Tok::Path) {
                    return vec![path];
                }
                i += 1;
            }
            Some(Tok::Punct('*')) => return vec![path],
            Some(Tok::Punct('{')) => {
                let mut out = Vec::new();
                let mut depth = 0usize;
                let mut item_start = true;
                i += 1;
                while let Some(&(_, t)) = toks.get(i) {
                    match t {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') if depth == 0 => break,
                        Tok::Punct('}') => depth -= 1,
                        Tok::Punct(',') if depth == 0 => item_start = true,
                        _ if item_start => {
                            out.extend(use_tree(toks, i, path.clone()));
                            item_start = false;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                return out;
            }
            _ => return vec![path],
        }
    }
}

/// One source file: its module path (`["cluster", "kmeans"]`) and text.
struct File {
    rel: String,
    module: Vec<String>,
    text: String,
}

/// A resolved reference: from file `rel` line `line` to module path `target`.
struct Import {
    rel: String,
    line: usize,
    from: Vec<String>,
    target: Vec<String>,
}

/// Every `crate::` and `super::` path of `file`, resolved to absolute module paths.
fn imports(file: &File) -> Vec<Import> {
    let toks = tokens(&file.text);
    let mut out = Vec::new();
    // inline modules (`mod tests { .. }`) as (name, brace depth outside them)
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let (line, t) = toks[i];
        let after_path = i > 0 && toks[i - 1].1 == Tok::Path;
        match t {
            Tok::Ident("mod") => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) =
                    (toks.get(i + 1).map(|t| t.1), toks.get(i + 2).map(|t| t.1))
                {
                    inline.push((name.to_string(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|m| m.1 == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(kw @ ("crate" | "super"))
                if !after_path && toks.get(i + 1).map(|t| t.1) == Some(Tok::Path) =>
            {
                let here: Vec<String> = file
                    .module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|m| m.0.clone()))
                    .collect();
                let mut base = if kw == "crate" {
                    Vec::new()
                } else {
                    here.clone()
                };
                let mut j = i;
                if kw == "super" {
                    while toks.get(j).map(|t| t.1) == Some(Tok::Ident("super"))
                        && toks.get(j + 1).map(|t| t.1) == Some(Tok::Path)
                    {
                        base.pop();
                        j += 2;
                    }
                } else {
                    j += 2;
                }
                for target in use_tree(&toks, j, base) {
                    out.push(Import {
                        rel: file.rel.clone(),
                        line,
                        from: here.clone(),
                        target,
                    });
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Strongly connected components with more than one node.
fn cycles(edges: &BTreeMap<(String, String), Vec<String>>) -> Vec<BTreeSet<String>> {
    let nodes: BTreeSet<&String> = edges.keys().flat_map(|(a, b)| [a, b]).collect();
    let reach = |from: &String| {
        let mut seen = BTreeSet::from([from.clone()]);
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for (a, b) in edges.keys() {
                if *a == n && seen.insert(b.clone()) {
                    todo.push(b.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> = nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for n in &nodes {
        let scc: BTreeSet<String> = nodes
            .iter()
            .filter(|m| reach[*n].contains(**m) && reach[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        if scc.len() > 1 && !out.contains(&scc) {
            out.push(scc);
        }
    }
    out
}

/// Everything wrong with the layering of `files`, one line each, but for the back edges
/// in `allowances`.
fn check(files: &[File], allowances: &[(&str, &str, &str)]) -> Vec<String> {
    let allowed = |from: &str, to: &str| allowances.iter().any(|a| a.0 == from && a.1 == to);
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    // submodules that exist, per top-level module
    let mut children: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        if let Some(top) = f.module.first() {
            if !layer.contains_key(top.as_str()) {
                problems.push(format!(
                    "{}: module `{top}` has no layer: add it to LAYERS in tests/layers.rs",
                    f.rel
                ));
            }
            if let Some(sub) = f.module.get(1) {
                children.entry(top.clone()).or_default().insert(sub.clone());
            }
        }
    }
    let mut top_edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut sub_edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in files.iter().filter(|f| !f.module.is_empty()) {
        for imp in imports(f) {
            let at = format!("{}:{}", imp.rel, imp.line);
            let shown = format!("crate::{}", imp.target.join("::"));
            let Some(first) = imp.target.first().map(String::as_str) else {
                continue;
            };
            let to = if let Some(&(_, m)) = ROOT_ITEMS.iter().find(|r| r.0 == first) {
                m
            } else if EXTERNAL.contains(&first) || first == "*" {
                continue;
            } else if ALIASES.contains(&first) {
                problems.push(format!(
                    "{at}: `{shown}` goes through an alias module; name the real module"
                ));
                continue;
            } else if layer.contains_key(first) {
                first
            } else {
                problems.push(format!(
                    "{at}: `{shown}` names no known module (add it to LAYERS or ROOT_ITEMS)"
                ));
                continue;
            };
            let from = imp.from[0].as_str();
            if from != to {
                let locations = top_edges
                    .entry((from.to_string(), to.to_string()))
                    .or_default();
                if locations.last() != Some(&at) {
                    locations.push(at);
                }
                continue;
            }
            // within one module: sibling submodules (the parent's own items are shared)
            let (Some(a), Some(b)) = (imp.from.get(1), imp.target.get(1)) else {
                continue;
            };
            if a != b && children.get(from).is_some_and(|c| c.contains(b)) {
                let locations = sub_edges
                    .entry((format!("{from}::{a}"), format!("{from}::{b}")))
                    .or_default();
                if locations.last() != Some(&at) {
                    locations.push(at);
                }
            }
        }
    }
    for ((from, to), at) in &top_edges {
        let (lf, lt) = (layer[from.as_str()], layer[to.as_str()]);
        if lt > lf && !allowed(from, to) {
            problems.push(format!(
                "back edge: {from} (layer {lf}) imports {to} (layer {lt}) at {}",
                at.join(", ")
            ));
        }
    }
    let keep = |edges: BTreeMap<(String, String), Vec<String>>| {
        edges
            .into_iter()
            .filter(|((a, b), _)| !allowed(a, b))
            .collect::<BTreeMap<_, _>>()
    };
    let (top_edges, sub_edges) = (keep(top_edges), keep(sub_edges));
    for (kind, edges) in [("modules", &top_edges), ("submodules", &sub_edges)] {
        for scc in cycles(edges) {
            let inside: Vec<String> = edges
                .iter()
                .filter(|((a, b), _)| scc.contains(a) && scc.contains(b))
                .map(|((a, b), at)| format!("{a} -> {b} ({})", at[0]))
                .collect();
            problems.push(format!(
                "cycle between {kind} {{{}}}: {}",
                scc.iter().cloned().collect::<Vec<_>>().join(", "),
                inside.join("; ")
            ));
        }
    }
    problems
}

/// Allowed back edges that no longer occur (the table must shrink as they are removed).
fn stale_allowances(files: &[File]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    for f in files.iter().filter(|f| !f.module.is_empty()) {
        for imp in imports(f) {
            let Some(to) = imp.target.first() else {
                continue;
            };
            let to = ROOT_ITEMS
                .iter()
                .find(|r| r.0 == to)
                .map_or(to.as_str(), |r| r.1);
            seen.insert((imp.from[0].clone(), to.to_string()));
            if let (Some(a), Some(b)) = (imp.from.get(1), imp.target.get(1)) {
                let top = &imp.from[0];
                seen.insert((format!("{top}::{a}"), format!("{to}::{b}")));
            }
        }
    }
    ALLOWED
        .iter()
        .filter(|a| !seen.contains(&(a.0.to_string(), a.1.to_string())))
        .map(|a| {
            format!(
                "ALLOWED lists {} -> {}, which no longer occurs: remove it",
                a.0, a.1
            )
        })
        .collect()
}

/// The crate's source files outside `src/bin`, with their module paths.
fn source_files() -> Vec<File> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    walk(&src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&src).expect("under src");
            let mut module: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if module.first().is_some_and(|m| m == "bin") {
                return None;
            }
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            Some(File {
                rel: format!("src/{}", rel.display()),
                module,
                text: std::fs::read_to_string(&p).expect("read source"),
            })
        })
        .collect()
}

#[test]
fn modules_import_only_their_own_or_lower_layers() {
    let files = source_files();
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut problems = check(&files, ALLOWED);
    problems.extend(stale_allowances(&files));
    assert!(
        problems.is_empty(),
        "{} layering problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

fn file(rel: &str, module: &[&str], text: &str) -> File {
    File {
        rel: rel.into(),
        module: module.iter().map(|s| s.to_string()).collect(),
        text: text.into(),
    }
}

/// The check itself: it must see back edges and cycles written in every way the crate
/// writes imports, and nothing in comments or strings.
#[test]
fn the_check_finds_back_edges_and_cycles() {
    let files = [
        file(
            "src/raster/mod.rs",
            &["raster"],
            "//! Uses [`crate::array::LazyArray`] in docs only.\n\
             use crate::{error::Result, core::fmt};\n\
             mod tests { use super::*; fn f() { let s = \"crate::display\"; let c = '\"'; } }\n\
             fn band<'a>(x: &'a str) -> crate::array::LazyArray { todo!() }\n",
        ),
        file(
            "src/error.rs",
            &["error"],
            "pub struct E(crate::runtime::grid::Window);\n",
        ),
        file(
            "src/runtime/grid.rs",
            &["runtime", "grid"],
            "use crate::error::E;\n",
        ),
        file("src/core/mod.rs", &["core"], "pub mod fmt;\n"),
        file("src/core/fmt.rs", &["core", "fmt"], "/* crate::raster */\n"),
        file("src/array/mod.rs", &["array"], "mod ops;\n"),
        file("src/cluster/mod.rs", &["cluster"], "mod a; mod b;\n"),
        file("src/cluster/a.rs", &["cluster", "a"], "use super::b::X;\n"),
        file(
            "src/cluster/b.rs",
            &["cluster", "b"],
            "fn f() { super::a::g(); super::super::raster::h(); }\n",
        ),
    ];
    let problems = check(&files, &[]);
    let text = problems.join("\n");
    assert!(
        text.contains("back edge: raster (layer 3) imports array (layer 4) at src/raster/mod.rs:4"),
        "{text}"
    );
    assert!(
        text.contains("back edge: error (layer 1) imports runtime (layer 2) at src/error.rs:1"),
        "{text}"
    );
    assert!(
        text.contains("cycle between modules {error, runtime}"),
        "{text}"
    );
    assert!(
        text.contains("cycle between submodules {cluster::a, cluster::b}"),
        "{text}"
    );
    assert!(!text.contains("display"), "{text}");
    assert!(!text.contains("core (layer 0) imports"), "{text}");
    assert_eq!(problems.len(), 4, "{text}");
}
