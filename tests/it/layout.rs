//! The module graph: arrows point down (shells → ops → plan/catalog/db → leaves), so no cycle
//! between top-level modules. Reads `use crate::...` and `crate::...` paths in `src/`; no database.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The identifiers right after `crate::`, including each item of `crate::{a, b::c}`.
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').map(|p| ident(p.trim())));
        } else {
            out.push(ident(rest));
        }
    }
    out
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g = Graph::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel.iter().next().unwrap().to_string_lossy();
        let top = first.trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Comments may name modules freely.
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for to in crate_paths(&code) {
            let module = src.join(&to);
            let is_module = module.is_dir() || module.with_extension("rs").is_file();
            if to != top && is_module {
                g.entry(top.clone()).or_default().insert(to);
            }
        }
    }
    g
}

/// A path from `from` to `to`, if there is one.
fn path(g: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(p) = stack.pop() {
        let last = p.last().unwrap().clone();
        if last == to && p.len() > 1 {
            return Some(p);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in g.get(&last).into_iter().flatten() {
            let mut q = p.clone();
            q.push(next.clone());
            stack.push(q);
        }
    }
    None
}

#[test]
fn no_import_cycles_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(
        g.get("cli").is_some_and(|d| d.contains("ops")),
        "the scan sees `cli -> ops`: {g:?}"
    );
    let cycles: Vec<String> = g
        .iter()
        .flat_map(|(from, deps)| deps.iter().map(move |to| (from, to)))
        .filter_map(|(from, to)| {
            path(&g, to, from).map(|back| format!("{from} -> {}", back.join(" -> ")))
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn core_modules_do_not_depend_on_the_shells_or_clap() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    for core in [
        "backfill", "lint", "runbook", "ops", "db", "plan", "catalog", "health",
    ] {
        let deps = g.get(core).cloned().unwrap_or_default();
        for shell in ["cli", "tui", "serve", "output"] {
            assert!(!deps.contains(shell), "{core} depends on {shell}");
        }
        let mut files = Vec::new();
        let dir = src.join(core);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(dir.with_extension("rs"));
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(!text.contains("clap::"), "{} uses clap", f.display());
        }
    }
}

/// Files whose SQL is not pgshift's own queries, relative to `src/`.
const SQL_ALLOWED: [(&str, &str); 3] = [
    ("db/", "where pgshift's SQL lives"),
    ("lint/", "SQL being linted: rule examples and fixtures"),
    (
        "tui/sample.rs",
        "fixture screens: migration files and sessions' queries",
    ),
];

const SQL_KEYWORDS: [&str; 14] = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "SET", "RESET", "WITH", "CREATE", "ALTER", "DROP",
    "BEGIN", "COMMIT", "ROLLBACK", "TRUNCATE",
];

/// String literals in `code` that start with an SQL keyword (upper case, as pgshift writes SQL),
/// with their line numbers. A test module at the bottom of a file (`#[cfg(test)]` onwards) and
/// comments do not count.
fn sql_literals(code: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = code
        .lines()
        .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect();
    let code = lines.join("\n");
    let mut out = Vec::new();
    for (i, _) in code.match_indices('"') {
        if code[..i].ends_with('\\') {
            continue;
        }
        let rest = code[i + 1..].trim_start();
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let after = rest[word.len()..].chars().next();
        if SQL_KEYWORDS.contains(&word.as_str())
            && after.is_none_or(|c| c.is_whitespace() || c == ';' || c == '"' || c == '\\')
        {
            let n = code[..i].matches('\n').count();
            out.push((n + 1, lines[n].trim().to_string()));
        }
    }
    out
}

#[test]
fn no_sql_string_literal_outside_src_db() {
    let sample = "const Q: &str = \"SELECT 1\";\nlet m = \"select a row\"; // \"DROP x\"\nx(\"\n    COMMIT\");\n#[cfg(test)]\nconst T: &str = \"DELETE FROM t\";\n";
    assert_eq!(
        sql_literals(sample)
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
        [1, 3]
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut in_db = 0;
    let mut outside = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&f).unwrap();
        let found = sql_literals(&text);
        if rel.starts_with("db/") {
            in_db += found.len();
        }
        // Test modules in their own files (`tests.rs`, `app_tests.rs`, ...).
        let test_file = rel.ends_with("tests.rs");
        if test_file || SQL_ALLOWED.iter().any(|(p, _)| rel.starts_with(p)) {
            continue;
        }
        outside.extend(
            found
                .into_iter()
                .map(|(n, l)| format!("src/{rel}:{n}: {l}")),
        );
    }
    assert!(in_db > 20, "the scan sees the queries in src/db/ ({in_db})");
    assert!(
        outside.is_empty(),
        "SQL outside src/db/ (make it a named constant or function there):\n{}",
        outside.join("\n")
    );
}
