//! Backfill definitions on disk -> a validated [`Registry`], in the declared order.
//!
//! `migrations/backfills/NAME.toml` declares one backfill; its batch statement is inline (`batch`)
//! or in the sibling `NAME.sql`. `migrations/backfills/ORDER` lists the names, one per line, in the
//! order `pgshift backfill` (no name, like `make backfill`) runs them. Everything that can be checked
//! without a database is checked here, before anything runs; a bad definition is an integrity error
//! (exit 5). The database-side checks (table, key column, index, statements) are in `inspect`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::{Catalog, Revision};
use crate::config::parse_duration;
use crate::error::{Error, Result};

/// Where definitions live, under the migrations directory.
pub const DIR: &str = "backfills";
/// The file declaring the run order.
pub const ORDER_FILE: &str = "ORDER";
/// Words of the `backfill` command line that cannot be backfill names.
pub const RESERVED: [&str; 5] = ["status", "resume", "cancel", "pause", "all"];

pub const DEFAULT_BATCH_SIZE: u32 = 1000;
/// The adaptive batch size aims at this batch duration: short row locks, bounded replica lag, and
/// headroom below the 100 ms a batch should never exceed.
pub const DEFAULT_TARGET_BATCH: Duration = Duration::from_millis(50);
pub const MAX_BATCH_SIZE: u32 = 1_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    description: String,
    table: String,
    key: String,
    batch: Option<String>,
    count: String,
    preview: Option<String>,
    setup: Option<String>,
    requires: Option<String>,
    batch_size: Option<u32>,
    pause: Option<String>,
    target_batch: Option<String>,
}

/// One backfill, validated as far as files allow.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Definition {
    pub name: String,
    pub description: String,
    /// `table` or `schema.table`, unquoted as written.
    pub table: String,
    pub key: String,
    /// The batch statement; `$1` is the exclusive lower and `$2` the inclusive upper key bound.
    #[serde(skip)]
    pub batch: String,
    /// Rows still to do: one integer.
    #[serde(skip)]
    pub count: String,
    /// A few rows to show before and after a sample batch in a dry run (`$1`/`$2` optional).
    #[serde(skip)]
    pub preview: Option<String>,
    /// Run once before the batches, in its own transaction; must be idempotent.
    #[serde(skip)]
    pub setup: Option<String>,
    pub requires: Option<Revision>,
    pub batch_size: u32,
    #[serde(with = "crate::config::millis")]
    pub pause: Duration,
    #[serde(with = "crate::config::millis")]
    pub target_batch: Duration,
    pub file: PathBuf,
}

impl Definition {
    /// The table name as SQL, each part quoted.
    pub fn table_sql(&self) -> String {
        self.table
            .split('.')
            .map(crate::sql::quote_ident)
            .collect::<Vec<_>>()
            .join(".")
    }

    pub fn key_sql(&self) -> String {
        crate::sql::quote_ident(&self.key)
    }
}

/// All definitions of a catalog, in the declared order.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Registry {
    pub dir: PathBuf,
    pub definitions: Vec<Definition>,
}

impl Registry {
    /// Read and validate `migrations_dir/backfills`. No such directory: no backfills.
    pub fn load(migrations_dir: &Path, catalog: &Catalog) -> Result<Registry> {
        let dir = migrations_dir.join(DIR);
        if !dir.is_dir() {
            return Ok(Registry {
                dir,
                definitions: Vec::new(),
            });
        }
        let mut problems = Vec::new();
        let order = read_order(&dir, &mut problems);
        let mut files = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect::<Vec<_>>();
        files.sort();
        let mut definitions = Vec::new();
        for file in &files {
            match load_one(file, catalog) {
                Ok(d) => definitions.push(d),
                Err(mut p) => problems.append(&mut p),
            }
        }
        let declared: BTreeSet<&str> = order.iter().map(String::as_str).collect();
        for d in &definitions {
            if !declared.contains(d.name.as_str()) {
                problems.push(format!(
                    "{}.toml: not listed in {ORDER_FILE}; add it where it should run",
                    d.name
                ));
            }
        }
        for name in &order {
            if !files.iter().any(|f| stem(f) == *name) {
                problems.push(format!(
                    "{ORDER_FILE}: lists {name:?} but there is no {name}.toml"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(invalid(&dir, &problems));
        }
        definitions.sort_by_key(|d| order.iter().position(|n| *n == d.name));
        Ok(Registry { dir, definitions })
    }

    pub fn get(&self, name: &str) -> Result<&Definition> {
        self.definitions
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "no backfill named {name:?} in {}; known: {}",
                    self.dir.display(),
                    if self.definitions.is_empty() {
                        "none".to_string()
                    } else {
                        self.names().join(", ")
                    }
                ))
            })
    }

    pub fn names(&self) -> Vec<String> {
        self.definitions.iter().map(|d| d.name.clone()).collect()
    }
}

