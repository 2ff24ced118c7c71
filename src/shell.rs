//! `pgshift completions bash|zsh|fish` and `pgshift man`: generated from the clap definitions in
//! `cli`, so they always match the binary (no database, no config needed).

use std::io::Write;

use clap::{Args, CommandFactory, ValueEnum};

use crate::error::{Error, ExitCode, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: Shell,
}

/// The completion script for `shell` on stdout (e.g. `pgshift completions bash > /etc/bash_completion.d/pgshift`).
pub fn completions(a: &CompletionsArgs, out: &mut impl Write) -> Result<ExitCode> {
    let mut cmd = crate::cli::Cli::command();
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Into memory first: clap_complete panics when its writer fails (e.g. `| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pgshift", &mut script);
    write_all(out, &script, "writing the completion script")
}

/// Write `bytes`; a closed pipe (`| head`) is not an error, as with any line-oriented tool.
fn write_all(out: &mut impl Write, bytes: &[u8], what: &str) -> Result<ExitCode> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::Ok),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::Ok),
        Err(e) => Err(Error::io(what, e)),
    }
}

/// The man page (roff) on stdout: `pgshift man > pgshift.1`, or `pgshift man | man -l -`.
pub fn man(out: &mut impl Write) -> Result<ExitCode> {
    let cmd = crate::cli::Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(|e| Error::io("rendering the man page", e))?;
    write_all(out, &page, "writing the man page")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_the_man_page_come_from_the_clap_definitions() {
        for (shell, needle) in [
            (Shell::Bash, "_pgshift()"),
            (Shell::Zsh, "#compdef pgshift"),
            (Shell::Fish, "complete -c pgshift"),
        ] {
            let mut out = Vec::new();
            completions(&CompletionsArgs { shell }, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains(needle), "{shell:?}: {text}");
            for sub in ["backfill", "checklist", "completions"] {
                assert!(text.contains(sub), "{shell:?} completes {sub}");
            }
            assert!(text.contains("lock-timeout"), "{shell:?} completes flags");
        }
        let mut out = Vec::new();
        man(&mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains(".TH pgshift 1"), "{page}");
        assert!(page.contains("backfill"), "{page}");
    }
}
