//! Groups of targets: `groups = ["prod", "eu"]` on a target, `[groups.NAME] targets = [...]`, and
//! groups generated from a query on a catalog database (one target per row), so 500 tenant
//! databases need no 500 config entries. Resolved into plain [`Target`]s, each built exactly as
//! `--target NAME` would build it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{self, ConnInfo, Environment, Loaded, Overrides, Target, TargetConfig};
use crate::db::{self, Session};
use crate::error::{Error, Result};

/// One `[groups.NAME]` table. Besides `targets`, either both `catalog` and `query` or neither.
/// The remaining keys are defaults for the targets the query generates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupConfig {
    #[serde(default)]
    targets: Vec<String>,
    /// The configured target whose database lists the members.
    catalog: Option<String>,
    /// `SELECT name, url FROM tenants`: one member per row; URLs carry no password.
    query: Option<String>,
    environment: Option<Environment>,
    password_env: Option<String>,
    migrations: Option<PathBuf>,
    lock_timeout: Option<String>,
    statement_timeout: Option<String>,
    retries: Option<i64>,
    lock_wait: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<PathBuf>,
    require_checklist_hours: Option<u32>,
}

impl GroupConfig {
    /// The config of a generated member: the row's URL plus the group's defaults.
    fn member(&self, url: String) -> TargetConfig {
        TargetConfig {
            url: Some(url),
            environment: self.environment,
            password_env: self.password_env.clone(),
            migrations: self.migrations.clone(),
            lock_timeout: self.lock_timeout.clone(),
            statement_timeout: self.statement_timeout.clone(),
            retries: self.retries,
            lock_wait: self.lock_wait.clone(),
            sslmode: self.sslmode.clone(),
            sslrootcert: self.sslrootcert.clone(),
            require_checklist_hours: self.require_checklist_hours,
            ..Default::default()
        }
    }
}

/// The `[groups]` section, typed and checked against the targets.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    tables: BTreeMap<String, GroupConfig>,
}

impl Groups {
    /// Type the raw `[groups]` table; any mistake is a config error (exit 2).
    pub fn parse(loaded: &Loaded) -> Result<Groups> {
        let bad = |message: String| Error::Usage(format!("{}: {message}", loaded.path_display()));
        let mut tables = BTreeMap::new();
        for (name, value) in loaded.file.groups.clone().unwrap_or_default() {
            let g: GroupConfig = value
                .try_into()
                .map_err(|e| bad(format!("[groups.{name}]: {e}")))?;
            match (&g.catalog, &g.query) {
                (Some(_), None) | (None, Some(_)) => {
                    return Err(bad(format!(
                        "[groups.{name}]: a generated group needs both `catalog` (a target) and `query` (SELECT name, url ...)"
                    )));
                }
                (None, None) if g.targets.is_empty() => {
                    return Err(bad(format!(
                        "[groups.{name}]: lists no members; give `targets = [...]`, or `catalog` and `query`"
                    )));
                }
                _ => {}
            }
            let known = |t: &String| loaded.file.targets.contains_key(t);
            if let Some(t) = g.targets.iter().chain(&g.catalog).find(|t| !known(t)) {
                return Err(bad(format!(
                    "[groups.{name}] names target {t:?}, which is not configured; known targets: {}",
                    known_list(loaded.file.targets.keys())
                )));
            }
            tables.insert(name, g);
        }
        Ok(Groups { tables })
    }

