//! Project automation, run as `cargo xtask <command>`.
//!
//! Each command lives in its own module; this file only dispatches.

mod bench;
mod bench_bulk;
mod bench_concurrency;
mod bench_smtp;
mod ci;
mod cmd;
mod demo;
mod dist;
mod fuzz;
mod servers;
mod servers_krb;
mod servers_more;
mod servers_proxies;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                       everything .ci/run checks: fmt, clippy, tests, docs, real servers, fuzz smoke
  servers up|down|status   real Postfix + Dovecot + Cyrus SASL on loopback (installs them as root)
  servers proxies-up|proxies-down   only the proxies in front of them: Dante, tinyproxy
  servers more-up|more-down  only the extra instances for the extensions (Dovecot LMTP)
  servers krb-up|krb-down    only the Kerberos realm (MIT KDC) and its GSSAPI Postfix and Dovecot
  fuzz [TARGET] [SECONDS]  run one fuzz target, or every target, for SECONDS each
  fuzz --long [SECONDS]    the campaign: every target for 10M runs or SECONDS (60), corpus
                           kept minimised in fuzz/corpus/, figures into docs/security.md
  bench [--quick] [SUITE...]  benchmarks beside their references; writes docs/performance.md
                           (suites: codec sasl concurrency smtp batch-memory bdat; all by
                           default; --quick: a small load, once, to check the rows work)
  demo                     start the embedded demo server and send through each mechanism
  dist                     smtp-send's man page and shell completions, into target/dist/
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "ci" => ci::run(rest),
        "servers" => servers::run(rest),
        "fuzz" => fuzz::run(rest),
        "bench" => bench::run(rest),
        "demo" => demo::run(rest),
        "dist" => dist::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("xtask: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {command}: {e}");
            ExitCode::FAILURE
        }
    }
}
