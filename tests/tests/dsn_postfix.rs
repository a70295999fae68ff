//! DSN end to end (RFC 3461) against the real Postfix, on both drivers: NOTIFY, ORCPT, RET
//! and ENVID reach the server as given, shown where Postfix records them:
//!
//! - the delivery status notification it sends back for NOTIFY=SUCCESS (the sender is a
//!   local address, so the DSN lands in the same Maildir as every delivery): ENVID, ORCPT,
//!   and RET=HDRS (Postfix returns only the headers with a success DSN whatever RET says,
//!   so RET=FULL is shown by the queue file);
//! - the queue file of a message put on hold, read with `postcat`: every parameter, NEVER
//!   and RET=FULL included.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use interop_tests::{require_servers, unique_marker, wait_for_message, Listener, STATE_DIR};
use smtp_client::{ClientConfig, Envelope, Timeouts, TlsMode};
use smtp_proto::{
    Domain, ForwardPath, MailParams, Mailbox, Notify, Orcpt, RcptParams, Ret, ReversePath, XText,
};
use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    notify_success_with_headers_returned,
    the_queue_file_records_each_parameter,
);

fn config() -> ClientConfig {
    let addr = Listener::DovecotPlain.addr();
    ClientConfig::new(addr.ip().to_string())
        .port(addr.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)))
}

/// An ENVID unique to this call, with characters xtext must encode (`+`, `=`, space).
fn envid(tag: &str) -> String {
    let marker = unique_marker(tag);
    let token: String = marker
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    format!("env+{token}= x")
}

/// Sends one message to dsn@example.test with NOTIFY=SUCCESS, the ORCPT
/// rfc822;original.dsn@example.test and `ret`, and returns the DSN Postfix sent back.
fn send_and_get_dsn<C: Driver>(ret: Ret, tag: &str) -> (String, String) {
    require_servers();
    let mut client = C::connect(config()).unwrap();
    assert!(client.supports("DSN"));
    let envid = envid(tag);
    let marker = unique_marker(tag);
    let mail_params = MailParams {
        ret: Some(ret),
        envid: Some(XText::encode(envid.as_bytes())),
        ..MailParams::default()
    };
    let rcpt_params = RcptParams {
        notify: Some(Notify::on(true, false, false)),
        orcpt: Some(Orcpt::rfc822(
            &Mailbox::new("original.dsn@example.test").unwrap(),
        )),
        ..RcptParams::default()
    };
    let envelope = Envelope::new(
        ReversePath::Mailbox(Mailbox::new("dsn-sender@example.test").unwrap()),
        [],
    )
    .recipient(ForwardPath::new("dsn@example.test").unwrap(), rcpt_params)
    .mail_params(mail_params);
    let sent = format!(
        "Message-ID: {marker}\r\nSubject: DSN {tag}\r\n\r\nthe body of {tag}, only in RET=FULL\r\n"
    );
    client.send(&envelope, sent.as_bytes()).unwrap();
    client.quit().unwrap();
    // Only the DSN holds the ENVID: the message itself does not carry it.
    let dsn = wait_for_message(&envid).unwrap();
    (String::from_utf8_lossy(&dsn).into_owned(), envid)
}

/// The fields of the DSN's `message/delivery-status` part that echo the envelope.
fn check_status_fields(dsn: &str, envid: &str) {
    for field in [
        // RFC 3464 2.2.1: the ENVID, as the client gave it (xtext decoded).
        format!("Original-Envelope-Id: {envid}"),
        // RFC 3464 2.3.1 and 2.3.2: the ORCPT, and the recipient it was delivered to.
        "Original-Recipient: rfc822;original.dsn@example.test".to_owned(),
        "Final-Recipient: rfc822; dsn@example.test".to_owned(),
        // NOTIFY=SUCCESS: a DSN for a successful delivery.
        "Action: delivered".to_owned(),
        "Status: 2.0.0".to_owned(),
    ] {
        assert!(dsn.contains(&field), "{field:?} missing from\n{dsn}");
    }
    assert!(
        dsn.contains("Content-Type: message/delivery-status"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Delivered-To: dsn-sender@example.test"),
        "{dsn}"
    );
}

fn notify_success_with_headers_returned<C: Driver>() {
    let (dsn, envid) = send_and_get_dsn::<C>(Ret::Hdrs, "dsn-hdrs");
    check_status_fields(&dsn, &envid);
    // RET=HDRS: the headers come back, the body does not.
    assert!(dsn.contains("Content-Type: text/rfc822-headers"), "{dsn}");
    assert!(dsn.contains("Subject: DSN dsn-hdrs"), "{dsn}");
    assert!(!dsn.contains("the body of dsn-hdrs"), "{dsn}");
}

fn the_queue_file_records_each_parameter<C: Driver>() {
    require_servers();
    let mut client = C::connect(config()).unwrap();
    let envid = envid("dsn-queue");
    let orcpt = Orcpt::rfc822(&Mailbox::new("original.hold@example.test").unwrap());
    let envelope = Envelope::new(
        ReversePath::Mailbox(Mailbox::new("dsn-sender@example.test").unwrap()),
        [],
    )
    // `xtask/servers/recipient_access` puts mail for hold@example.test on hold.
    .recipient(
        ForwardPath::new("hold@example.test").unwrap(),
        RcptParams {
            notify: Some(Notify::on(true, true, true)),
            orcpt: Some(orcpt),
            ..RcptParams::default()
        },
    )
    .recipient(
        ForwardPath::new("never@example.test").unwrap(),
        RcptParams {
            notify: Some(Notify::never()),
            ..RcptParams::default()
        },
    )
    .mail_params(MailParams {
        ret: Some(Ret::Full),
        envid: Some(XText::encode(envid.as_bytes())),
        ..MailParams::default()
    });
    let report = client
        .send(&envelope, &b"Subject: held\r\n\r\nheld\r\n"[..])
        .unwrap();
    client.quit().unwrap();
    let text = report.reply.text();
    let queue_id = text.rsplit(' ').next().unwrap().to_owned();
    let conf = Path::new(STATE_DIR).join("postfix");
    let out = Command::new("postcat")
        .arg("-c")
        .arg(&conf)
        .args(["-q", &queue_id])
        .output()
        .unwrap();
    // Leave no held mail behind, whatever the checks below say.
    let _ = Command::new("postsuper")
        .arg("-c")
        .arg(&conf)
        .args(["-d", &queue_id, "hold"])
        .output();
    let queue_file = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "postcat: {out:?}");
    // Postfix's names (src/global/dsn_mask.h): RET=FULL is ret_flags 1; NOTIFY is
    // NEVER 1, SUCCESS 2, FAILURE 4, DELAY 8, given before the recipient it belongs to.
    for record in [
        format!("named_attribute: envelope_id={envid}"),
        "named_attribute: ret_flags=1".to_owned(),
        "named_attribute: notify_flags=14\n\
         named_attribute: dsn_orig_rcpt=rfc822;original.hold@example.test\n\
         original_recipient: hold@example.test\n\
         recipient: hold@example.test"
            .to_owned(),
        // Without ORCPT, Postfix records the address as given.
        "named_attribute: notify_flags=1\n\
         named_attribute: dsn_orig_rcpt=rfc822;never@example.test\n\
         original_recipient: never@example.test\n\
         recipient: never@example.test"
            .to_owned(),
    ] {
        assert!(
            queue_file.contains(&record),
            "{record:?} missing from\n{queue_file}"
        );
    }
    assert!(queue_file.contains(&format!("*** ENVELOPE RECORDS hold/{queue_id} ***")));
}
