//! `--generate`: the man page (`clap_mangen`) and the shell completion scripts
//! (`clap_complete`), made from the same clap definition as the parser, so they cannot
//! fall behind the flags. `cargo xtask dist` writes them all into `target/dist/`.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, ValueEnum};
use clap_complete::Shell;

use crate::cli::Args;

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page, section 1 (roff).
    Man,
    /// Completions for bash.
    Bash,
    /// Completions for zsh.
    Zsh,
    /// Completions for fish.
    Fish,
    /// Completions for elvish.
    Elvish,
    /// Completions for PowerShell.
    Powershell,
}

/// Writes `what` to `out`.
pub fn write(what: Generate, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = Args::command();
    let shell = match what {
        Generate::Man => return clap_mangen::Man::new(cmd).render(out),
        Generate::Bash => Shell::Bash,
        Generate::Zsh => Shell::Zsh,
        Generate::Fish => Shell::Fish,
        Generate::Elvish => Shell::Elvish,
        Generate::Powershell => Shell::PowerShell,
    };
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

/// Prints `what` on stdout; exit 1 when stdout cannot be written.
pub fn print(what: Generate) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match write(what, &mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtp-send: --generate: {e}");
            ExitCode::FAILURE
        }
    }
}
