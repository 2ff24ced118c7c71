//! Migration files on disk -> an ordered, validated catalog.
//!
//! Files are `NNNN_name.up.sql` with an optional `NNNN_name.down.sql`. Everything is validated before
//! anything runs: a bad catalog is an integrity error (exit 5) and touches nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A schema revision: the integer version of a migration. `Revision(0)` is `base` (nothing applied).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Revision(pub u32);

impl Revision {
    pub const BASE: Revision = Revision(0);

    pub fn is_base(self) -> bool {
        self == Self::BASE
    }

    /// Parse `0003`, `3` or `base`.
    pub fn parse(s: &str) -> Option<Revision> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("base") {
            return Some(Revision::BASE);
        }
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u32>()
            .ok()
            .filter(|v| *v <= i32::MAX as u32)
            .map(Revision)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_base() {
            f.write_str("base")
        } else {
            write!(f, "{:04}", self.0)
        }
    }
}

/// A `-- pgshift: allow RULE reason` directive: a lint finding the author accepted, with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Allow {
    pub rule: String,
    pub reason: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Migration {
    pub revision: Revision,
    pub name: String,
    #[serde(skip)]
    pub up: String,
    #[serde(skip)]
    pub down: Option<String>,
    /// `-- pgshift: no-transaction`: run statement by statement outside a transaction.
    pub no_transaction: bool,
    pub allows: Vec<Allow>,
    /// refinery's checksum of (name, version, up SQL), as stored in `refinery_schema_history`.
    pub checksum: u64,
    pub up_path: PathBuf,
    pub down_path: Option<PathBuf>,
}

impl Migration {
    pub fn new(
        revision: Revision,
        name: &str,
        up: String,
        down: Option<String>,
    ) -> Result<Self, String> {
        let directives = parse_directives(&up)?;
        let checksum = refinery_checksum(revision, name, &up)?;
        Ok(Migration {
            revision,
            name: name.to_string(),
            no_transaction: directives.no_transaction,
            allows: directives.allows,
            up,
            down,
            checksum,
            up_path: PathBuf::new(),
            down_path: None,
        })
    }

    pub fn is_reversible(&self) -> bool {
        self.down.is_some()
    }

    /// `0003_add_target_schema_tables`
    pub fn label(&self) -> String {
        format!("{}_{}", self.revision, self.name)
    }
}

/// Compute the checksum exactly as refinery does, so the refinery CLI agrees with us.
pub fn refinery_checksum(revision: Revision, name: &str, sql: &str) -> Result<u64, String> {
    refinery_core::Migration::unapplied(&format!("V{}__{}", revision.0, name), sql)
        .map(|m| m.checksum())
        .map_err(|e| format!("refinery rejects the name {name:?}: {e}"))
}

#[derive(Debug, Default)]
struct Directives {
    no_transaction: bool,
    allows: Vec<Allow>,
}

const DIRECTIVE: &str = "-- pgshift:";

/// Directives live in the leading comment block, one per line: `-- pgshift: no-transaction`,
/// `-- pgshift: allow RULE reason`. An unknown directive is an error, so a typo cannot silently
/// turn a CONCURRENTLY migration into a transactional one.
fn parse_directives(sql: &str) -> Result<Directives, String> {
    let mut d = Directives::default();
    for (i, line) in sql.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with("--") {
            break;
        }
        let Some(rest) = line.strip_prefix(DIRECTIVE) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        match words.next() {
            Some("no-transaction") => d.no_transaction = true,
            Some("allow") => {
                let rule = words.next().ok_or_else(|| {
                    format!("line {}: `allow` needs a rule name and a reason", i + 1)
                })?;
                let reason = words.collect::<Vec<_>>().join(" ");
                if reason.is_empty() {
                    return Err(format!(
                        "line {}: `allow {rule}` needs a reason after the rule name",
                        i + 1
                    ));
                }
                d.allows.push(Allow {
                    rule: rule.to_string(),
                    reason,
                });
            }
            other => {
                return Err(format!(
                    "line {}: unknown directive {:?} (known: no-transaction, allow RULE reason)",
                    i + 1,
                    other.unwrap_or("")
                ));
            }
        }
    }
    Ok(d)
}

