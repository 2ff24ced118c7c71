//! The `[lint]` section of the config: the baseline (`start_after`) and the thresholds below which
//! a lock finding on a live table is harmless.
//!
//! ```toml
//! [lint]
//! start_after = "0042"          # migrations at or below it are never linted (adopted history)
//! small_table_rows = 10000      # below both thresholds a lock finding is `info`
//! small_table_size = "10MB"
//! long_transaction = "10s"      # open transactions older than this on a table are named
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::catalog::Revision;
use crate::config::Loaded;
use crate::error::{Error, Result};

pub const DEFAULT_SMALL_ROWS: u64 = 10_000;
pub const DEFAULT_SMALL_BYTES: u64 = 10 * 1024 * 1024;
pub const DEFAULT_LONG_TRANSACTION: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Settings {
    /// Migrations at or below this revision are never linted.
    pub start_after: Option<Revision>,
    /// A table with at most this many rows and bytes is small: its lock findings are `info`.
    pub small_table_rows: u64,
    pub small_table_bytes: u64,
    #[serde(with = "crate::config::millis")]
    pub long_transaction: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            start_after: None,
            small_table_rows: DEFAULT_SMALL_ROWS,
            small_table_bytes: DEFAULT_SMALL_BYTES,
            long_transaction: DEFAULT_LONG_TRANSACTION,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    start_after: Option<toml::Value>,
    small_table_rows: Option<u64>,
    small_table_size: Option<toml::Value>,
    long_transaction: Option<String>,
}

impl Settings {
    /// The `[lint]` section of the loaded config (defaults without one). A bad value is a config
    /// error (exit 2) naming the key.
    pub fn from_config(loaded: &Loaded) -> Result<Settings> {
        let Some(table) = &loaded.file.lint else {
            return Ok(Settings::default());
        };
        let bad = |message: String| Error::Config {
            path: loaded.path.clone().unwrap_or_default(),
            message: format!("[lint]: {message}"),
        };
        let raw: Raw = table.clone().try_into().map_err(|e| bad(format!("{e}")))?;
        let mut s = Settings::default();
        if let Some(v) = raw.start_after {
            let text = match &v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                other => other.type_str().to_string(),
            };
            s.start_after = Some(Revision::parse(&text).ok_or_else(|| {
                bad(format!(
                    "start_after = {text:?}: not a revision (write it as in the file names, e.g. \"0042\")"
                ))
            })?);
        }
        if let Some(rows) = raw.small_table_rows {
            s.small_table_rows = rows;
        }
        if let Some(v) = raw.small_table_size {
            s.small_table_bytes = match &v {
                toml::Value::Integer(i) if *i >= 0 => *i as u64,
                toml::Value::String(text) => parse_size(text).ok_or_else(|| {
                    bad(format!(
                        "small_table_size = {text:?}: not a size (e.g. \"10MB\", \"512kB\", \"1GB\")"
                    ))
                })?,
                other => {
                    return Err(bad(format!(
                        "small_table_size is a {}: write a size such as \"10MB\"",
                        other.type_str()
                    )));
                }
            };
        }
        if let Some(text) = raw.long_transaction {
            s.long_transaction = crate::config::parse_duration(&text)
                .map_err(|e| bad(format!("long_transaction = {text:?}: {e}")))?;
        }
        Ok(s)
    }

    /// Whether lint skips `revision` (at or below the baseline).
    pub fn skips(&self, revision: Revision) -> bool {
        self.start_after.is_some_and(|base| revision <= base)
    }
}

/// `10MB`, `10 MB`, `512kB`, `1GB`, `4096` (bytes); units are powers of 1024, as PostgreSQL's.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        "tb" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(toml: &str) -> Loaded {
        Loaded {
            file: toml::from_str(toml).unwrap(),
            path: Some("pgshift.toml".into()),
            ..Loaded::default()
        }
    }

    #[test]
    fn reads_the_lint_section_with_defaults() {
        assert_eq!(
            Settings::from_config(&Loaded::default()).unwrap(),
            Settings::default()
        );
        let s = Settings::from_config(&loaded(
            "[lint]\nstart_after = \"0042\"\nsmall_table_rows = 500\nsmall_table_size = \"1 MB\"\nlong_transaction = \"30s\"\n",
        ))
        .unwrap();
        assert_eq!(s.start_after, Some(Revision(42)));
        assert_eq!((s.small_table_rows, s.small_table_bytes), (500, 1 << 20));
        assert_eq!(s.long_transaction, Duration::from_secs(30));
        assert!(s.skips(Revision(42)) && !s.skips(Revision(43)));
        let n = Settings::from_config(&loaded("[lint]\nstart_after = 7\n")).unwrap();
        assert_eq!(n.start_after, Some(Revision(7)));
    }

    #[test]
    fn bad_lint_settings_are_config_errors_naming_the_key() {
        for (toml, key) in [
            ("[lint]\nstart_after = \"v42\"\n", "start_after"),
            ("[lint]\nsmall_table_size = \"ten\"\n", "small_table_size"),
            ("[lint]\nsmall_table_rowz = 1\n", "small_table_rowz"),
        ] {
            let e = Settings::from_config(&loaded(toml)).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::ExitCode::Usage, "{e}");
            assert!(e.to_string().contains(key), "{e}");
        }
        assert_eq!(parse_size("512kB"), Some(512 << 10));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("MB"), None);
    }
}
