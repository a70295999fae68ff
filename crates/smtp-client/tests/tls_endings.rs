//! How TLS connections end, on both drivers: a server that closes without `close_notify`
//! after or before its reply to the end of data, a handshake that stalls, and a server
//! that asks for renegotiation.

use std::time::{Duration, Instant};

use smtp_client::{ClientConfig, Envelope, Error, Timeouts, TlsConfig, TlsError, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_testserver::scripted::{test_cert, Record, Script, ScriptedServer};
use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    closed_without_close_notify_after_the_final_reply_is_delivered,
    closed_before_the_final_reply_leaves_delivery_unknown,
    a_stalled_starttls_handshake_times_out_within_the_deadline,
    a_stalled_implicit_tls_handshake_times_out_within_the_deadline,
    one_renegotiation_request_is_declined_and_the_session_goes_on,
    a_server_that_insists_on_renegotiation_is_a_tls_error,
);

/// The deadline the stall tests set.
const TIMEOUT: Duration = Duration::from_secs(1);

fn config(server: &ScriptedServer, mode: TlsMode, timeout: Duration) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(mode)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(timeout))
        .tls(TlsConfig::no_default_roots().add_ca_der(test_cert().ca_der.clone()))
}

fn envelope(chunking: bool) -> Envelope {
    let from = ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap());
    Envelope::new(from, [ForwardPath::new("bob@example.test").unwrap()]).prefer_chunking(chunking)
}

const BODY: &[u8] = b"Subject: t\r\n\r\nhello\r\n";

/// Implicit TLS, a pipelined envelope, then the body by DATA or BDAT; `end` is what the
/// server does once it has the whole message.
fn message_script(chunking: bool, end: impl FnOnce(Script) -> Script) -> Script {
    let script = Script::new()
        .start_tls()
        .reply("220 tls.example.test ESMTP")
        .expect("EHLO client.test")
        .reply("250-tls.example.test\n250-PIPELINING\n250 CHUNKING")
        .expect("MAIL FROM:<alice@example.test>")
        .expect("RCPT TO:<bob@example.test>");
    let script = if chunking {
        script
            .reply("250 ok\n250 ok")
            .expect(&format!("BDAT {} LAST", BODY.len()))
            .read_bytes(BODY.len())
    } else {
        script
            .expect("DATA")
            .reply("250 ok\n250 ok\n354 go ahead")
            .read_data()
    };
    end(script)
}

fn finish_ok(server: ScriptedServer) -> Record {
    let record = server.finish();
    assert!(record.result.is_ok(), "script failed: {:?}", record.result);
    record
}

fn closed_without_close_notify_after_the_final_reply_is_delivered<C: Driver>() {
    for chunking in [false, true] {
        // The reply and the end of the TCP stream leave together: the reply is read first.
        let server = ScriptedServer::start(message_script(chunking, |s| {
            s.reply("250 2.0.0 queued as 1").close()
        }))
        .unwrap();
        let mut client = C::connect(config(&server, TlsMode::Implicit, TIMEOUT * 5)).unwrap();
        let report = client.send(&envelope(chunking), BODY).unwrap();
        assert!(report.reply.text().contains("queued as 1"), "{report:?}");
        // Nothing more can be said on the connection: the end of it is reported as such.
        let err = client.noop().unwrap_err();
        assert!(
            matches!(err, Error::ConnectionClosed { .. } | Error::Io { .. }),
            "{err:?}"
        );
        finish_ok(server);
    }
}

fn closed_before_the_final_reply_leaves_delivery_unknown<C: Driver>() {
    for chunking in [false, true] {
        for notify in [false, true] {
            let server = ScriptedServer::start(message_script(chunking, |s| {
                if notify {
                    s.close_notify()
                } else {
                    s.close()
                }
            }))
            .unwrap();
            let mut client = C::connect(config(&server, TlsMode::Implicit, TIMEOUT * 5)).unwrap();
            let err = client.send(&envelope(chunking), BODY).unwrap_err();
            let Error::ConnectionClosed { awaiting } = &err else {
                panic!("chunking {chunking}, close_notify {notify}: {err:?}");
            };
            let what = if chunking { "BDAT" } else { "end of data" };
            assert!(awaiting.contains(what), "{awaiting}");
            assert!(
                err.to_string()
                    .contains("whole message was sent: whether it was delivered is unknown"),
                "{err}"
            );
            assert!(err.is_fatal());
            finish_ok(server);
        }
    }
}

