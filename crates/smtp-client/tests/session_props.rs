//! The session driven by random sequences of public calls against random server bytes in
//! random splits: no panic, no internal error, memory bounded by the limits, and a message
//! reported sent only when a 2xx reply arrived after its end of data went out. The model
//! and the checks are `test_support::session_model`, shared with the fuzz target
//! `fuzz/fuzz_targets/session.rs`.

use proptest::prelude::*;
use test_support::session_model::{self, Call, Case, Server, REPLIES, TLS_MODES};

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (0usize..100_000, any::<bool>()).prop_map(|(body, chunking)| Call::Send { body, chunking }),
        1 => Just(Call::Open),
        1 => Just(Call::Hello),
        1 => Just(Call::StartTls),
        1 => Just(Call::Noop),
        1 => Just(Call::Rset),
        1 => Just(Call::Mail),
        1 => Just(Call::Rcpt),
        1 => Just(Call::Auth),
        1 => Just(Call::ConfirmAuth),
        1 => Just(Call::Data),
        1 => Just(Call::DataSend),
        1 => Just(Call::DataEnd),
        1 => any::<bool>().prop_map(Call::Bdat),
        1 => (0usize..4).prop_map(Call::Recipients),
        1 => Just(Call::Quit),
        1 => Just(Call::Abort),
    ]
}

fn server() -> impl Strategy<Value = Server> {
    prop_oneof![
        12 => Just(Server::Answer),
        6 => Just(Server::Flush),
        3 => (0..REPLIES.len(), 0usize..64).prop_map(|(i, s)| Server::Reply(i, s)),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Server::Bytes),
        1 => Just(Server::Eof),
        1 => (0u64..400).prop_map(Server::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn random_calls_against_random_replies_reach_no_internal_error(
        tls in 0..TLS_MODES.len(),
        pipelining in any::<bool>(),
        small_limits in any::<bool>(),
        open_first in proptest::bool::weighted(0.9),
        calls in proptest::collection::vec(call(), 1..12),
        script in proptest::collection::vec(server(), 0..120),
    ) {
        session_model::run(Case {
            tls: TLS_MODES[tls],
            pipelining,
            small_limits,
            open_first,
            calls,
            script,
        });
    }
}
