//! The session fuzz target's harness (`test_support::session_model`) with AUTH: random
//! bytes decoded as the fuzz target `session` decodes them, so the calls include whole
//! AUTH exchanges through [`AuthExchange`](smtp_auth::AuthExchange) (PLAIN, LOGIN,
//! CRAM-MD5, SCRAM-SHA-256) between sends, STARTTLS and stray replies. The same checks:
//! no panic, no internal error, bounded memory, no message reported sent on a reply that
//! came before its end of data, and a successful exchange always confirmed.

use proptest::prelude::*;
use smtp_client::TlsMode;
use test_support::session_model::{decode, run, Call, Case, Server, Summary, MECHANISMS};

/// Each mechanism against the well-behaved model over TLS, then a message: the harness
/// really runs the exchanges (SCRAM-SHA-256 is cancelled: the model's server-first is not
/// valid).
#[test]
fn the_harness_runs_each_mechanism_and_a_message_after_it() {
    for (i, mechanism) in MECHANISMS.iter().enumerate() {
        let summary = run(Case {
            tls: TlsMode::Implicit,
            pipelining: true,
            small_limits: false,
            open_first: true,
            calls: vec![
                Call::AuthExchange(i),
                Call::Send {
                    body: 100,
                    chunking: false,
                },
            ],
            script: std::iter::repeat_n([Server::Answer, Server::Flush], 20)
                .flatten()
                .collect(),
        });
        let authenticated = usize::from(*mechanism != "SCRAM-SHA-256");
        assert_eq!(
            summary,
            Summary {
                sent: 1,
                authenticated,
                streamed: 0,
            },
            "{mechanism}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn sessions_with_auth_exchanges_keep_the_invariants(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        if let Some(case) = decode(&bytes) {
            let _ = run(case);
        }
    }
}
