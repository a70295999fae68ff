//! XCLIENT and XFORWARD against the real Postfix, on both drivers: the listener on
//! `127.0.0.1:12528` trusts loopback for both (`smtpd_authorized_xclient_hosts`,
//! `smtpd_authorized_xforward_hosts` in `xtask/servers/master.cf`).

use std::time::Duration;

use interop_tests::{
    as_delivered, require_servers, strip_delivery_headers, unique_marker, wait_for_message,
    STATE_DIR,
};
use smtp_client::{ClientConfig, Envelope, Error, Timeouts, TlsMode};
use smtp_proto::{
    ClientProto, Domain, ForwardPath, MailParams, Mailbox, ReversePath, Source, Xclient, Xforward,
};
use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    xclient_forwarded_client_shows_in_received,
    xclient_refusals_from_postfix_and_before_sending,
    xforward_then_a_message,
);

/// The XCLIENT/XFORWARD listener.
const PORT: u16 = 12528;

fn config() -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(PORT)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("proxy.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)))
}

fn envelope() -> Envelope {
    Envelope::new(
        ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap()),
        [ForwardPath::new("xclient@example.test").unwrap()],
    )
}

fn xclient_forwarded_client_shows_in_received<C: Driver>() {
    require_servers();
    let mut client = C::connect(config()).unwrap();
    assert!(client.supports("XCLIENT") && client.supports("XFORWARD"));
    let attrs = Xclient::new()
        .name(&Domain::new("mail.forwarded.example").unwrap())
        .addr("192.0.2.7".parse().unwrap())
        .port(4711)
        .proto(ClientProto::Esmtp)
        .helo("helo.forwarded.example")
        .unwrap();
    let ehlo = client.xclient(&attrs).unwrap();
    assert_eq!(ehlo.code().get(), 250);
    // Postfix started over with the forwarded client: its new greeting, and no more
    // XCLIENT for 192.0.2.7, which is not an authorised host.
    assert!(client.banner().unwrap().text().contains("mx.example.test"));
    assert!(!client.supports("XCLIENT"));
    let marker = unique_marker("xclient");
    let sent = format!("Message-ID: {marker}\r\nSubject: XCLIENT\r\n\r\nforwarded\r\n");
    client.send(&envelope(), sent.as_bytes()).unwrap();
    client.quit().unwrap();
    let delivered = wait_for_message(&marker).unwrap();
    let text = String::from_utf8_lossy(&delivered);
    // The EHLO after XCLIENT names the client; NAME and ADDR are the forwarded ones.
    assert!(
        text.contains("Received: from proxy.example.test (mail.forwarded.example [192.0.2.7])"),
        "{text}"
    );
    assert_eq!(
        strip_delivery_headers(&delivered).unwrap(),
        &as_delivered(sent.as_bytes())[..]
    );
}

fn xclient_refusals_from_postfix_and_before_sending<C: Driver>() {
    require_servers();
    let mut client = C::connect(config()).unwrap();
    // Inside a transaction Postfix refuses XCLIENT; the session goes on as before.
    let from = ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap());
    client.mail(&from, &MailParams::default()).unwrap();
    let attrs = Xclient::new().addr("192.0.2.7".parse().unwrap());
    match client.xclient(&attrs) {
        Err(Error::Refused { command, reply }) => {
            assert_eq!(command, "XCLIENT ADDR=192.0.2.7");
            assert_eq!(reply.code().get(), 503, "{reply}");
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    assert!(client.supports("XCLIENT"));
    client.reset().unwrap();
    // Once the forged 192.0.2.7 is the client, Postfix no longer offers XCLIENT (it would
    // answer 550 5.7.0 insufficient authorization): the client refuses before sending.
    client.xclient(&attrs).unwrap();
    let again = Xclient::new().addr("192.0.2.8".parse().unwrap());
    let err = client.xclient(&again).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ExtensionMissing {
                extension: "XCLIENT",
                ..
            }
        ),
        "{err:?}"
    );
    client.noop().unwrap();
    client.quit().unwrap();
}

fn xforward_then_a_message<C: Driver>() {
    require_servers();
    let mut client = C::connect(config()).unwrap();
    let attrs = Xforward::new()
        .name(&Domain::new("spike.porcupine.org").unwrap())
        .addr("168.100.189.2".parse().unwrap())
        .proto(ClientProto::Esmtp)
        .source(Source::Remote)
        .ident("4QbF0C1Z0nz9t")
        .unwrap();
    let reply = client.xforward(&attrs).unwrap();
    assert_eq!(reply.code().get(), 250);
    let marker = unique_marker("xforward");
    let sent = format!("Message-ID: {marker}\r\nSubject: XFORWARD\r\n\r\nforwarded\r\n");
    let report = client.send(&envelope(), sent.as_bytes()).unwrap();
    client.quit().unwrap();
    let delivered = wait_for_message(&marker).unwrap();
    assert_eq!(
        strip_delivery_headers(&delivered).unwrap(),
        &as_delivered(sent.as_bytes())[..]
    );
    // XFORWARD changes only Postfix's log: "QUEUEID: client=..., orig_queue_id=...,
    // orig_client=NAME[ADDR]".
    let text = report.reply.text();
    let queue_id = text.rsplit(' ').next().unwrap();
    let wanted = format!(
        "{queue_id}: client=unknown[127.0.0.1], orig_queue_id=4QbF0C1Z0nz9t, \
         orig_client=spike.porcupine.org[168.100.189.2]"
    );
    let log = std::path::Path::new(STATE_DIR).join("log/postfix.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains(&wanted)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{wanted:?} not in {log:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
