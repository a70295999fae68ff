//! `cargo xtask ci`: the full test command `.ci/run` runs, in order, stopping at the first
//! failure:
//!
//! 0. the build dependencies of `--all-features` ([`BUILD_PACKAGES`]: the GSSAPI binding's
//!    bindgen needs the krb5 headers and libclang), installed when missing and root, else a
//!    message naming them
//! 1. `cargo fmt --all --check`
//! 2. `cargo clippy --workspace --all-targets --all-features -- -D warnings`
//! 3. `cargo doc --workspace --no-deps --all-features` with `RUSTDOCFLAGS=-D warnings`
//! 4. `cargo test --workspace --all-features --no-fail-fast` (unit, integration, doc tests)
//! 5. the packaging check: `cargo package` of every published crate together ([`package`])
//! 6. `cargo xtask servers up` (installs Postfix/Dovecot/Cyrus as root when missing)
//! 7. the same with `-- --ignored`: the real-server tests (and any other ignored test)
//! 8. `cargo xtask servers down`, whatever step 6 or 7 gave
//! 9. the fuzz smoke: every fuzz target for [`FUZZ_SECONDS`] seconds
//!
//! It ends with a summary of the steps and the closing line
//! `ci: N passed, N failed, N skipped`, the test counts of steps 4 and 7 added up.
//!
//! The servers are stopped as soon as the tests that need them are done, so the fuzz
//! smoke has both cores; a failure in 6 or 7 still stops them before returning.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{cargo, describe, exec, root};
use crate::servers;

/// The Debian packages `cargo build --all-features` needs beyond the Rust toolchain:
/// `libgssapi-sys` (under `sasl-mechs/gssapi`) generates its FFI with bindgen from the MIT
/// krb5 headers, so it needs them, libclang, and pkg-config to find them.
const BUILD_PACKAGES: &[&str] = &["libkrb5-dev", "clang", "libclang-dev", "pkg-config"];

/// Seconds each fuzz target runs in the smoke.
const FUZZ_SECONDS: u64 = 10;

/// The workspace members that are not published (`publish = false`): test helpers,
/// interop tests and this tool. Every other member is packaged by [`package`].
const UNPUBLISHED: &[&str] = &["smtp-testserver", "test-support", "interop-tests", "xtask"];

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
        Ok(()) => eprintln!(
            "all {} steps passed in {:.0} s",
            steps.done.len(),
            total.as_secs_f64()
        ),
        Err(e) => eprintln!(
            "FAILED after {:.0} s: {}",
            total.as_secs_f64(),
            e.lines().next().unwrap_or("")
        ),
    }
    // The closing line: every cargo test in both test steps, added up. Ignored tests
    // that never ran (the real-server step failed or was not reached) count as skipped.
    let c = &steps.tests;
    let skipped = if c.ignored_run { 0 } else { c.ignored };
    println!(
        "ci: {} passed, {} failed, {skipped} skipped",
        c.passed, c.failed
    );
    result
}

/// Test counts from `cargo test`'s "test result:" lines.
#[derive(Default)]
struct TestCounts {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Whether the `--ignored` run completed.
    ignored_run: bool,
}

impl TestCounts {
    /// Adds one "test result: ok. 3 passed; 0 failed; 1 ignored; ..." line.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs a `cargo test` command, passing its output through and counting its results.
fn exec_counting(cmd: &mut Command, counts: &mut TestCounts) -> Result<(), String> {
    eprintln!("+ {}", describe(cmd));
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", describe(cmd)))?;
    if let Some(stdout) = child.stdout.take() {
        let mut out = std::io::stdout();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            counts.add(&line);
            let _ = writeln!(out, "{line}");
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("{}: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {status}", describe(cmd)))
    }
}