/// One problem found in the migrations directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub problem: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "cannot read migrations directory {dir}: {reason}\n  Pass --migrations DIR or set `migrations` in the target's config."
    )]
    Unreadable { dir: PathBuf, reason: String },
    #[error("{} problem(s) in migrations directory {dir}; nothing was run:\n{}\n  Fix or remove these files, then run the command again.", problems.len(), problems.iter().map(|p| format!("  - {}: {}", p.file, p.problem)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        dir: PathBuf,
        problems: Vec<Problem>,
    },
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Catalog {
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
    /// Up files with no SQL yet (a template from `pgshift new`): listed by `status`, not part of
    /// `migrations`, and refused by `up` ([`Catalog::refuse_scaffolds`]).
    pub scaffolds: Vec<Scaffold>,
}

/// A migration whose up file holds only comments: "empty: fill it in".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Scaffold {
    pub revision: Revision,
    pub name: String,
    pub file: String,
}

const SCAFFOLD_PROBLEM: &str = "contains no SQL yet (empty: fill it in; only comments, e.g. a template from `pgshift new`): write the migration's SQL, or delete the file";

impl Catalog {
    pub fn head(&self) -> Revision {
        self.migrations
            .last()
            .map(|m| m.revision)
            .unwrap_or(Revision::BASE)
    }

    pub fn get(&self, rev: Revision) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&rev, |m| m.revision)
            .ok()
            .map(|i| &self.migrations[i])
    }

    /// An upgrade must not run past a migration that has no SQL yet: refuse while any exists.
    pub fn refuse_scaffolds(&self) -> Result<(), CatalogError> {
        if self.scaffolds.is_empty() {
            return Ok(());
        }
        Err(CatalogError::Invalid {
            dir: self.dir.clone(),
            problems: self
                .scaffolds
                .iter()
                .map(|s| Problem {
                    file: s.file.clone(),
                    problem: SCAFFOLD_PROBLEM.into(),
                })
                .collect(),
        })
    }

    pub fn contains(&self, rev: Revision) -> bool {
        rev.is_base() || self.get(rev).is_some()
    }

    /// Read and validate `dir`. A directory that does not exist is an empty catalog only when
    /// `allow_missing` (the TUI on a fresh checkout); for commands it is an error.
    pub fn load(dir: &Path) -> Result<Catalog, CatalogError> {
        let entries = std::fs::read_dir(dir).map_err(|e| CatalogError::Unreadable {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut files = Vec::new();
        let mut unreadable = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| CatalogError::Unreadable {
                dir: dir.to_path_buf(),
                reason: e.to_string(),
            })?;
            let path = entry.path();
            // The entry's type comes with the directory listing: no stat per regular file.
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false) || path.is_file(); // a symlink to a file
            if is_file {
                files.push(path);
            } else if let Some(why) = not_a_migration_file(&path) {
                unreadable.push(Problem {
                    file: entry.file_name().to_string_lossy().into_owned(),
                    problem: why,
                });
            }
        }
        files.sort();
        let mut catalog = match Catalog::from_files(&files) {
            Ok(c) if unreadable.is_empty() => c,
            Ok(_) => Catalog::default(),
            Err(CatalogError::Invalid { problems, .. }) => {
                unreadable.extend(problems);
                Catalog::default()
            }
            Err(e) => return Err(e),
        };
        if !unreadable.is_empty() {
            unreadable.sort_by(|a, b| a.file.cmp(&b.file));
            return Err(CatalogError::Invalid {
                dir: dir.to_path_buf(),
                problems: unreadable,
            });
        }
        catalog.dir = dir.to_path_buf();
        Ok(catalog)
    }

    /// Build a catalog from file paths (their content is read here). Pure except for the reads.
    pub fn from_files(files: &[PathBuf]) -> Result<Catalog, CatalogError> {
        let dir = files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut problems = Problems::default();
        let mut sides = Sides::default();
        for path in files {
            sides.add(path, &mut problems);
        }
        sides.check_pairs(&mut problems);
        let Sides {
            ups,
            downs,
            scaffolds,
            ..
        } = sides;
        let migrations = paired(ups, downs, &mut problems);
        let mut problems = problems.0;
        if !problems.is_empty() {
            // The catalog is refused anyway: list the unfinished migrations with the rest.
            for s in scaffolds.values() {
                problems.push(Problem {
                    file: s.file.clone(),
                    problem: SCAFFOLD_PROBLEM.into(),
                });
            }
            return Err(CatalogError::Invalid { dir, problems });
        }
        Ok(Catalog {
            dir,
            migrations,
            scaffolds: scaffolds.into_values().collect(),
        })
    }
}

