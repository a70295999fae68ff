//! The sans-IO session driven by arbitrary calls against a modelled server, stray replies,
//! arbitrary bytes in arbitrary splits, end of stream and time passing: no panic, no
//! internal error, memory bounded by the reply limits, and a message reported sent only
//! when its reply arrived after its end of data. The fuzz twin of the proptest
//! `crates/smtp-client/tests/session_props.rs`; both run `test_support::session_model`.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use test_support::session_model::{self, Call, Case, Server, TLS_MODES};

fn call(u: &mut Unstructured<'_>) -> Result<Call> {
    Ok(match u.int_in_range(0u8..=21)? {
        0..=3 => Call::Send {
            body: u.int_in_range(0..=100_000)?,
            chunking: u.arbitrary()?,
        },
        4 => Call::Open,
        5 => Call::Hello,
        6 => Call::StartTls,
        7 => Call::Noop,
        8 => Call::Rset,
        9 => Call::Mail,
        10 => Call::Rcpt,
        11 => Call::Auth,
        12 => Call::AuthExchange(u.arbitrary()?),
        13 => Call::ConfirmAuth,
        14 => Call::Data,
        15 => Call::DataSend,
        16 => Call::DataEnd,
        17 => Call::Bdat(u.arbitrary()?),
        18 => Call::Recipients(u.int_in_range(0..=3)?),
        19 => Call::Quit,
        20 => Call::Abort,
        _ => Call::AuthExchange(u.arbitrary()?),
    })
}

fn server(u: &mut Unstructured<'_>) -> Result<Server> {
    Ok(match u.int_in_range(0u8..=23)? {
        0..=11 => Server::Answer,
        12..=17 => Server::Flush,
        18..=20 => Server::Reply(u.arbitrary()?, u.int_in_range(0..=63)?),
        21 => Server::Bytes(u.arbitrary()?),
        22 => Server::Eof,
        _ => Server::Wait(u.int_in_range(0..=399)?),
    })
}

fn case(u: &mut Unstructured<'_>) -> Result<Case> {
    let tls = TLS_MODES[usize::from(u.int_in_range(0u8..=3)?)];
    let flags: u8 = u.arbitrary()?;
    let n_calls = u.int_in_range(1u8..=12)?;
    let mut calls = Vec::new();
    for _ in 0..n_calls {
        calls.push(call(u)?);
    }
    let mut script = Vec::new();
    while !u.is_empty() && script.len() < 200 {
        script.push(server(u)?);
    }
    Ok(Case {
        tls,
        pipelining: flags & 1 != 0,
        small_limits: flags & 2 != 0,
        // Most sessions begin with the greeting.
        open_first: flags & 0x1c != 0,
        calls,
        script,
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(case) = case(&mut Unstructured::new(data)) {
        session_model::run(case);
    }
});