fn assert_handshake_timeout(err: &Error, started: Instant) {
    assert!(
        matches!(err, Error::Timeout { awaiting, after }
            if awaiting == "the TLS handshake" && *after == TIMEOUT),
        "{err:?}"
    );
    let took = started.elapsed();
    assert!(took >= TIMEOUT, "gave up early: {took:?}");
    assert!(took < TIMEOUT * 2, "the deadline was not kept: {took:?}");
}

fn a_stalled_starttls_handshake_times_out_within_the_deadline<C: Driver>() {
    // The server says 220 to STARTTLS, then never answers the ClientHello.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["STARTTLS"])
            .expect("STARTTLS")
            .reply("220 go ahead")
            .pause(TIMEOUT * 3),
    )
    .unwrap();
    let started = Instant::now();
    let err = C::connect(config(&server, TlsMode::StartTlsRequired, TIMEOUT)).unwrap_err();
    // The greeting and EHLO took a little of the time: the handshake gets its own timeout.
    assert!(
        matches!(&err, Error::Timeout { awaiting, after }
            if awaiting == "the TLS handshake" && *after == TIMEOUT),
        "{err:?}"
    );
    assert!(started.elapsed() < TIMEOUT * 2, "{:?}", started.elapsed());
    finish_ok(server);
}

fn a_stalled_implicit_tls_handshake_times_out_within_the_deadline<C: Driver>() {
    // Connected, and not one byte of a handshake.
    let server = ScriptedServer::start(Script::new().pause(TIMEOUT * 3)).unwrap();
    let started = Instant::now();
    let err = C::connect(config(&server, TlsMode::Implicit, TIMEOUT)).unwrap_err();
    assert_handshake_timeout(&err, started);
    finish_ok(server);
}

/// TLS alert level warning and description no_renegotiation (RFC 5246 7.2).
const NO_RENEGOTIATION: (u8, u8) = (1, 100);

fn renegotiation_script() -> Script {
    Script::new()
        .start_tls12()
        .reply("220 tls12.example.test ESMTP")
        .expect("EHLO client.test")
        .reply("250 tls12.example.test")
        .expect("NOOP")
}

fn one_renegotiation_request_is_declined_and_the_session_goes_on<C: Driver>() {
    // RFC 5246 7.4.1.1: a client may decline a HelloRequest with a no_renegotiation
    // warning; a server that accepts that goes on.
    let server = ScriptedServer::start(
        renegotiation_script()
            .hello_request()
            .reply("250 ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::Implicit, TIMEOUT * 5)).unwrap();
    assert!(client.is_encrypted());
    assert_eq!(client.noop().unwrap().code().get(), 250);
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(record.tls_alerts, vec![NO_RENEGOTIATION]);
}

fn a_server_that_insists_on_renegotiation_is_a_tls_error<C: Driver>() {
    // A second request after the refusal: the client gives up with an error that names it.
    let server = ScriptedServer::start(
        renegotiation_script()
            .hello_request()
            .hello_request()
            .expect_eof(),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::Implicit, TIMEOUT * 5)).unwrap();
    let err = client.noop().unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Tls(TlsError::Session(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::TooManyRenegotiationRequests
            )))
        ),
        "{err:?}"
    );
    assert!(err.is_fatal());
    assert!(err.to_string().contains("Renegotiation"), "{err}");
    drop(client);
    let record = finish_ok(server);
    assert_eq!(record.tls_alerts.first(), Some(&NO_RENEGOTIATION));
}
