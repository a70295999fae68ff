//! `smtp-send`: send one message through an SMTP server, with AUTH, from the shell.
//!
//! Built on the project's own crates only (`smtp-client`, `smtp-auth`, `sasl-mechs`,
//! `smtp-proto`), so what works here works in code. `--demo` runs it against the built-in
//! demo server of `smtp-demo-server`. Run `smtp-send --help` for the flags and exit codes.

mod auth;
mod cli;
mod connection;
mod conversation;
mod demo;
mod exit;
mod extensions;
mod load;
mod message;
mod recipients;
mod send;
mod stage;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Args;
use crate::send::{client_config, send, Trust};

fn main() -> ExitCode {
    let args = Args::parse();
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
    let mut plan = cli::plan(args)?;
    let config = client_config(&plan, Trust::Default)?;
    if let Some(load) = plan.load {
        return load::run(&mut plan, config, load);
    }
    let sent = send(&mut plan, config)?;
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
