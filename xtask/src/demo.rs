//! `cargo xtask demo`: builds `smtp-send` and runs `smtp-send --demo`, which starts the
//! embedded demo server on 127.0.0.1:12600, sends one message through each of its AUTH
//! mechanisms with the transcript on, prints what the server received, and stops it.
//!
//! Arguments after `demo` go to `smtp-send` (`cargo xtask demo --auth CRAM-MD5`,
//! `cargo xtask demo --demo-port 0`); its exit status is passed through.

use crate::cmd::{cargo, describe};

/// Runs `cargo xtask demo` with the arguments after the command name.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "-p", "smtp-send", "--", "--demo"])
        .args(args);
    eprintln!("+ {}", describe(&cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
    match status.code() {
        Some(0) => Ok(()),
        // smtp-send has already said what failed; keep its exit code (2 usage, 3 connection,
        // 4 authentication, 5 refused) for scripts.
        Some(code) => std::process::exit(code),
        None => Err(format!("{} was killed: {status}", describe(&cmd))),
    }
}