fn invalid(dir: &Path, problems: &[String]) -> Error {
    Error::Integrity(format!(
        "{} problem(s) in backfill definitions {}; nothing was run:\n{}\n  Fix the definitions, then run the command again.",
        problems.len(),
        dir.display(),
        problems
            .iter()
            .map(|p| format!("  - {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_order(dir: &Path, problems: &mut Vec<String>) -> Vec<String> {
    let path = dir.join(ORDER_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("{ORDER_FILE}: cannot read it ({e}); list the backfill names there, one per line, in run order"));
            return Vec::new();
        }
    };
    let mut names: Vec<String> = Vec::new();
    for line in text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
    {
        if names.iter().any(|n| n == line) {
            problems.push(format!("{ORDER_FILE}: {line:?} is listed twice"));
        } else {
            names.push(line.to_string());
        }
    }
    names
}

/// Parse and check one `NAME.toml`; every problem found, not just the first.
fn load_one(file: &Path, catalog: &Catalog) -> std::result::Result<Definition, Vec<String>> {
    let name = stem(file);
    let label = format!("{name}.toml");
    let mut raw = read_raw(file, &label)?;
    let sibling_sql = std::fs::read_to_string(file.with_extension("sql")).ok();
    let mut problems = Vec::new();
    let mut problem = |m: String| problems.push(format!("{label}: {m}"));
    check_names(&name, &raw, &mut problem);
    let batch = batch_statement(&name, raw.batch.take(), sibling_sql, &mut problem);
    check_statements(&batch, &raw, &mut problem);
    let requires = required_revision(raw.requires.as_deref(), catalog, &mut problem);
    let pacing = pacing(&raw, &mut problem);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Definition {
        name,
        description: raw.description,
        table: raw.table,
        key: raw.key,
        batch,
        count: raw.count,
        preview: raw.preview,
        setup: raw.setup,
        requires,
        batch_size: pacing.batch_size,
        pause: pacing.pause,
        target_batch: pacing.target_batch,
        file: file.to_path_buf(),
    })
}

fn read_raw(file: &Path, label: &str) -> std::result::Result<RawDefinition, Vec<String>> {
    let text =
        std::fs::read_to_string(file).map_err(|e| vec![format!("{label}: cannot read it: {e}")])?;
    toml::from_str(&text).map_err(|e| {
        vec![format!(
            "{label}: {}",
            crate::text::one_line(&e.to_string(), 300)
        )]
    })
}

/// The backfill's own name, its table and its key column.
fn check_names(name: &str, raw: &RawDefinition, problem: &mut impl FnMut(String)) {
    if !is_name(name) || RESERVED.contains(&name) {
        problem(format!(
            "{name:?} is not a usable backfill name (lowercase letters, digits, - and _; not one of {})",
            RESERVED.join(", ")
        ));
    }
    if !raw.table.split('.').all(is_ident) || raw.table.split('.').count() > 2 {
        problem(format!(
            "table {:?} is not `table` or `schema.table`",
            raw.table
        ));
    }
    if !is_ident(&raw.key) {
        problem(format!("key {:?} is not a column name", raw.key));
    }
}

/// The batch statement, inline or in the sibling `NAME.sql` (exactly one of them).
fn batch_statement(
    name: &str,
    inline: Option<String>,
    sibling_sql: Option<String>,
    problem: &mut impl FnMut(String),
) -> String {
    match (inline, sibling_sql) {
        (Some(_), Some(_)) => {
            problem(format!(
                "the batch statement is both inline and in {name}.sql; keep one"
            ));
            String::new()
        }
        (Some(b), None) | (None, Some(b)) => b,
        (None, None) => {
            problem(format!(
                "no batch statement: add `batch = \"...\"` or a {name}.sql file"
            ));
            String::new()
        }
    }
}

/// Each statement is one statement with the parameters its role binds.
fn check_statements(batch: &str, raw: &RawDefinition, problem: &mut impl FnMut(String)) {
    if !batch.is_empty() {
        check_statement("batch", batch, &[1, 2], problem);
    }
    check_statement("count", &raw.count, &[], problem);
    if let Some(p) = &raw.preview
        && !params(p).is_empty()
    {
        check_statement("preview", p, &[1, 2], problem);
    }
    if let Some(s) = &raw.setup {
        check_statement("setup", s, &[], problem);
    }
}

/// `requires = "0003"`: a revision of the catalog (or base).
fn required_revision(
    requires: Option<&str>,
    catalog: &Catalog,
    problem: &mut impl FnMut(String),
) -> Option<Revision> {
    let r = requires?;
    match Revision::parse(r) {
        Some(rev) if rev.is_base() || catalog.contains(rev) => Some(rev),
        Some(rev) => {
            problem(format!(
                "requires = {r:?}: revision {rev} is not in the migrations catalog"
            ));
            None
        }
        None => {
            problem(format!(
                "requires = {r:?} is not a revision (e.g. \"0003\")"
            ));
            None
        }
    }
}

/// How big and how fast the batches are.
struct Pacing {
    batch_size: u32,
    pause: Duration,
    target_batch: Duration,
}

fn pacing(raw: &RawDefinition, problem: &mut impl FnMut(String)) -> Pacing {
    let batch_size = raw.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if batch_size == 0 || batch_size > MAX_BATCH_SIZE {
        problem(format!(
            "batch_size = {batch_size} is out of range 1..={MAX_BATCH_SIZE}"
        ));
    }
    let mut duration =
        |key: &str, v: Option<&String>, default: Duration| match v.map(|v| parse_duration(v)) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                problem(format!("{key}: {e}"));
                default
            }
        };
    let pause = duration("pause", raw.pause.as_ref(), Duration::ZERO);
    let target_batch = duration(
        "target_batch",
        raw.target_batch.as_ref(),
        DEFAULT_TARGET_BATCH,
    );
    if target_batch.is_zero() {
        problem("target_batch must be more than 0ms".into());
    }
    Pacing {
        batch_size,
        pause,
        target_batch,
    }
}

