//! `cargo xtask ci`: everything `.ci/run` checks, in order, stopping at the first failure.

use crate::cmd::{cargo, exec};

/// Runs the whole check: format, lints, docs, unit and doc tests.
pub fn run(_args: &[String]) -> Result<(), String> {
    exec(cargo().args(["fmt", "--all", "--check"]))?;
    exec(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    exec(
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    exec(cargo().args(["test", "--workspace", "--all-features"]))?;
    Ok(())
}
