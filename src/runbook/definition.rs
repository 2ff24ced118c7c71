//! Checklists as data: the runbook's seven checklists embedded from `assets/checklists/`, replaced
//! or extended by TOML files in `config/checklists/` (or `[checklists] dir`), and the typed
//! `[checklists]` config section.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{self, Loaded};
use crate::error::{Error, Result};

/// The embedded defaults, in the order the runbook walks them.
const EMBEDDED: [(&str, &str); 7] = [
    (
        "pre-deploy.toml",
        include_str!("../../assets/checklists/pre-deploy.toml"),
    ),
    (
        "deploy-sequence.toml",
        include_str!("../../assets/checklists/deploy-sequence.toml"),
    ),
    (
        "post-deploy.toml",
        include_str!("../../assets/checklists/post-deploy.toml"),
    ),
    (
        "startup-failure.toml",
        include_str!("../../assets/checklists/startup-failure.toml"),
    ),
    (
        "rollback.toml",
        include_str!("../../assets/checklists/rollback.toml"),
    ),
    (
        "recovery-complete-failure.toml",
        include_str!("../../assets/checklists/recovery-complete-failure.toml"),
    ),
    (
        "recovery-partial-corruption.toml",
        include_str!("../../assets/checklists/recovery-partial-corruption.toml"),
    ),
];

/// The checklist `up` on a production target looks for.
pub const PRE_DEPLOY: &str = "pre-deploy";

/// What the machine can check for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    BackupAge,
    MigrationsCommitted,
    LocalTesting,
    RollbackPlan,
    TeamNotification,
    Health,
    AtHead,
    NoInvalidIndexes,
    BackfillsFinished,
    DatabaseReachable,
    CatalogIntact,
    Privileges,
    LastFailure,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    pub id: String,
    /// The runbook's words.
    pub text: String,
    /// The automatic check, when the machine can check it; otherwise the operator confirms.
    pub check: Option<CheckKind>,
    #[serde(default)]
    pub help: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Checklist {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub when: String,
    pub items: Vec<ChecklistItem>,
    /// Where it came from: `embedded` or the file path.
    #[serde(skip_deserializing)]
    pub source: String,
}

impl Checklist {
    pub fn item(&self, id: &str) -> Result<&ChecklistItem> {
        self.items.iter().find(|i| i.id == id).ok_or_else(|| {
            Error::Usage(format!(
                "checklist {} has no item {id:?}; its items are: {}",
                self.name,
                self.items
                    .iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        if self.items.is_empty() {
            return Err("has no [[items]]".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for i in &self.items {
            if !seen.insert(i.id.as_str()) {
                return Err(format!("item id {:?} appears twice", i.id));
            }
        }
        Ok(())
    }
}

/// The typed `[checklists]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistConfig {
    /// Directory of checklist TOML files overriding the embedded ones [default: config/checklists].
    pub dir: Option<PathBuf>,
    /// Prints the time of the last good backup (RFC 3339 or Unix seconds) on its first line.
    pub backup_command: Option<String>,
    /// Oldest acceptable backup, e.g. "26h" [default: 24h].
    pub backup_max_age: Option<String>,
    /// Sends the team notification (e.g. a curl to a webhook); exit 0 means sent.
    pub notify_command: Option<String>,
    /// Hours a passed pre-deploy checklist counts for `up` on production when the target does not
    /// set require_checklist_hours (then `up` only warns) [default: 24].
    pub warn_hours: Option<u32>,
}

pub const DEFAULT_BACKUP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_WARN_HOURS: u32 = 24;

impl ChecklistConfig {
    pub fn from_loaded(loaded: &Loaded) -> Result<ChecklistConfig> {
        let Some(table) = &loaded.file.checklists else {
            return Ok(ChecklistConfig::default());
        };
        let path = loaded.path.clone().unwrap_or_default();
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config {
                path,
                message: format!("[checklists]: {}", e.message()),
            })
    }

    pub fn backup_max_age(&self) -> Result<Duration> {
        match &self.backup_max_age {
            Some(s) => config::parse_duration(s)
                .map_err(|e| Error::Usage(format!("[checklists] backup_max_age: {e}"))),
            None => Ok(DEFAULT_BACKUP_MAX_AGE),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("config").join("checklists"))
    }
}

/// Parse one checklist file.
pub fn parse(text: &str, source: &str) -> Result<Checklist> {
    let mut c: Checklist = toml::from_str(text)
        .map_err(|e| Error::Usage(format!("checklist {source}: {}", e.message())))?;
    c.validate()
        .map_err(|e| Error::Usage(format!("checklist {source}: {e}")))?;
    c.source = source.to_string();
    Ok(c)
}

/// The embedded checklists, then every `*.toml` in `dir` replacing the one of the same name or
/// adding a new one. A missing directory means no overrides; a bad file is an error, never skipped.
pub fn load(dir: &Path) -> Result<Vec<Checklist>> {
    let mut lists = EMBEDDED
        .iter()
        .map(|(file, text)| parse(text, &format!("embedded {file}")))
        .collect::<Result<Vec<_>>>()?;
    for c in &mut lists {
        c.source = "embedded".into();
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(lists),
        Err(e) => {
            return Err(Error::io(
                format!("reading checklist directory {}", dir.display()),
                e,
            ));
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let c = parse(&text, &path.display().to_string())?;
        match lists.iter_mut().find(|l| l.name == c.name) {
            Some(slot) => *slot = c,
            None => lists.push(c),
        }
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seven_runbook_checklists_are_embedded() {
        let lists = load(Path::new("/nonexistent")).unwrap();
        let names: Vec<_> = lists.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pre-deploy",
                "deploy-sequence",
                "post-deploy",
                "startup-failure",
                "rollback",
                "recovery-complete-failure",
                "recovery-partial-corruption"
            ]
        );
        let pre = &lists[0];
        assert_eq!(pre.items.len(), 5);
        assert!(pre.items.iter().all(|i| i.check.is_some()));
    }

    #[test]
    fn a_file_in_the_dir_overrides_by_name_and_bad_files_are_errors() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("pre.toml"),
            "name = \"pre-deploy\"\ntitle = \"Ours\"\n[[items]]\nid = \"only\"\ntext = \"One thing\"\n",
        )
        .unwrap();
        let lists = load(d.path()).unwrap();
        assert_eq!(lists.len(), 7);
        assert_eq!(lists[0].title, "Ours");
        assert_eq!(lists[0].items.len(), 1);
        std::fs::write(
            d.path().join("x.toml"),
            "name = \"x\"\ntitle = \"X\"\n[[items]]\nid = \"a\"\ntext = \"A\"\ncheck = \"nope\"\n",
        )
        .unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("nope"), "{e}");
    }
}