/// What is wrong with the files, in the order found.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, file: &Path, msg: String) {
        self.0.push(Problem {
            file: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            problem: msg,
        })
    }
}

/// One side of a migration: its name, file and SQL.
type SqlFile = (String, PathBuf, String);

/// The migration files sorted by side and version, before they are paired.
#[derive(Default)]
struct Sides {
    ups: BTreeMap<u32, SqlFile>,
    downs: BTreeMap<u32, SqlFile>,
    /// Comment-only files: an up is a scaffold; a down is fine only next to a scaffold up.
    scaffolds: BTreeMap<u32, Scaffold>,
    empty_downs: Vec<(u32, PathBuf)>,
}

/// A migration file read: which side, version and name, and its text.
struct Read {
    is_up: bool,
    version: u32,
    name: String,
    content: String,
}

/// Read `path` as a migration file. `Ok(None)`: not a migration (a README, an editor file).
fn read_migration(path: &Path) -> Result<Option<Read>, String> {
    let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err("file name is not UTF-8".into());
    };
    if file_name.starts_with('.') || !file_name.ends_with(".sql") {
        return Ok(None);
    }
    let (stem, is_up) = if let Some(s) = file_name.strip_suffix(".up.sql") {
        (s, true)
    } else if let Some(s) = file_name.strip_suffix(".down.sql") {
        (s, false)
    } else {
        return Err(
            "a .sql file must end in .up.sql or .down.sql (e.g. 0004_add_index.up.sql)".into(),
        );
    };
    let (version, name) = parse_stem(stem)?;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let content = text_of(bytes)?;
    Ok(Some(Read {
        is_up,
        version,
        name,
        content,
    }))
}

impl Sides {
    fn add(&mut self, path: &Path, problems: &mut Problems) {
        let Read {
            is_up,
            version,
            name,
            content,
        } = match read_migration(path) {
            Ok(Some(read)) => read,
            Ok(None) => return,
            Err(msg) => return problems.add(path, msg),
        };
        if !has_sql(&content) {
            if is_up {
                let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
                self.scaffolds.insert(
                    version,
                    Scaffold {
                        revision: Revision(version),
                        name,
                        file: file.unwrap_or_default(),
                    },
                );
            } else {
                self.empty_downs.push((version, path.to_path_buf()));
            }
            return;
        }
        let side = if is_up {
            &mut self.ups
        } else {
            &mut self.downs
        };
        if let Some((other, _, _)) = side.get(&version) {
            let msg = format!(
                "duplicate version {:04}: also used by {:04}_{}",
                version, version, other
            );
            return problems.add(path, msg);
        }
        side.insert(version, (name, path.to_path_buf(), content));
    }

