//! `new "description"`: the next zero-padded version with up and down templates.

use std::path::{Path, PathBuf};

use crate::catalog::Revision;
use crate::error::{Error, Result};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Created {
    pub revision: Revision,
    pub up: PathBuf,
    pub down: PathBuf,
}

/// `"Add index to documents!"` -> `add_index_to_documents`
pub fn slug(description: &str) -> String {
    let mut out = String::new();
    for c in description.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').chars().take(60).collect()
}

pub fn create(dir: &Path, description: &str, no_transaction: bool) -> Result<Created> {
    let name = slug(description);
    if name.is_empty() {
        return Err(Error::Usage(
            "the description needs at least one letter or digit, e.g. pgshift new \"add index to documents\"".into(),
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    // File names only: an unfinished template elsewhere must not stop the next `new`.
    let existing = existing_stems(dir)?;
    if let Some((_, stem)) = existing
        .iter()
        .find(|(_, stem)| stem.split_once('_').map(|x| x.1) == Some(name.as_str()))
    {
        return Err(Error::Usage(format!(
            "a migration named {name} already exists ({stem}); pick another description"
        )));
    }
    let revision = Revision(existing.iter().map(|(v, _)| *v).max().unwrap_or(0) + 1);
    let width = existing
        .iter()
        .filter_map(|(_, stem)| stem.split('_').next().map(str::len))
        .max()
        .unwrap_or(4)
        .max(4);
    let stem = format!("{:0width$}_{name}", revision.0);
    let up = dir.join(format!("{stem}.up.sql"));
    let down = dir.join(format!("{stem}.down.sql"));
    let header = if no_transaction {
        "-- pgshift: no-transaction\n-- Runs statement by statement outside a transaction (e.g. CREATE INDEX CONCURRENTLY).\n-- Make each statement idempotent (IF NOT EXISTS): a retry runs them all again.\n"
    } else {
        "-- Runs in one transaction with lock_timeout; schema and history change together.\n"
    };
    let up_text = format!(
        "-- {description}\n{header}\n-- Write the upgrade here, e.g.\n-- ALTER TABLE documents ADD COLUMN reviewed_at timestamptz;\n"
    );
    let down_text =
        format!("-- Undo {stem}.up.sql\n\n-- ALTER TABLE documents DROP COLUMN reviewed_at;\n");
    for (path, text) in [(&up, up_text), (&down, down_text)] {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    Ok(Created { revision, up, down })
}

/// `(version, stem)` of every `NNNN_name.(up|down).sql` in `dir`. A `.sql` file whose name the
/// catalog would reject is an error (exit 5): the next version number cannot be trusted next to
/// it, and the new files would join a catalog that does not load.
fn existing_stems(dir: &Path) -> Result<Vec<(u32, String)>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    let mut stems = Vec::new();
    let mut malformed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        let Ok(n) = entry.file_name().into_string() else {
            malformed.push(format!(
                "{}: file name is not UTF-8",
                entry.file_name().to_string_lossy()
            ));
            continue;
        };
        if n.starts_with('.') || !n.ends_with(".sql") {
            continue; // READMEs, editor files: not migrations (as in the catalog)
        }
        let Some(stem) = n
            .strip_suffix(".up.sql")
            .or_else(|| n.strip_suffix(".down.sql"))
        else {
            malformed.push(format!("{n}: must end in .up.sql or .down.sql"));
            continue;
        };
        match crate::catalog::parse_stem(stem) {
            Ok((v, _)) => stems.push((v, stem.to_string())),
            Err(why) => malformed.push(format!("{n}: {why}")),
        }
    }
    if !malformed.is_empty() {
        malformed.sort();
        return Err(Error::Integrity(format!(
            "not writing a new migration next to malformed file names in {}:\n  - {}\n  Rename them to NNNN_name.up.sql / NNNN_name.down.sql (lowercase a-z, 0-9, _) or move them away, then run `pgshift new` again.",
            dir.display(),
            malformed.join("\n  - ")
        )));
    }
    Ok(stems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_is_lowercase_words_joined_by_underscores() {
        assert_eq!(slug("  Add index to Documents! "), "add_index_to_documents");
        assert_eq!(slug("---"), "");
    }

    #[test]
    fn new_takes_the_next_version_and_refuses_clashes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("0001_baseline.up.sql"), "select 1;").unwrap();
        let c = create(d.path(), "add variants", false).unwrap();
        assert_eq!(c.revision, Revision(2));
        assert!(c.up.ends_with("0002_add_variants.up.sql"));
        assert!(c.down.ends_with("0002_add_variants.down.sql"));
        let e = create(d.path(), "Add Variants", false).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
    }

    #[test]
    fn new_refuses_to_write_next_to_malformed_file_names() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("0001_baseline.up.sql"), "select 1;").unwrap();
        std::fs::write(d.path().join("0002-Add-X.up.sql"), "select 2;").unwrap();
        std::fs::write(d.path().join("V3__x.sql"), "select 3;").unwrap();
        std::fs::write(d.path().join("README.md"), "notes").unwrap();
        let e = create(d.path(), "add variants", false).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ExitCode::Integrity);
        let text = e.to_string();
        assert!(
            text.contains("0002-Add-X.up.sql")
                && text.contains("V3__x.sql")
                && !text.contains("README"),
            "{text}"
        );
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            4,
            "nothing was written"
        );
    }
}
