//! `cargo xtask dist`: the files a package of `smtp-send` ships beside the binary, generated
//! from its clap definition (`smtp-send --generate ...`) so they never fall behind the
//! flags:
//!
//! ```text
//! target/dist/smtp-send.1                       man page (man -l target/dist/smtp-send.1)
//! target/dist/completions/smtp-send.bash        bash
//! target/dist/completions/_smtp-send            zsh
//! target/dist/completions/smtp-send.fish        fish
//! target/dist/completions/smtp-send.elv         elvish
//! target/dist/completions/_smtp-send.ps1        PowerShell
//! ```
//!
//! `target/` is `$CARGO_TARGET_DIR` when that is set.

use std::path::PathBuf;

use crate::cmd::{cargo, describe, exec, root};

/// Each file: what `--generate` is given, and where its output goes under the dist folder.
const FILES: &[(&str, &str)] = &[
    ("man", "smtp-send.1"),
    ("bash", "completions/smtp-send.bash"),
    ("zsh", "completions/_smtp-send"),
    ("fish", "completions/smtp-send.fish"),
    ("elvish", "completions/smtp-send.elv"),
    ("powershell", "completions/_smtp-send.ps1"),
];

/// The folder the files go to.
pub fn dist_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("dist")
}

/// Runs `cargo xtask dist`.
pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(format!("usage: cargo xtask dist (got {args:?})"));
    }
    exec(cargo().args(["build", "--quiet", "-p", "smtp-send"]))?;
    let dir = dist_dir();
    std::fs::create_dir_all(dir.join("completions"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (what, file) in FILES {
        let mut cmd = cargo();
        cmd.args([
            "run",
            "--quiet",
            "-p",
            "smtp-send",
            "--",
            "--generate",
            what,
        ]);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}\n{}",
                describe(&cmd),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let path = dir.join(file);
        std::fs::write(&path, &out.stdout)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {} ({} bytes)", path.display(), out.stdout.len());
    }
    Ok(())
}