    /// Every down has its up (or a scaffold), with the same name; an empty down only next to a
    /// scaffold; a scaffold's version is not used by an up as well.
    fn check_pairs(&self, problems: &mut Problems) {
        for (version, path) in &self.empty_downs {
            if !self.scaffolds.contains_key(version) {
                problems.add(path, "contains no SQL (only whitespace or comments)".into());
            }
        }
        for (version, s) in &self.scaffolds {
            if let Some((_, path, _)) = self.ups.get(version) {
                problems.add(
                    path,
                    format!("duplicate version {version:04}: also used by {}", s.file),
                );
            }
        }
        for (version, (name, path, _)) in &self.downs {
            match self.ups.get(version) {
                None if self.scaffolds.contains_key(version) => {}
                None => problems.add(
                    path,
                    format!("down migration without an up ({version:04}_{name}.up.sql is missing)"),
                ),
                Some((up_name, _, _)) if up_name != name => problems.add(
                    path,
                    format!("name differs from its up migration {version:04}_{up_name}.up.sql"),
                ),
                _ => {}
            }
        }
    }
}

/// Each up with its down as a migration; transaction control inside either is a problem.
fn paired(
    ups: BTreeMap<u32, SqlFile>,
    mut downs: BTreeMap<u32, SqlFile>,
    problems: &mut Problems,
) -> Vec<Migration> {
    let mut migrations = Vec::with_capacity(ups.len());
    for (version, (name, up_path, up)) in ups {
        let down = downs.remove(&version);
        let down_path = down.as_ref().map(|d| d.1.clone());
        match Migration::new(Revision(version), &name, up, down.map(|d| d.2)) {
            Ok(mut m) => {
                let sides = [
                    (Some(&m.up), Some(&up_path)),
                    (m.down.as_ref(), down_path.as_ref()),
                ];
                for (sql, path) in sides {
                    if let (Some(sql), Some(path)) = (sql, path)
                        && let Some(msg) = transaction_control_problem(sql)
                    {
                        problems.add(path, msg);
                    }
                }
                m.up_path = up_path;
                m.down_path = down_path;
                migrations.push(m);
            }
            Err(msg) => problems.add(&up_path, msg),
        }
    }
    migrations
}

/// Why an entry that is not a regular file, but is named like a migration, cannot be one. `None`
/// for entries that do not look like migrations (subdirectories such as `backfills/`).
fn not_a_migration_file(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy();
    if name.starts_with('.') || !(name.ends_with(".up.sql") || name.ends_with(".down.sql")) {
        return None;
    }
    Some(match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(path) {
            Ok(to) => format!(
                "is a symlink to {}, which cannot be read ({})",
                to.display(),
                std::fs::metadata(path)
                    .err()
                    .map_or("not a regular file".into(), |e| e.to_string())
            ),
            Err(e) => format!("is a symlink that cannot be read: {e}"),
        },
        Ok(m) if m.is_dir() => "is a directory, not a migration file".into(),
        Ok(_) => "is not a regular file (a socket, FIFO or device)".into(),
        Err(e) => format!("cannot be read: {e}"),
    })
}

/// A migration file's bytes as text. PostgreSQL cannot take a NUL byte, and a byte order mark
/// would hide a first-line directive (`-- pgshift: no-transaction`) and break the first statement:
/// each is refused with its byte offset, before anything runs.
fn text_of(bytes: Vec<u8>) -> Result<String, String> {
    let utf16 = "save it as UTF-8 without a byte order mark";
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(format!(
            "not valid UTF-8: a UTF-16 byte order mark ({:02X} {:02X}) at byte offset 0; {utf16}",
            bytes[0], bytes[1]
        ));
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(
            "a UTF-8 byte order mark (EF BB BF) at byte offset 0: it would hide a first-line directive; remove it"
                .into(),
        );
    }
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        // ASCII saved as UTF-16 has a NUL next to every character.
        let looks_utf16 = bytes.len() >= 4
            && bytes
                .iter()
                .skip(at % 2)
                .step_by(2)
                .take(16)
                .all(|b| *b == 0);
        let hint = if looks_utf16 {
            format!(": it looks like UTF-16 without a byte order mark; {utf16}")
        } else {
            ": PostgreSQL cannot receive NUL bytes; remove it".into()
        };
        return Err(format!("a NUL byte at byte offset {at}{hint}"));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not valid UTF-8 (byte offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// A migration that runs in pgshift's transaction must not end it: the history row is written in
/// that transaction, and what ran before its own COMMIT would stay while history says otherwise.
fn transaction_control_problem(sql: &str) -> Option<String> {
    if parse_directives(sql).is_ok_and(|d| d.no_transaction) {
        return None;
    }
    let stmt = crate::sql::transaction_control(sql)?;
    Some(format!(
        "line {}: `{}` at top level: pgshift runs this migration in its own transaction and records it \
         there, so it must not begin, commit or roll back one. Remove it, or split the migration (a \
         `-- pgshift: no-transaction` first line runs each statement on its own)",
        stmt.line,
        crate::text::one_line(&stmt.text, 60)
    ))
}

pub(crate) fn parse_stem(stem: &str) -> Result<(u32, String), String> {
    let (digits, name) = stem.split_once('_').unwrap_or((stem, ""));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "file name must start with a version number (e.g. 0004_add_index.up.sql)".into(),
        );
    }
    let version: u32 = digits
        .parse()
        .ok()
        .filter(|v| *v > 0 && *v <= i32::MAX as u32)
        .ok_or_else(|| format!("version {digits} must be between 1 and {}", i32::MAX))?;
    if name.is_empty() {
        return Err("file name needs a name after the version (e.g. 0004_add_index.up.sql)".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "name {name:?} may only use lowercase letters, digits and _"
        ));
    }
    Ok((version, name.to_string()))
}

