//! `cargo xtask fuzz [TARGET] [SECONDS]`: runs cargo-fuzz targets from `fuzz/`.
//!
//! With no target, every file in `fuzz/fuzz_targets/` is run in turn (this is also the
//! CI smoke, see [`smoke`]). cargo-fuzz needs nightly features; `RUSTC_BOOTSTRAP=1`
//! lets the stable toolchain provide them. cargo-fuzz is installed when missing.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::cmd::{cargo, exec, root};

/// Seconds per target when none are given.
const DEFAULT_SECONDS: u64 = 10;

const USAGE: &str = "usage: cargo xtask fuzz [TARGET] [SECONDS]";

/// Runs `cargo xtask fuzz` with the arguments after the command name.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut target = None;
    let mut seconds = DEFAULT_SECONDS;
    for arg in args {
        match arg.parse::<u64>() {
            Ok(n) => seconds = n,
            Err(_) if arg.starts_with('-') => return Err(format!("unknown option {arg}\n{USAGE}")),
            Err(_) if target.is_none() => target = Some(arg.clone()),
            Err(_) => return Err(format!("unexpected argument {arg}\n{USAGE}")),
        }
    }
    match target {
        None => smoke(seconds),
        Some(t) => {
            let known = targets()?;
            if !known.contains(&t) {
                return Err(format!(
                    "no fuzz target {t:?}; targets: {}",
                    known.join(", ")
                ));
            }
            ensure_cargo_fuzz()?;
            run_target(&t, seconds)
        }
    }
}

/// Runs every fuzz target for `seconds` each; the first crash or failed property is an
/// error naming the target (its input is left in `fuzz/artifacts/<target>/`).
pub fn smoke(seconds: u64) -> Result<(), String> {
    let targets = targets()?;
    if targets.is_empty() {
        return Err("no fuzz targets in fuzz/fuzz_targets".into());
    }
    ensure_cargo_fuzz()?;
    exec(fuzz_cmd().args(["build", "--fuzz-dir"]).arg(fuzz_dir()))?;
    for t in &targets {
        run_target(t, seconds)?;
    }
    eprintln!(
        "fuzz: {} targets ran {seconds} s each without a finding",
        targets.len()
    );
    Ok(())
}

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

/// The target names: the `.rs` files in `fuzz/fuzz_targets`, sorted.
fn targets() -> Result<Vec<String>, String> {
    let dir = fuzz_dir().join("fuzz_targets");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "rs") {
            if let Some(stem) = path.file_stem() {
                names.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// `cargo fuzz` with nightly features enabled on the stable toolchain.
fn fuzz_cmd() -> Command {
    let mut cmd = cargo();
    cmd.arg("fuzz").env("RUSTC_BOOTSTRAP", "1");
    cmd
}

fn run_target(target: &str, seconds: u64) -> Result<(), String> {
    exec(
        fuzz_cmd()
            .args(["run", target, "--fuzz-dir"])
            .arg(fuzz_dir())
            .arg("--")
            .arg(format!("-max_total_time={seconds}")),
    )
    .map_err(|e| format!("fuzz target {target}: {e} (see fuzz/artifacts/{target}/)"))
}

/// Installs cargo-fuzz when `cargo fuzz` is not available.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    exec(cargo().args(["install", "cargo-fuzz", "--locked"]))
}