    /// Every group name: `[groups]` tables and names used in targets' `groups`.
    pub fn names(&self, loaded: &Loaded) -> Vec<String> {
        let mut names: Vec<String> = self
            .tables
            .keys()
            .cloned()
            .chain(loaded.file.targets.values().flat_map(|t| t.groups.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

fn known_list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The members of `group` (every configured target when `None`), sorted by name. Generated
/// members are read from their catalog database now (exit 3 when it is unreachable).
pub async fn members(loaded: &Loaded, group: Option<&str>, o: &Overrides) -> Result<Vec<Target>> {
    let groups = Groups::parse(loaded)?;
    let Some(group) = group else {
        return loaded
            .file
            .targets
            .keys()
            .map(|name| loaded.target(name, o))
            .collect();
    };
    let table = groups.tables.get(group);
    let tagged = loaded
        .file
        .targets
        .iter()
        .filter(|(_, t)| t.groups.iter().any(|g| g == group))
        .map(|(name, _)| name.clone());
    if table.is_none() && tagged.clone().next().is_none() {
        return Err(Error::Usage(format!(
            "no group named {group:?} in {}; known groups: {}",
            loaded.path_display(),
            known_list(groups.names(loaded).iter())
        )));
    }
    let mut names: Vec<String> = tagged
        .chain(table.iter().flat_map(|t| t.targets.clone()))
        .collect();
    names.sort();
    names.dedup();
    let mut out: Vec<Target> = names
        .iter()
        .map(|name| loaded.target(name, o))
        .collect::<Result<_>>()?;
    if let Some(g) = table
        && let (Some(catalog), Some(query)) = (&g.catalog, &g.query)
    {
        let source = loaded.target(catalog, o)?;
        let rows = read_members(&source, query).await?;
        out.extend(generated(group, g, rows, &names, o)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Targets from the catalog query's rows, checked: unique safe names, no passwords in URLs.
fn generated(
    group: &str,
    g: &GroupConfig,
    rows: Vec<db::fleet::MemberRow>,
    configured: &[String],
    o: &Overrides,
) -> Result<Vec<Target>> {
    let bad = |message: String| Error::Usage(format!("group {group:?}: {message}"));
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let name = row.name.trim().to_string();
        let ok_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok_name {
            return Err(bad(format!(
                "row {} of the catalog query has name {:?}; names are letters, digits, `_`, `-`, `.`",
                i + 1,
                output_safe(&name)
            )));
        }
        if configured.contains(&name) || !seen.insert(name.clone()) {
            return Err(bad(format!(
                "the catalog query returns {name:?} twice (or it is also a configured target); names must be unique"
            )));
        }
        let conn = ConnInfo::parse(&row.url).map_err(|e| bad(format!("member {name:?}: {e}")))?;
        if conn.pg.get_password().is_some() {
            return Err(bad(format!(
                "member {name:?}: its URL ({}) carries a password. Store URLs without passwords; give credentials through ~/.pgpass or the group's password_env.",
                crate::secrets::redact(&row.url)
            )));
        }
        let source = format!("group {group:?} member {name:?}");
        out.push(config::build_target(&name, &g.member(row.url), o, &source)?);
    }
    Ok(out)
}

/// A name from the database, cut short for an error message.
fn output_safe(s: &str) -> String {
    crate::output::one_line(s, 40)
}

async fn read_members(catalog: &Target, query: &str) -> Result<Vec<db::fleet::MemberRow>> {
    let s = Session::connect(&catalog.conn, "fleet members").await?;
    db::fleet::member_rows(&s, query)
        .await
        .map_err(|e| match e {
            Error::Usage(m) => Error::Usage(format!(
                "the member query on catalog target {:?}: {m}",
                catalog.name
            )),
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str) -> Loaded {
        Loaded {
            file: toml::from_str(text).unwrap(),
            path: Some("fleet.toml".into()),
            warnings: vec![],
        }
    }

    const TARGETS: &str = "[targets.a]\nurl = \"postgres://u@h/a\"\ngroups = [\"prod\", \"eu\"]\n\
        [targets.b]\nurl = \"postgres://u@h/b\"\ngroups = [\"prod\"]\n\
        [targets.c]\nurl = \"postgres://u@h/c\"\n";

    fn names(ts: &[Target]) -> Vec<&str> {
        ts.iter().map(|t| t.name.as_str()).collect()
    }

    #[tokio::test]
    async fn groups_come_from_target_tags_and_group_tables() {
        let l = loaded(&format!("{TARGETS}[groups.eu]\ntargets = [\"c\"]\n"));
        let o = Overrides::default();
        assert_eq!(
            names(&members(&l, Some("prod"), &o).await.unwrap()),
            ["a", "b"]
        );
        assert_eq!(
            names(&members(&l, Some("eu"), &o).await.unwrap()),
            ["a", "c"]
        );
        assert_eq!(
            names(&members(&l, None, &o).await.unwrap()),
            ["a", "b", "c"]
        );
    }

    #[tokio::test]
    async fn unknown_group_is_a_usage_error_listing_the_known_ones() {
        let l = loaded(TARGETS);
        let e = members(&l, Some("us"), &Overrides::default())
            .await
            .unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitCode::Usage);
        assert!(e.to_string().contains("known groups: eu, prod"), "{e}");
    }

    #[test]
    fn bad_group_tables_are_config_errors() {
        for (table, want) in [
            ("[groups.x]\ncatalog = \"a\"\n", "needs both"),
            ("[groups.x]\nquery = \"SELECT 1\"\n", "needs both"),
            ("[groups.x]\n", "lists no members"),
            ("[groups.x]\ntargets = [\"zz\"]\n", "not configured"),
            (
                "[groups.x]\ncatalog = \"zz\"\nquery = \"q\"\n",
                "not configured",
            ),
            (
                "[groups.x]\ntargets = [\"a\"]\nenvironmnt = \"test\"\n",
                "environmnt",
            ),
        ] {
            let e = Groups::parse(&loaded(&format!("{TARGETS}{table}"))).unwrap_err();
            assert_eq!(e.exit_code(), crate::ExitCode::Usage);
            assert!(e.to_string().contains(want), "{table}: {e}");
        }
    }

    fn row(name: &str, url: &str) -> db::fleet::MemberRow {
        db::fleet::MemberRow {
            name: name.into(),
            url: url.into(),
        }
    }

    #[test]
    fn generated_members_take_the_group_defaults_and_refuse_passwords() {
        let g = GroupConfig {
            environment: Some(Environment::Production),
            lock_timeout: Some("2s".into()),
            ..Default::default()
        };
        let o = Overrides::default();
        let ts = generated("t", &g, vec![row("acme", "postgres://app@h/acme")], &[], &o).unwrap();
        assert_eq!(ts[0].environment, Environment::Production);
        assert_eq!(ts[0].guard.lock_timeout, std::time::Duration::from_secs(2));
        assert_eq!(ts[0].conn.dbname(), "acme");

        let e = generated(
            "t",
            &g,
            vec![row("x", "postgres://app:s3cret@h/x")],
            &[],
            &o,
        )
        .unwrap_err();
        assert!(e.to_string().contains("carries a password"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let dup = vec![row("x", "postgres://h/x"), row("x", "postgres://h/y")];
        assert!(generated("t", &g, dup, &[], &o).is_err());
        let clash = generated("t", &g, vec![row("a", "postgres://h/a")], &["a".into()], &o);
        assert!(clash.is_err());
        let e = generated("t", &g, vec![row("a b", "postgres://h/a")], &[], &o).unwrap_err();
        assert!(e.to_string().contains("letters, digits"), "{e}");
    }
}