/// True when the text has anything besides whitespace and `--` / `/* */` comments.
fn has_sql(sql: &str) -> bool {
    !crate::sql::statements(sql).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    fn problems(dir: &Path) -> Vec<String> {
        match Catalog::load(dir) {
            Err(CatalogError::Invalid { problems, .. }) => problems
                .into_iter()
                .map(|p| format!("{}: {}", p.file, p.problem))
                .collect(),
            other => panic!("expected invalid catalog, got {other:?}"),
        }
    }

    #[test]
    fn revision_parses_padded_plain_and_base() {
        assert_eq!(Revision::parse("0003"), Some(Revision(3)));
        assert_eq!(Revision::parse("3"), Some(Revision(3)));
        assert_eq!(Revision::parse("base"), Some(Revision::BASE));
        assert_eq!(Revision::parse("-1"), None);
        assert_eq!(Revision::parse("head"), None);
        assert_eq!(Revision(3).to_string(), "0003");
        assert_eq!(Revision::BASE.to_string(), "base");
    }

    #[test]
    fn catalog_orders_pairs_and_marks_irreversible() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "0002_b.up.sql", b"select 2;");
        write(d.path(), "0001_a.up.sql", b"select 1;");
        write(d.path(), "0001_a.down.sql", b"select -1;");
        write(d.path(), "README.md", b"not a migration");
        let c = Catalog::load(d.path()).unwrap();
        assert_eq!(c.migrations.len(), 2);
        assert_eq!(c.migrations[0].label(), "0001_a");
        assert!(c.migrations[0].is_reversible());
        assert!(!c.migrations[1].is_reversible());
        assert_eq!(c.head(), Revision(2));
    }

    #[test]
    fn checksum_matches_refinery() {
        let m = Migration::new(
            Revision(1),
            "baseline",
            "create table t(id int);".into(),
            None,
        )
        .unwrap();
        let r =
            refinery_core::Migration::unapplied("V1__baseline", "create table t(id int);").unwrap();
        assert_eq!(m.checksum, r.checksum());
    }

    #[test]
    fn bad_files_are_all_reported() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "0001_a.up.sql", b"select 1;");
        write(d.path(), "0001_b.up.sql", b"select 1;");
        write(d.path(), "0002_empty.up.sql", b"  \n-- nothing\n");
        write(d.path(), "0003_bin.up.sql", &[0xff, 0xfe, 0x00]);
        write(d.path(), "add_things.up.sql", b"select 1;");
        write(d.path(), "0005_orphan.down.sql", b"select 1;");
        write(d.path(), "0006_x.sql", b"select 1;");
        write(d.path(), "0007_Bad-Name.up.sql", b"select 1;");
        write(d.path(), "0008_nul.up.sql", b"select 1;\n-- \0\n");
        write(d.path(), "0009_utf16.up.sql", b"s\0e\0l\0e\0c\0t\0 \x001\0");
        write(
            d.path(),
            "0010_bom.up.sql",
            b"\xEF\xBB\xBF-- pgshift: no-transaction\nselect 1;",
        );
        write(d.path(), "0011_le.up.sql", b"\xFF\xFEs\0");
        write(
            d.path(),
            "0012_commit.up.sql",
            b"create table a (id int);\ncommit;",
        );
        write(
            d.path(),
            "0012_commit.down.sql",
            b"drop table a;\nROLLBACK;",
        );
        write(
            d.path(),
            "0013_ok.up.sql",
            b"-- pgshift: no-transaction\nselect 1;\ncommit;",
        );
        std::fs::create_dir(d.path().join("0014_dir.up.sql")).unwrap();
        std::os::unix::fs::symlink("nowhere.sql", d.path().join("0015_dangling.up.sql")).unwrap();
        std::fs::create_dir(d.path().join("backfills")).unwrap();
        let p = problems(d.path()).join("\n");
        assert!(
            p.contains("0008_nul.up.sql: a NUL byte at byte offset 13: PostgreSQL"),
            "{p}"
        );
        assert!(
            p.contains("0009_utf16.up.sql: a NUL byte at byte offset 1: it looks like UTF-16"),
            "{p}"
        );
        assert!(
            p.contains("0010_bom.up.sql: a UTF-8 byte order mark (EF BB BF) at byte offset 0"),
            "{p}"
        );
        assert!(
            p.contains(
                "0011_le.up.sql: not valid UTF-8: a UTF-16 byte order mark (FF FE) at byte offset 0"
            ),
            "{p}"
        );
        assert!(
            p.contains("0012_commit.up.sql: line 2: `commit` at top level"),
            "{p}"
        );
        assert!(
            p.contains("0012_commit.down.sql: line 2: `ROLLBACK` at top level"),
            "{p}"
        );
        assert!(!p.contains("0013_ok"), "{p}");
        assert!(p.contains("0014_dir.up.sql: is a directory"), "{p}");
        assert!(
            p.contains("0015_dangling.up.sql: is a symlink to nowhere.sql, which cannot be read"),
            "{p}"
        );
        assert!(!p.contains("backfills"), "{p}");
        assert!(p.contains("0001_b.up.sql: duplicate version 0001"), "{p}");
        assert!(p.contains("0002_empty.up.sql: contains no SQL"), "{p}");
        assert!(p.contains("0003_bin.up.sql: not valid UTF-8"), "{p}");
        assert!(
            p.contains("add_things.up.sql: file name must start with a version"),
            "{p}"
        );
        assert!(
            p.contains("0005_orphan.down.sql: down migration without an up"),
            "{p}"
        );
        assert!(
            p.contains("0006_x.sql: a .sql file must end in .up.sql"),
            "{p}"
        );
        assert!(p.contains("0007_Bad-Name.up.sql: name"), "{p}");
    }

    #[test]
    fn directives_are_parsed_and_unknown_ones_refused() {
        let m = Migration::new(
            Revision(4),
            "idx",
            "-- pgshift: no-transaction\n-- pgshift: allow ban-drop-column legacy column unused since 2024\ncreate index concurrently i on t(x);".into(),
            None,
        )
        .unwrap();
        assert!(m.no_transaction);
        assert_eq!(m.allows[0].rule, "ban-drop-column");
        assert_eq!(m.allows[0].reason, "legacy column unused since 2024");
        let err = Migration::new(
            Revision(4),
            "idx",
            "-- pgshift: no-transactoin\nselect 1;".into(),
            None,
        )
        .unwrap_err();
        assert!(err.contains("unknown directive"), "{err}");
        let err = Migration::new(
            Revision(4),
            "idx",
            "-- pgshift: allow some-rule\nselect 1;".into(),
            None,
        )
        .unwrap_err();
        assert!(err.contains("needs a reason"), "{err}");
    }
}