/// The steps run so far: name, duration, success; and the tests counted.
#[derive(Default)]
struct Steps {
    done: Vec<(&'static str, Duration, bool)>,
    tests: TestCounts,
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
    steps.run("build dependencies", build_dependencies)?;
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
    let mut counts = TestCounts::default();
    let tests = steps.run("test", || {
        exec_counting(
            cargo().args(["test", "--workspace", "--all-features", "--no-fail-fast"]),
            &mut counts,
        )
    });
    steps.tests = counts;
    tests?;
    steps.run("package", package)?;

    // From here the servers may be running: whatever happens, stop them before returning.
    let up = steps.run("servers up", servers::up);
    let tests = match up {
        Ok(()) => {
            // Only the pass/fail counts: the ignored tests were counted as ignored above.
            let mut counts = TestCounts::default();
            let tests = steps.run("real-server tests", || {
                exec_counting(
                    cargo().args([
                        "test",
                        "--workspace",
                        "--all-features",
                        "--no-fail-fast",
                        "--",
                        "--ignored",
                    ]),
                    &mut counts,
                )
            });
            steps.tests.passed += counts.passed;
            steps.tests.failed += counts.failed;
            steps.tests.ignored_run = true;
            tests
        }
        Err(e) => Err(e),
    };
    let down = steps.run("servers down", servers::down);
    tests?;
    down?;

    steps.run("fuzz smoke", || crate::fuzz::smoke(FUZZ_SECONDS))
}

/// Installs [`BUILD_PACKAGES`] when any is missing (as root, the way `servers up` installs
/// its packages); without root, says which and how.
fn build_dependencies() -> Result<(), String> {
    let missing = servers::missing_packages(BUILD_PACKAGES);
    if missing.is_empty() {
        return Ok(());
    }
    if servers::require_root().is_err() {
        return Err(format!(
            "the --all-features build needs {}: run `apt-get install {}` as root, or run \
             cargo xtask ci as root",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    servers::ensure_packages(&missing)
}

/// `cargo package` of every published crate at once, verified.
///
/// It proves that each crate builds from its own `.crate` file, against the packages of the
/// others (cargo resolves the not-yet-published members from a local overlay of the ones it
/// just made): every source file is inside the package, no dependency is a path without a
/// version, no published crate needs an unpublished one (the CLI's `--demo` server is the
/// published `smtp-demo-server`, not the test server), and the metadata crates.io asks for
/// is there. The "ignoring test" warnings are expected: tests that need the unpublished test
/// helpers are left out of the packages on purpose (`exclude` in their manifests).
///
/// It runs after the test step, so the dependencies are downloaded and mostly built (the
/// verification builds in the workspace's target directory): `--offline` keeps it off the
/// network and it typically takes well under a minute. `--allow-dirty` because it checks
/// what would be packaged, not whether it is committed.
fn package() -> Result<(), String> {
    forget_earlier_packages()?;
    let mut cmd = cargo();
    cmd.args(["package", "--workspace", "--offline", "--allow-dirty"]);
    for name in UNPUBLISHED {
        cmd.args(["--exclude", name]);
    }
    exec(&mut cmd)
}

/// Removes what an earlier `cargo package` left behind that the next one would trust.
///
/// Cargo unpacks each `.crate` of its overlay registry into
/// `$CARGO_HOME/registry/src/-<hash of the overlay's path>/<name>-<version>/` and, finding that
/// folder already there (its `.cargo-ok` marker), never unpacks it again. The overlay's path is
/// the same on every run from one checkout and our version does not change between commits, so
/// without this the verification builds a crate against a dependent's sources from an earlier
/// run (a field added since is "unknown"). Only our own crates' folders are removed, in the
/// unnamed (local) registries' caches; crates.io's cache is left alone.
fn forget_earlier_packages() -> Result<(), String> {
    let stale_dir = root().join("target").join("package");
    if stale_dir.exists() {
        std::fs::remove_dir_all(&stale_dir)
            .map_err(|e| format!("cannot remove {}: {e}", stale_dir.display()))?;
    }
    let ours = workspace_crate_names()?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = cargo_home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(unpacked) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for entry in unpacked.flatten() {
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            if is_unpacked_copy_of(&file_name, &ours) {
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| format!("cannot remove {}: {e}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

/// The `[package]` names of the crates under `crates/`.
fn workspace_crate_names() -> Result<Vec<String>, String> {
    let crates = root().join("crates");
    let entries =
        std::fs::read_dir(&crates).map_err(|e| format!("cannot list {}: {e}", crates.display()))?;
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let Ok(manifest) = std::fs::read_to_string(entry.path().join("Cargo.toml")) else {
            continue;
        };
        let name = manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|v| v.trim().trim_matches('"').to_string());
        names.extend(name);
    }
    Ok(names)
}

/// Whether `dir_name` is `<one of names>-<version>`, the form of an unpacked `.crate`.
fn is_unpacked_copy_of(dir_name: &str, names: &[String]) -> bool {
    names.iter().any(|name| {
        dir_name
            .strip_prefix(name.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::TestCounts;

    #[test]
    fn unpacked_copies_are_told_by_name_and_version() {
        let names = vec!["smtp-client".to_string(), "smtp-auth".to_string()];
        assert!(super::is_unpacked_copy_of("smtp-client-0.1.0", &names));
        assert!(super::is_unpacked_copy_of("smtp-auth-12.0.0-rc.1", &names));
        assert!(!super::is_unpacked_copy_of(
            "smtp-client-extra-0.1.0",
            &names
        ));
        assert!(!super::is_unpacked_copy_of("smtp-proto-0.1.0", &names));
        assert!(!super::is_unpacked_copy_of("smtp-client", &names));
    }

    #[test]
    fn counts_cargo_test_result_lines() {
        let mut c = TestCounts::default();
        c.add("test result: ok. 9 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.60s");
        c.add("test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 1.00s");
        c.add("test passed_thing ... ok");
        assert_eq!((c.passed, c.failed, c.ignored), (12, 1, 2));
    }
}
