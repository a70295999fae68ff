//! `cargo xtask ci`: the full test command `.ci/run` runs, in order, stopping at the first
//! failure:
//!
//! 1. `cargo fmt --all --check`
//! 2. `cargo clippy --workspace --all-targets --all-features -- -D warnings`
//! 3. `cargo doc --workspace --no-deps --all-features` with `RUSTDOCFLAGS=-D warnings`
//! 4. `cargo test --workspace --all-features` (unit, integration and doc tests)
//! 5. `cargo xtask servers up` (installs Postfix/Dovecot/Cyrus as root when missing)
//! 6. `cargo test --workspace --all-features -- --ignored` (the real-server tests)
//! 7. `cargo xtask servers down`, whatever step 5 or 6 gave
//! 8. the fuzz smoke: every fuzz target for [`FUZZ_SECONDS`] seconds
//!
//! The servers are stopped as soon as the tests that need them are done, so the fuzz
//! smoke has both cores; a failure in 5 or 6 still stops them before returning.

use std::time::{Duration, Instant};

use crate::cmd::{cargo, exec};
use crate::servers;

/// Seconds each fuzz target runs in the smoke.
const FUZZ_SECONDS: u64 = 10;

/// Runs the whole check and prints a closing summary line.
pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(format!("usage: cargo xtask ci (got {args:?})"));
    }
    let started = Instant::now();
    let mut steps = Steps::default();
    let result = all_steps(&mut steps);
    let total = started.elapsed();
    eprintln!("\nci steps:");
    for (name, took, ok) in &steps.done {
        eprintln!(
            "  {:<4} {name:<24} {:>6.1} s",
            if *ok { "ok" } else { "FAIL" },
            took.as_secs_f64()
        );
    }
    match &result {
        Ok(()) => println!(
            "ci: ok, all {} steps passed in {:.0} s",
            steps.done.len(),
            total.as_secs_f64()
        ),
        Err(e) => println!(
            "ci: FAILED after {:.0} s: {}",
            total.as_secs_f64(),
            e.lines().next().unwrap_or("")
        ),
    }
    result
}

/// The steps run so far: name, duration, success.
#[derive(Default)]
struct Steps {
    done: Vec<(&'static str, Duration, bool)>,
}

impl Steps {
    /// Runs one step, records it, and passes its result on.
    fn run(
        &mut self,
        name: &'static str,
        step: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        eprintln!("\n==> {name}");
        let started = Instant::now();
        let result = step();
        self.done.push((name, started.elapsed(), result.is_ok()));
        result.map_err(|e| format!("{name}: {e}"))
    }
}

fn all_steps(steps: &mut Steps) -> Result<(), String> {
    steps.run("fmt", || exec(cargo().args(["fmt", "--all", "--check"])))?;
    steps.run("clippy", || {
        exec(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    steps.run("doc", || {
        exec(
            cargo()
                .args(["doc", "--workspace", "--no-deps", "--all-features"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        )
    })?;
    steps.run("test", || {
        exec(cargo().args(["test", "--workspace", "--all-features"]))
    })?;

    // From here the servers may be running: whatever happens, stop them before returning.
    let up = steps.run("servers up", servers::up);
    let tests = match up {
        Ok(()) => steps.run("real-server tests", || {
            exec(cargo().args(["test", "--workspace", "--all-features", "--", "--ignored"]))
        }),
        Err(e) => Err(e),
    };
    let down = steps.run("servers down", servers::down);
    tests?;
    down?;

    steps.run("fuzz smoke", || crate::fuzz::smoke(FUZZ_SECONDS))
}