/// One statement using exactly the parameters `expected`.
fn check_statement(what: &str, sql: &str, expected: &[u32], problem: &mut impl FnMut(String)) {
    let n = crate::sql::statements(sql).len();
    if n != 1 {
        problem(format!(
            "{what} must be exactly one SQL statement, found {n}"
        ));
    }
    let used = params(sql);
    let want: BTreeSet<u32> = expected.iter().copied().collect();
    if used != want {
        let list = |s: &BTreeSet<u32>| {
            if s.is_empty() {
                "none".to_string()
            } else {
                s.iter()
                    .map(|p| format!("${p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let role = if expected.is_empty() {
            "takes no parameters"
        } else {
            "must use $1 (exclusive lower key bound) and $2 (inclusive upper key bound), e.g. `WHERE id > $1 AND id <= $2`"
        };
        problem(format!("{what} statement {role}; it uses {}", list(&used)));
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && s.len() <= 63
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The `$N` parameters a statement uses, outside strings, quoted identifiers and comments.
pub fn params(sql: &str) -> BTreeSet<u32> {
    let b = sql.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let skip_to = |from: usize, end: &[u8]| -> usize {
        b[from..]
            .windows(end.len())
            .position(|w| w == end)
            .map_or(b.len(), |p| from + p + end.len())
    };
    while i < b.len() {
        match b[i] {
            b'\'' => i = skip_to(i + 1, b"'"),
            b'"' => i = skip_to(i + 1, b"\""),
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_to(i + 2, b"\n"),
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_to(i + 2, b"*/"),
            b'$' => {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits > 0 {
                    if let Ok(n) = sql[i + 1..i + 1 + digits].parse() {
                        out.insert(n);
                    }
                    i += 1 + digits;
                } else {
                    // A dollar-quoted string: $tag$ ... $tag$.
                    let tag_len = b[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                        .count();
                    if b.get(i + 1 + tag_len) == Some(&b'$') {
                        let tag = &b[i..i + tag_len + 2];
                        i = skip_to(i + tag.len(), tag);
                    } else {
                        i += 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    #[test]
    fn params_ignore_strings_comments_and_dollar_quotes() {
        assert_eq!(
            params("UPDATE t SET a = '$3' WHERE id > $1 AND id <= $2 -- $4"),
            set(&[1, 2])
        );
        assert_eq!(
            params("SELECT $$ $5 $$, $fn$ $6 $fn$, \"$7\" /* $8 */"),
            set(&[])
        );
        assert_eq!(params("SELECT $10"), set(&[10]));
    }

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::write(dir.join(file), text).unwrap();
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        c.migrations.push(
            crate::catalog::Migration::new(Revision(3), "x", "select 1".into(), None).unwrap(),
        );
        c
    }

    const GOOD: &str = "description = \"d\"\ntable = \"t\"\nkey = \"id\"\nrequires = \"0003\"\n\
        batch = \"UPDATE t SET x = 1 WHERE id > $1 AND id <= $2\"\ncount = \"SELECT count(*) FROM t\"\n";

    #[test]
    fn loads_definitions_in_declared_order_with_sibling_sql() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR);
        std::fs::create_dir(&dir).unwrap();
        write(&dir, "b.toml", GOOD);
        write(
            &dir,
            "a.toml",
            "description = \"d\"\ntable = \"s.t\"\nkey = \"id\"\ncount = \"SELECT 1\"\npause = \"20ms\"\n",
        );
        write(
            &dir,
            "a.sql",
            "DELETE FROM s.t WHERE id > $1 AND id <= $2;\n",
        );
        write(&dir, ORDER_FILE, "# run order\nb\na\n");
        let r = Registry::load(tmp.path(), &catalog()).unwrap();
        assert_eq!(r.names(), vec!["b", "a"]);
        let a = r.get("a").unwrap();
        assert_eq!(a.pause, Duration::from_millis(20));
        assert_eq!(a.table_sql(), "\"s\".\"t\"");
        assert_eq!(r.get("b").unwrap().requires, Some(Revision(3)));
        assert!(r.get("zzz").is_err());
    }

    #[test]
    fn bad_definitions_are_all_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR);
        std::fs::create_dir(&dir).unwrap();
        write(
            &dir,
            "nobounds.toml",
            &GOOD.replace("WHERE id > $1 AND id <= $2", "WHERE x IS NULL"),
        );
        write(&dir, "badreq.toml", &GOOD.replace("0003", "0009"));
        write(&dir, "status.toml", GOOD);
        write(&dir, "typo.toml", &format!("{GOOD}batchsize = 3\n"));
        write(&dir, ORDER_FILE, "nobounds\nbadreq\nstatus\ntypo\nghost\n");
        let e = Registry::load(tmp.path(), &catalog())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nobounds.toml: batch statement must use $1"),
            "{e}"
        );
        assert!(e.contains("badreq.toml: requires = \"0009\""), "{e}");
        assert!(
            e.contains("status.toml: \"status\" is not a usable backfill name"),
            "{e}"
        );
        assert!(
            e.contains("typo.toml: TOML parse error") && e.contains("unknown field `batchsize`"),
            "{e}"
        );
        assert!(e.contains("lists \"ghost\""), "{e}");
    }

    #[test]
    fn unlisted_definition_and_missing_order_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR);
        std::fs::create_dir(&dir).unwrap();
        write(&dir, "a.toml", GOOD);
        let e = Registry::load(tmp.path(), &catalog())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ORDER: cannot read it"), "{e}");
        assert!(e.contains("a.toml: not listed in ORDER"), "{e}");
    }

    #[test]
    fn no_backfills_directory_is_an_empty_registry() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            Registry::load(tmp.path(), &catalog())
                .unwrap()
                .definitions
                .is_empty()
        );
    }
}
