//! Entry point: parse the command line, run, map the result to an exit code. No subcommand on a
//! terminal opens the TUI.

fn main() -> std::process::ExitCode {
    pgshift::cli::main()
}
