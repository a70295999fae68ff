//! `smtp-send`: send one message through an SMTP server, with AUTH, from the shell.
//!
//! Built on the project's own crates only (`smtp-client`, `smtp-auth`, `sasl-mechs`,
//! `smtp-proto`), so what works here works in code. `--demo` runs it against the built-in
//! demo server of `smtp-demo-server`. Run `smtp-send --help` for the flags and exit codes.

mod auth;
mod cli;
mod composition;
mod connection;
mod conversation;
mod demo;
mod exit;
mod extensions;
mod generate;
mod load;
mod message;
mod recipients;
mod report;
mod send;
mod stage;
mod timeline;
mod transcript;

use std::process::ExitCode;
use std::time::Instant;

use crate::cli::Args;
use crate::report::{Observed, Run};
use crate::send::{client_config, send_observed, Trust};

fn main() -> ExitCode {
    let args = composition::parse_args();
    if let Some(what) = args.generate {
        return generate::print(what);
    }
    let result = if args.demo {
        demo::run(&args)
    } else {
        run(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("smtp-send: {failure}");
            failure.kind.exit_code()
        }
    }
}

fn run(args: &Args) -> Result<(), exit::Failure> {
    // Everything checked before connecting; with --json, a refusal is reported too.
    let checked =
        cli::plan(args).and_then(|plan| Ok((client_config(&plan, Trust::Default)?, plan)));
    let (config, mut plan) = match checked {
        Ok(checked) => checked,
        Err(failure) => {
            if args.json {
                report::print_input_failure(args, &failure);
            }
            return Err(failure);
        }
    };
    if let Some(load) = plan.load {
        return load::run(&mut plan, config, load);
    }
    let mut observed = Observed::default();
    let sent = send_observed(&mut plan, config, &mut observed);
    if plan.observe.json {
        let port = plan
            .port
            .unwrap_or_else(|| send::default_port(plan.tls, plan.submission));
        let result = sent.as_ref().map(|_| ()).map_err(Clone::clone);
        let run = Run {
            host: &plan.host,
            port,
            from: plan
                .from
                .mailbox()
                .map(ToString::to_string)
                .unwrap_or_default(),
            to: plan.to.iter().map(send::address).collect(),
            user: plan.auth.as_ref().map(|a| a.user.as_str()),
            observed,
            timeline: &plan.observe.timeline,
            end: Instant::now(),
        };
        report::print(&run.report(&result));
        return result;
    }
    let sent = sent?;
    if let Some(stopped) = &sent.stopped_after {
        if !plan.quiet {
            println!("{}", send::stopped_line(stopped, sent.mechanism.as_deref()));
        }
        return Ok(());
    }
    if !plan.quiet {
        let auth = match &sent.mechanism {
            Some(m) => format!(", authenticated with {m}"),
            None => String::new(),
        };
        println!(
            "accepted for {} recipient(s){auth}: {}",
            sent.accepted, sent.reply
        );
    }
    Ok(())
}
