//! The "migration files committed and pushed" check: git, run on the migrations directory.

use std::path::Path;
use std::process::Stdio;

use super::checks::CheckOutcome;
use crate::error::{Error, Result};

async fn git(dir: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| Error::io("running git (is it installed?)", e))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

/// `git status --porcelain` of the migrations dir is clean, and HEAD is not ahead of its upstream.
pub async fn migrations_committed(dir: &Path) -> Result<CheckOutcome> {
    let (ok, _, err) = git(dir, &["rev-parse", "--is-inside-work-tree"]).await?;
    if !ok {
        return Ok(CheckOutcome::fail(format!(
            "{} is not in a git work tree: {err}",
            dir.display()
        )));
    }
    let (ok, status, err) = git(dir, &["status", "--porcelain", "--", "."]).await?;
    if !ok {
        return Ok(CheckOutcome::fail(format!("git status failed: {err}")));
    }
    if !status.is_empty() {
        let files: Vec<&str> = status.lines().take(20).collect();
        return Ok(CheckOutcome::fail(format!(
            "uncommitted changes in {}: {} — commit them (git add, git commit) and push",
            dir.display(),
            files.join(", ")
        )));
    }
    let (_, head, _) = git(dir, &["rev-parse", "--short", "HEAD"]).await?;
    let (ok, upstream, _) = git(
        dir,
        &[
            "rev-parse",
            "--abbrev-ref",
            "--symbolic-full-name",
            "@{upstream}",
        ],
    )
    .await?;
    if !ok {
        return Ok(CheckOutcome::fail(format!(
            "committed at {head}, but the branch has no upstream, so it was never pushed: git push -u origin HEAD"
        )));
    }
    let (ok, ahead, err) = git(dir, &["rev-list", "--count", "@{upstream}..HEAD"]).await?;
    if !ok {
        return Ok(CheckOutcome::fail(format!("git rev-list failed: {err}")));
    }
    if ahead != "0" {
        return Ok(CheckOutcome::fail(format!(
            "{ahead} commit(s) on HEAD ({head}) not pushed to {upstream}: git push"
        )));
    }
    Ok(CheckOutcome::pass(format!(
        "{} clean at {head}, pushed to {upstream}",
        dir.display()
    )))
}
